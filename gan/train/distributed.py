"""Data-parallel training across processes (torchrun) with DistributedDataParallel.

`DistEnv.from_environ()` reads torchrun's RANK / LOCAL_RANK / WORLD_SIZE; `setup(env)` starts the
process group (NCCL on CUDA, one device per LOCAL_RANK; gloo on CPU). `DistributedTrainer` is the
plain `Trainer` with these differences, each needed for correctness under DDP:

- G and D are wrapped in DDP for the forwards whose backward must average gradients: G's forward,
  and D's two forwards in D's step. G's step goes through the *un-wrapped* D with its weights
  frozen (as the plain trainer does): no D weight gradients are computed, and D's DDP reducer never
  waits for gradients that will not come. State dicts are the raw modules', so checkpoints do not
  depend on the number of ranks.
- `config.batch_size` is the global batch: each rank takes `batch_size / world_size` images per
  step, from its shard of a per-epoch permutation of the in-memory set (`ShardSampler`), or from
  its own tar shards / files when streaming (`gan.ingest.streaming`).
- Records are made every `flush_every` steps (not on a wall clock, which differs between ranks);
  the pending losses are averaged over ranks with one all_reduce per record, so the D-skip
  decision, the NaN guard and the health signals are the same on every rank.
- Rank 0 alone writes (checkpoints, samples, metrics); the other ranks get `out_dir=None`.
- EMA is updated on every rank from identical G weights, so it stays identical (checked by tests).
- Stopping is agreed on collectively (`CollectiveStop`): any rank's Ctrl-C stops all at one step.
- BatchNorm is per rank (each normalises its own batch slice) unless `sync_bn` (CUDA only).

With `world_size == 1` nothing is wrapped and no collective runs: that is the `--stream` path.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from gan.train.checkpoint import load_checkpoint
from gan.train.trainer import TrainConfig, Trainer, TrainError, read_metrics, resumed_config

log = logging.getLogger(__name__)

FLUSH_EVERY = 10  # steps between records (and host syncs) when several ranks train together
STOP_CHECK_EVERY = 20  # stop_event.is_set() calls between two collective stop checks


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the job, as torchrun describes it."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size or self.local_rank < 0:
            raise ValueError(f"Inconsistent ranks: rank {self.rank}, local rank {self.local_rank}, "
                             f"world size {self.world_size}.")

    @classmethod
    def from_environ(cls) -> "DistEnv":
        """Read RANK, LOCAL_RANK and WORLD_SIZE (set by torchrun); one process when absent."""
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1)))

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files and prints progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """True when the environment says several processes train together (WORLD_SIZE > 1)."""
    return DistEnv.from_environ().distributed


def device_for(env: DistEnv, preferred: str | None = None) -> torch.device:
    """One CUDA device per LOCAL_RANK when CUDA is there (or asked for), else the CPU."""
    name = preferred or os.environ.get("ATELIER_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    kind = torch.device(name).type
    if kind == "cuda":
        if env.local_rank >= torch.cuda.device_count():
            raise TrainError(f"LOCAL_RANK {env.local_rank} has no GPU: this machine has "
                             f"{torch.cuda.device_count()}. Use --nproc_per_node <= the number of GPUs.")
        torch.cuda.set_device(env.local_rank)
        return torch.device("cuda", env.local_rank)
    if kind != "cpu":
        raise TrainError(f"Distributed training runs on CUDA (NCCL) or CPU (gloo), not {name}.")
    return torch.device("cpu")


def setup(env: DistEnv, device: torch.device) -> None:
    """Join the process group: NCCL for CUDA, gloo for CPU (MASTER_ADDR/PORT come from torchrun)."""
    if env.distributed and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend, rank=env.rank, world_size=env.world_size, **kwargs)
        log.info("rank %d/%d joined (%s on %s)", env.rank, env.world_size, backend, device)


def teardown() -> None:
    """Leave the process group (a barrier first, so that rank 0's export is not cut short)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def rank_seed(seed: int, rank: int, step: int) -> int:
    """The seed of a rank's noise/augmentation generator: different per rank, fresh per resume."""
    return (seed + 1_000_003 * rank + 7_919 * step) % (2**63)


class ShardSampler:
    """Per-epoch permutation of N indices, rank r taking every world-th one (padded like DistributedSampler)."""

    def __init__(self, n: int, env: DistEnv, batch: int, seed: int, device: torch.device) -> None:
        self.n, self.env, self.batch, self.seed, self.device = n, env, batch, seed, device
        self.shard_len = -(-n // env.world_size)  # ceil: every rank gets the same number per epoch
        self.epoch, self.pos, self._shard = 0, 0, self._indices(0)

    def start_at(self, step: int) -> None:
        """Position the sampler where `step` steps of `batch` would have left it (resume)."""
        consumed = step * self.batch
        self.epoch, self.pos = divmod(consumed, self.shard_len)
        self._shard = self._indices(self.epoch)

    def _indices(self, epoch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        perm = torch.randperm(self.n, generator=gen)
        padded = torch.cat([perm, perm[: self.shard_len * self.env.world_size - self.n]])
        return padded[self.env.rank :: self.env.world_size].to(self.device)

    def next(self) -> torch.Tensor:
        """The next `batch` indices of this rank's shard, running into the next epoch as needed."""
        parts, need = [], self.batch
        while need:
            take = min(need, self.shard_len - self.pos)
            parts.append(self._shard[self.pos : self.pos + take])
            self.pos, need = self.pos + take, need - take
            if self.pos == self.shard_len:
                self.epoch, self.pos = self.epoch + 1, 0
                self._shard = self._indices(self.epoch)
        return parts[0] if len(parts) == 1 else torch.cat(parts)


class CollectiveStop:
    """A stop flag that all ranks read alike: a MAX all_reduce every `every` calls, cached between."""

    def __init__(self, event: threading.Event | None, env: DistEnv, device: torch.device,
                 every: int = STOP_CHECK_EVERY) -> None:
        self.event, self.env, self.device, self.every = event or threading.Event(), env, device, every
        self.calls, self.value = 0, False

    def is_set(self) -> bool:
        """Whether any rank asked to stop (as of the last collective check)."""
        if not self.env.distributed:
            return self.event.is_set()
        self.calls += 1
        if not self.value and self.calls % self.every == 0:
            flag = torch.tensor([float(self.event.is_set())], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            self.value = bool(flag.item())
        return self.value

    def set(self) -> None:
        self.event.set()


class _Live:
    """A streamed data set as `Trainer.run` sees it: a probe batch for `data[:64]`, then an iterator."""

    def __init__(self, probe: torch.Tensor, batches: Iterator[torch.Tensor], size: int) -> None:
        self.probe, self.batches, self.size = probe, batches, size

    def __getitem__(self, item) -> torch.Tensor:
        return self.probe[item]


class DistributedTrainer(Trainer):
    """`Trainer` under DDP (see the module docstring); also the streaming trainer of one process."""

    def __init__(self, config: TrainConfig, device: torch.device | str = "cpu", out_dir: Path | None = None,
                 env: DistEnv | None = None, sync_bn: bool = False, flush_every: int = FLUSH_EVERY) -> None:
        env = env or DistEnv.from_environ()
        if config.batch_size % env.world_size:
            raise TrainError(f"batch_size {config.batch_size} is the global batch: it must divide evenly "
                             f"among {env.world_size} processes.")
        super().__init__(config, device=device, out_dir=out_dir if env.is_main else None)
        self.env, self.flush_every = env, flush_every
        self.local_batch = config.batch_size // env.world_size
        self.rng.manual_seed(rank_seed(config.seed, env.rank, 0))
        self._sampler: ShardSampler | None = None
        self._G, self._D = self.G, self.D  # what forwards go through (DDP wrappers when distributed)
        if env.distributed:
            self._wrap(sync_bn)

    def _wrap(self, sync_bn: bool) -> None:
        """DDP around G and D (their weights are broadcast from rank 0 here)."""
        if self.growth is not None:  # DDP would wait for the gradients of the layers not yet grown
            raise TrainError("Progressive growing runs in one process; set grow_from to 0 for a distributed run.")
        if sync_bn:
            if self.device.type != "cuda":
                raise TrainError("SyncBatchNorm needs CUDA GPUs; on CPU BatchNorm stays per process.")
            # in place: same Parameter objects, so the optimisers and the EMA copy are unaffected
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.D)
        ids = [self.device.index] if self.device.type == "cuda" else None
        # forward_sync_buffers=False: BN running stats are never used in training (D always trains,
        # the EMA generator recalibrates its own), so re-sending them every forward is wasted work.
        opts = dict(device_ids=ids, forward_sync_buffers=False, gradient_as_bucket_view=True)
        self._G, self._D = DDP(self.G, **opts), DDP(self.D, **opts)

    # ---- one step: the plain trainer's, with forwards through the wrappers ---------------------
    def train_step(self, real: torch.Tensor, skip_d: bool = False) -> dict[str, torch.Tensor]:
        """One D step then one G step on this rank's `real` slice; gradients averaged over ranks."""
        real = self._enter_stage(real)
        z = torch.randn(real.shape[0], self.config.nz, 1, 1, device=self.device, generator=self.rng)
        fake = self._G(z)
        real_in, fake_in = self._augment(real), self._augment(fake)
        loss_d, d_real, d_fake = self._d_step(real_in, fake_in.detach(), skip_d)
        loss_g = self._g_step(fake_in)  # through the un-wrapped, frozen D (see module docstring)
        self._update_ema()
        return {"loss_d": loss_d, "loss_g": loss_g, "d_x": torch.sigmoid(d_real).mean(),
                "d_g_z": torch.sigmoid(d_fake).mean()}

    def _d_step(self, real_in: torch.Tensor, fake_in: torch.Tensor, skip: bool) -> tuple[torch.Tensor, ...]:
        """D's update through DDP (skipping is decided from rank-averaged losses: the same everywhere)."""
        D, self.D = self.D, self._D
        try:
            return super()._d_step(real_in, fake_in, skip)
        finally:
            self.D = D

    # ---- data: this rank's shard -------------------------------------------------------------
    def _prepare(self, data):
        """In-memory uint8 tensor -> device + shard sampler; a stream -> a probe batch + iterator."""
        if isinstance(data, _Live):
            self.dataset_size = data.size
            return data
        data = super()._prepare(data)
        self._sampler = ShardSampler(data.shape[0], self.env, self.local_batch, self.config.seed, self.device)
        self._sampler.start_at(self.step)
        return data

    def _batch(self, data) -> torch.Tensor:
        """This rank's next `batch_size / world_size` images in [-1, 1]."""
        if isinstance(data, _Live):
            batch = next(data.batches).to(self.device, non_blocking=True)
        else:
            batch = data[self._sampler.next()]
        return self._as_float(batch).contiguous(memory_format=self._fmt)

    def stream(self, batches: Iterator[torch.Tensor], size: int) -> _Live:
        """Wrap an iterator of uint8 batches (from `gan.ingest.streaming`) for `run`."""
        probe = next(batches)
        if tuple(probe.shape[1:]) != (self.config.nc, self.config.image_size, self.config.image_size):
            raise TrainError(f"The streamed images are {tuple(probe.shape[1:])} but the settings expect "
                             f"({self.config.nc}, {self.config.image_size}, {self.config.image_size}).")
        return _Live(probe.to(self.device), batches, size)

    # ---- records: on step counts, averaged over ranks ---------------------------------------------
    def _due(self, clock) -> bool:
        if not self.env.distributed:
            return super()._due(clock)
        c = self.config
        return self.step % c.sample_every == 0 or self.step % c.checkpoint_every == 0 or self.step % self.flush_every == 0

    def _flush(self, pending: list, monitor, clock) -> list:
        """Average the pending scalars over ranks (one all_reduce), then the plain trainer's flush."""
        if self.env.distributed and pending:
            keys = ("loss_d", "loss_g", "d_x", "d_g_z")
            table = torch.stack([torch.stack([out[k].float() for k in keys]) for _, out, _ in pending])
            dist.all_reduce(table, op=dist.ReduceOp.SUM)
            table /= self.env.world_size
            for (_, out, _), row in zip(pending, table):
                out.update(zip(keys, row))
        return super()._flush(pending, monitor, clock)

    def _load_state(self, state) -> None:
        """The plain trainer's, then a per-rank noise generator (the file holds rank 0's state only)."""
        super()._load_state(state)
        if self.env.distributed:
            self.rng.manual_seed(rank_seed(self.config.seed, self.env.rank, state.step))

    def run(self, data, stop_event: threading.Event | None = None):
        """`Trainer.run` with a stop flag that every rank reads alike."""
        return super().run(data, CollectiveStop(stop_event, self.env, self.device))

    # ---- resume: any number of ranks ---------------------------------------------------------------
    @classmethod
    def resume(cls, checkpoint_dir: Path | str, device: torch.device | str = "cpu", steps: int | None = None,
               out_dir: Path | None = None, env: DistEnv | None = None, **kwargs) -> "DistributedTrainer":
        """Continue a checkpoint written by any number of ranks (or by the plain trainer)."""
        env = env or DistEnv.from_environ()
        state = load_checkpoint(Path(checkpoint_dir))
        config = resumed_config(TrainConfig.from_dict(state.config), steps)
        trainer = cls(config, device=device, out_dir=Path(out_dir or checkpoint_dir), env=env, **kwargs)
        trainer._load_state(state)  # every rank reads the same file: identical weights and optimisers
        trainer._good = copy.deepcopy(state)
        trainer.history = [h for h in read_metrics(Path(checkpoint_dir)) if h["step"] <= state.step]
        if env.is_main:
            trainer.out_dir.mkdir(parents=True, exist_ok=True)
            trainer._rewrite_metrics()
        if trainer.history:
            trainer._last_loss_d = trainer.history[-1]["loss_d"]
        return trainer
