"""Data-parallel training across processes (torchrun) with DistributedDataParallel.

`DistEnv.from_environ()` reads torchrun's RANK / LOCAL_RANK / WORLD_SIZE; `setup(env)` starts the
process group (NCCL on CUDA, one device per LOCAL_RANK; gloo on CPU). The plain `Trainer` runs
every rank, given a `DDPHook` (`parallel_hook(env, device)`) that makes these differences, each
needed for correctness under DDP:

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
- Rank 0 alone writes (checkpoints, samples, metrics); the other ranks get `out_dir=None`. It alone
  measures KID and coverage too (the trainer asks the hook's `is_main`; the others would repeat its
  work): at its first record on or after a `kid_every` step, while the other ranks wait at the next
  all_reduce. The measurement touches no collective and no state the ranks share.
- EMA is updated on every rank from identical G weights, so it stays identical (checked by tests).
- Stopping is agreed on collectively (`CollectiveStop`): any rank's Ctrl-C stops all at one step.
- BatchNorm is per rank (each normalises its own batch slice) unless `sync_bn` (CUDA only).

With one process there is no hook (`parallel_hook` returns None): nothing is wrapped and no
collective runs, also with `--stream`.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from gan.train.config import TrainError

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
    def from_environ(cls) -> DistEnv:
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


class StopFlag(Protocol):
    """Anything with `is_set()`: a threading.Event, or a flag that all ranks read alike."""

    def is_set(self) -> bool:
        """Whether the run should stop now."""


class ParallelHook(Protocol):
    """What the trainer needs from a data-parallel job (`DDPHook` below, under torchrun)."""

    world_size: int
    is_main: bool  # the one process that writes files
    flush_every: int  # steps between records: on a step count, the same on every rank (not a wall clock)

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """The module that runs `module`'s forward when its gradients must be averaged over ranks."""

    def average(self, table: torch.Tensor) -> torch.Tensor:
        """The mean of `table` over ranks (the step's scalars, so every rank decides alike)."""

    def stop_flag(self, event: threading.Event | None) -> StopFlag:
        """A stop flag every rank reads alike (any rank's stop stops all at one step)."""

    def noise_seed(self, seed: int, step: int) -> int:
        """The seed of this rank's noise/augmentation generator at `step`."""

    def index_sampler(self, n: int, batch: int, seed: int, device: torch.device,
                      step: int) -> Callable[[], torch.Tensor]:
        """Indices of this rank's next `batch` images of an in-memory set of `n`, as of `step`."""


def no_forward_buffer_sync(ddp_class: type = DDP) -> dict[str, bool]:
    """DDP's option that stops it re-sending buffers before every forward, by its name in this torch.

    BN running stats are never used in training (D always trains, the EMA generator recalibrates
    its own), so re-sending them every forward is wasted work. torch 2.13 renamed the option
    `broadcast_buffers` to `forward_sync_buffers` (and warns on the old name); older releases, such as
    the 2.11 of many GPU images, refuse the new one. The old name also skips the start-up broadcast,
    which changes nothing here: every rank builds its buffers from the same seed.
    """
    if "forward_sync_buffers" in inspect.signature(ddp_class.__init__).parameters:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}


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


class DDPHook:
    """The trainer's `ParallelHook` under torchrun: DDP forwards, rank-averaged scalars, sharded batches."""

    def __init__(self, env: DistEnv, device: torch.device, sync_bn: bool = False,
                 flush_every: int = FLUSH_EVERY) -> None:
        if sync_bn and torch.device(device).type != "cuda":
            raise TrainError("SyncBatchNorm needs CUDA GPUs; on CPU BatchNorm stays per process.")
        self.env, self.device, self.sync_bn, self.flush_every = env, torch.device(device), sync_bn, flush_every
        self.world_size, self.is_main = env.world_size, env.is_main

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """DDP around `module` (its weights are broadcast from rank 0 here)."""
        if self.sync_bn:  # in place: same Parameter objects, so the optimisers and the EMA copy are unaffected
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(module, device_ids=ids, gradient_as_bucket_view=True, **no_forward_buffer_sync())

    def average(self, table: torch.Tensor) -> torch.Tensor:
        """The mean over ranks (one all_reduce)."""
        table = table.clone()
        dist.all_reduce(table, op=dist.ReduceOp.SUM)
        return table / self.env.world_size

    def stop_flag(self, event: threading.Event | None) -> CollectiveStop:
        """Ctrl-C / SIGTERM on any rank stops all ranks at the same step."""
        return CollectiveStop(event, self.env, self.device)

    def noise_seed(self, seed: int, step: int) -> int:
        """Different per rank, fresh per resume (the checkpoint holds rank 0's generator only)."""
        return rank_seed(seed, self.env.rank, step)

    def index_sampler(self, n: int, batch: int, seed: int, device: torch.device,
                      step: int) -> Callable[[], torch.Tensor]:
        """This rank's shard of a per-epoch permutation, positioned where `step` steps left it."""
        sampler = ShardSampler(n, self.env, batch, seed, device)
        sampler.start_at(step)
        return sampler.next


def parallel_hook(env: DistEnv, device: torch.device, sync_bn: bool = False) -> DDPHook | None:
    """The hook for this job: None for one process (the plain trainer, nothing wrapped, no collective)."""
    return DDPHook(env, device, sync_bn) if env.distributed else None
