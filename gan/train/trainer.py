"""DCGAN training engine: `TrainConfig` (every default, validated) and `Trainer` (G, D, EMA-G, optimisers).

`Trainer.run(images_uint8)` yields a `TrainStep` per step. Speed choices, each measured on this
project's CPU (see docs/train.md): the data set is one in-memory uint8 tensor (no DataLoader, no
file I/O), scalars reach the host in one sync per flush (a flush at most every ~250 ms, or when a
sample/checkpoint is due), D's weight gradients are not computed during G's step, sampling runs
under `torch.inference_mode`, Adam is fused and tensors are channels_last (CPU and CUDA).
`train_step(batch)` is pure in the sense a DistributedDataParallel wrapper needs: one D step + one G step
on the given batch, no host sync, no I/O.

Several processes (torchrun) train the same `Trainer` with a `ParallelHook` (gan/train/distributed.py):
it says which modules run G's and D's forwards, how the step's scalars are averaged over ranks,
which indices this rank's batches take, when records are made and how stopping is agreed.
Run `python -m gan.train --help` for the command line (gan/train/cli.py).
"""

from __future__ import annotations

import copy
import logging
import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from common.device import configure_backend
from gan.explorer.model import Generator
from gan.train.card import grid_to_pil, grid_uint8, model_card, write_card
from gan.train.checkpoint import TrainState, adopt_optimizer_state, load_checkpoint, save_checkpoint
from gan.train.config import TrainConfig, TrainError, resumed_config
from gan.train.diffaugment import diff_augment, parse_policy
from gan.train.distributed import ParallelHook, StopFlag
from gan.train.feed import BatchStream, Feed, to_float
from gan.train.health import NAN_ADVICE, HealthMonitor, diversity
from gan.train.losses import d_loss, g_loss
from gan.train.metrics import (
    METRIC_KEYS,
    RunClock,
    TrainStep,
    append_metrics,
    latest_quality,
    read_metrics,
    write_metrics,
)
from gan.train.progressive import Growth, Stage, stage_costs
from gan.train.quality import LiveQuality
from gan.train.variants import build_networks

log = logging.getLogger(__name__)

FLUSH_S = 0.25  # longest time between host syncs, so that a UI stays live


class Trainer:
    """Owns G, D, the EMA copy of G and both Adam optimisers; runs, checkpoints, resumes, exports."""

    def __init__(self, config: TrainConfig, device: torch.device | str = "cpu", out_dir: Path | None = None,
                 parallel: ParallelHook | None = None) -> None:
        world = parallel.world_size if parallel else 1
        if parallel and config.grow_from:  # DDP would wait for the gradients of the layers not grown yet
            raise TrainError("Progressive growing runs in one process; set grow_from to 0 for a distributed run.")
        if config.batch_size % world:
            raise TrainError(f"batch_size {config.batch_size} is the global batch: it must divide evenly "
                             f"among {world} processes.")
        self.config, self.device, self.parallel = config, torch.device(device), parallel
        self.local_batch = config.batch_size // world  # this rank's share of every step's batch
        self.out_dir = Path(out_dir) if out_dir and (parallel is None or parallel.is_main) else None
        configure_backend(self.device)
        # channels_last everywhere (also on the CPU: in NCHW each transposed convolution of G copied its input
        # and gradients to NHWC and back for oneDNN; a 64 px step takes ~14 % less CPU time, docs/train.md)
        self._fmt = torch.channels_last
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
            torch.manual_seed(config.seed)
            self.G, self.D = build_networks(config)  # the variant's pair, or the growing pair (gan/train/variants.py)
            noise = torch.randn(config.n_samples + 256, config.nz)
        self.G.to(self.device, memory_format=self._fmt)
        self.D.to(self.device, memory_format=self._fmt)
        self.ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        noise = noise.to(self.device)
        self.fixed_z, self._calib_z = noise[: config.n_samples], noise[config.n_samples :]
        # fused Adam (one kernel per parameter instead of ~8 elementwise passes): on CUDA, and on the CPU
        # where the default per-tensor loop took ~8 % of a 64 px step (docs/train.md); same update rule
        self._fused = True if self.device.type in ("cuda", "cpu") else None
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr_g, betas=betas, fused=self._fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr_d, betas=betas, fused=self._fused)
        self.rng = torch.Generator(device=self.device).manual_seed(self._noise_seed(0))
        self.policy = parse_policy(config.diffaugment)
        self.step, self.history = 0, []
        self._costs: dict | None = None  # relative step cost per growth stage, measured on first use
        self.growth = Growth(config.image_size, config.grow_from, config.grow_phase_steps,
                             config.grow_fade_steps) if config.grow_from else None
        self._good: TrainState | None = None  # last good checkpoint, for the NaN rollback
        self._last_loss_d = float("inf")
        self.dataset_size = 0
        self._quality: LiveQuality | None = None  # set per run (it holds the training set's features)
        # The modules G's and D's forwards go through: DDP wrappers under torchrun, so that their
        # backward averages gradients over ranks. G's step uses the plain, frozen D (see _g_step).
        self._G_fwd, self._D_fwd = (parallel.wrap(self.G), parallel.wrap(self.D)) if parallel else (self.G, self.D)

    def _noise_seed(self, step: int) -> int:
        return self.parallel.noise_seed(self.config.seed, step) if self.parallel else self.config.seed

    # ---- one step (pure: no host sync, no I/O) -------------------------------------------------
    def train_step(self, real: torch.Tensor, skip_d: bool = False) -> dict[str, torch.Tensor]:
        """One D step then one G step on `real` (N, C, S, S) in [-1, 1]; returns detached scalars."""
        real = self._enter_stage(real)
        z = torch.randn(real.shape[0], self.config.nz, 1, 1, device=self.device, generator=self.rng)
        fake = self._G_fwd(z)
        real_in, fake_in = self._augment(real), self._augment(fake)
        loss_d, d_real, d_fake = self._d_step(real_in, fake_in.detach(), skip_d)
        loss_g = self._g_step(fake_in)
        self._update_ema()
        return {"loss_d": loss_d, "loss_g": loss_g, "d_x": torch.sigmoid(d_real).mean(),
                "d_g_z": torch.sigmoid(d_fake).mean()}

    def stage(self, step: int | None = None) -> Stage:
        """The resolution and fade-in weight of the step with 0-based index `step` (default: the next)."""
        step = self.step if step is None else step
        return self.growth.stage_at(step) if self.growth else Stage(self.config.image_size)

    def work(self, first: int, end: int) -> float:
        """What steps first..end-1 cost, in full-size steps (progressive growing: cheaper early ones)."""
        if self.growth is None:
            return float(max(end - first, 0))
        if self._costs is None:
            self._costs = stage_costs(self.G, self.D, self.growth)
        return self.growth.work(first, end, self._costs)

    def _enter_stage(self, real: torch.Tensor) -> torch.Tensor:
        """Progressive growing: set the step's stage on G and D; the real batch at that resolution."""
        if self.growth is None:
            return real
        stage = self.growth.stage_at(self.step)
        self.G.set_stage(stage)
        self.D.set_stage(stage)
        return self.growth.real_at(real, stage)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.policy, self.rng) if self.policy else x

    def _d_step(self, real_in: torch.Tensor, fake_in: torch.Tensor, skip: bool) -> tuple[torch.Tensor, ...]:
        """D's update (or only its forward when skipping: the loss is still reported)."""
        with torch.set_grad_enabled(not skip):
            d_real, d_fake = self._D_fwd(real_in), self._D_fwd(fake_in)
            loss = d_loss(self.config.loss, d_real, d_fake, 1.0 - self.config.label_smoothing)
        if not skip:
            self.opt_d.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_d.step()
        return loss.detach(), d_real.detach(), d_fake.detach()

    def _g_step(self, fake_in: torch.Tensor) -> torch.Tensor:
        """G's update through a frozen D: D's weight gradients are never computed (saves work). Under
        DDP this is the un-wrapped D, so D's reducer never waits for gradients that will not come."""
        self.D.requires_grad_(False)
        loss = g_loss(self.config.loss, self.D(fake_in))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self.D.requires_grad_(True)
        return loss.detach()

    @torch.no_grad()
    def _update_ema(self) -> None:
        """EMA of G's weights, with a warm-up so that early samples are not the random init
        (restarted when a layer fades in: else the EMA copy of a new layer lags far behind)."""
        age = self.growth.since_fade(self.step) if self.growth else self.step
        decay = min(self.config.ema_decay, (1 + age) / (10 + age))
        torch._foreach_lerp_(list(self.ema.parameters()), list(self.G.parameters()), 1 - decay)

    # ---- the loop --------------------------------------------------------------------------
    def run(self, data: torch.Tensor | BatchStream,
            stop_event: threading.Event | StopFlag | None = None) -> Iterator[TrainStep]:
        """Train on uint8 images (N, C, S, S) or a BatchStream until config.steps or `stop_event`; yield every step."""
        feed = self.feed(data)
        if self.parallel:
            stop_event = self.parallel.stop_flag(stop_event)
        monitor = HealthMonitor(diversity(to_float(feed.probe)))
        # KID needs the training set in memory (a stream has none to compare with); under torchrun the main
        # rank alone measures (the others would repeat its work), at its first record once one is due
        measures = isinstance(data, torch.Tensor) and self.config.kid_every > 0
        measures = measures and (self.parallel is None or self.parallel.is_main)
        self._quality = LiveQuality(self.config, self.device, feed.probe, self.step) if measures else None
        if self._good is None:
            self._good = copy.deepcopy(self._state())
        clock = RunClock(self.step, self.config.steps, self.config.batch_size, self.work if self.growth else None)
        pending: list[tuple[int, dict, bool]] = []
        while True:
            stopping = stop_event is not None and stop_event.is_set()
            if self.step >= self.config.steps or stopping:
                yield from self._finish(pending, monitor, clock, "stopped" if stopping else "done")
                return
            skip = 0 < self._last_loss_d < self.config.d_skip_threshold
            pending.append((self.step + 1, self.train_step(next(feed), skip), skip))
            self.step += 1
            ending = self.step >= self.config.steps or (stop_event is not None and stop_event.is_set())
            if not ending and self._due(clock):  # else the next turn's _finish flushes
                records = self._flush(pending, monitor, clock)
                yield from records
                if records and records[-1].finished == "nan":
                    return

    def feed(self, data: torch.Tensor | BatchStream) -> Feed:
        """uint8 images (N, C, S, S) in memory, or a BatchStream, as this rank's endless batches on the device."""
        if isinstance(data, BatchStream):
            probe = self._checked(next(data.batches), "streamed images").to(self.device)
            draw, size = lambda: next(data.batches).to(self.device, non_blocking=True), data.size
        else:
            if not isinstance(data, torch.Tensor) or data.dtype != torch.uint8 or data.dim() != 4:
                raise TrainError("Training data must be a uint8 tensor of images shaped (N, C, S, S).")
            data = self._checked(data, "images").to(self.device).contiguous(memory_format=self._fmt)
            pick = self._index_sampler(data.shape[0])
            probe, draw, size = data, lambda: data[pick()], int(data.shape[0])
        self.dataset_size = size
        return Feed(probe, draw, size, self._fmt)

    def _checked(self, images: torch.Tensor, what: str) -> torch.Tensor:
        c = self.config
        if images.shape[0] < 1 or tuple(images.shape[1:]) != (c.nc, c.image_size, c.image_size):
            raise TrainError(f"The {what} are {tuple(images.shape[1:])} but the settings expect "
                             f"({c.nc}, {c.image_size}, {c.image_size}).")
        return images

    def _index_sampler(self, n: int) -> Callable[[], torch.Tensor]:
        """Random batches with replacement (one process), or this rank's shard of each epoch."""
        if self.parallel:
            return self.parallel.index_sampler(n, self.local_batch, self.config.seed, self.device, self.step)
        return lambda: torch.randint(0, n, (self.local_batch,), device=self.device, generator=self.rng)

    def _due(self, clock: RunClock) -> bool:
        c = self.config
        if self.step % c.sample_every == 0 or self.step % c.checkpoint_every == 0:
            return True
        if self.parallel:  # on step counts, alike on every rank (a measurement waits for the next record)
            return self.step % self.parallel.flush_every == 0
        return clock.since_flush() >= FLUSH_S or (self._quality is not None and self._quality.due(self.step))

    def _flush(self, pending: list, monitor: HealthMonitor, clock: RunClock) -> list[TrainStep]:
        """One host sync for all pending steps -> records; samples/checkpoint when due; NaN guard."""
        table = torch.stack([torch.stack([out[k].float() for k in METRIC_KEYS]) for _, out, _ in pending])
        if self.parallel:  # one all_reduce per record: D-skip, NaN guard and health decide alike on every rank
            table = self.parallel.average(table)
        rows = table.tolist()
        steps = [(s, skip) for s, _, skip in pending]
        pending.clear()
        clock.flushed(self.step)
        records = []
        for (step, skip), row in zip(steps, rows, strict=True):
            if not all(map(math.isfinite, row)):
                return [self._rollback(step, clock)]
            rec = TrainStep(step, self.config.steps, *row, *clock.rates(step), skipped_d=skip,
                            **self._stage_fields(step))
            rec.warning = monitor.on_losses(rec.loss_d)
            records.append(rec)
        self._last_loss_d = records[-1].loss_d
        if self._quality:
            self._quality.maybe_measure(records[-1], self.sample, self.step, monitor)
        self._record(records)
        self._maybe_sample_and_save(records[-1], monitor)
        return records

    def _stage_fields(self, step: int) -> dict:
        """TrainStep's resolution / fade-in fields for the record of `step` (1-based: the step's index + 1)."""
        stage = self.stage(max(step - 1, 0))
        return {"resolution": stage.resolution, "fade_in": stage.alpha, "growing": self.growth is not None}

    def _maybe_sample_and_save(self, rec: TrainStep, monitor: HealthMonitor, force: bool = False) -> None:
        c = self.config
        if force or self.step % c.sample_every == 0:
            images = self.sample()
            rec.samples = grid_uint8(images)
            rec.warning = rec.warning or monitor.on_samples(self.step, diversity(images))
            if self.out_dir:
                (self.out_dir / "samples").mkdir(parents=True, exist_ok=True)
                grid_to_pil(rec.samples).save(self.out_dir / "samples" / f"step_{self.step:07d}.png")
        if force or self.step % c.checkpoint_every == 0:
            self.save_checkpoint()

    def _finish(self, pending: list, monitor: HealthMonitor, clock: RunClock, why: str) -> Iterator[TrainStep]:
        """Flush what is left, then a final record with samples and a checkpoint."""
        records = self._flush(pending, monitor, clock) if pending else []
        if records and records[-1].finished == "nan":
            yield from records
            return
        last = records.pop() if records else self._repeat_last(clock)
        yield from records
        if last.samples is None or self.step % self.config.checkpoint_every:
            self._maybe_sample_and_save(last, monitor, force=True)
        if why == "done":  # a Stop answers at once; the card then gives the last measurement with its step
            self._measure_at_end(last, monitor)
        last.finished = why
        yield last

    def _measure_at_end(self, last: TrainStep, monitor: HealthMonitor) -> None:
        """A run that measured before ends with a measurement of its final weights (for the model card)."""
        if self._quality is None or last.quality is not None or not self._quality.wants_final(self.step):
            return
        self._quality.maybe_measure(last, self.sample, self.step, monitor, force=True)
        if self.history and self.history[-1]["step"] == self.step:
            self.history[-1].update(last.quality.metrics())
            self._rewrite_metrics()

    def latest_quality(self) -> dict | None:
        """The last measured KID / coverage of this run's history (with its step), or None."""
        return latest_quality(self.history)

    def _repeat_last(self, clock: RunClock) -> TrainStep:
        """A record for the current step when no step ran (stopped at once, or already done)."""
        h = self.history[-1] if self.history else dict.fromkeys(METRIC_KEYS, 0.0)
        return TrainStep(self.step, self.config.steps, *(h[k] for k in METRIC_KEYS), *clock.rates(self.step),
                         **self._stage_fields(self.step))

    def _rollback(self, step: int, clock: RunClock) -> TrainStep:
        """A loss went NaN/inf: restore the last good checkpoint and report it."""
        good = self._good
        self._load_state(good)
        self.history = [h for h in self.history if h["step"] <= good.step]
        self._rewrite_metrics()
        log.warning("Non-finite loss at step %d; rolled back to step %d.", step, good.step)
        rec = TrainStep(good.step, self.config.steps, *[float("nan")] * len(METRIC_KEYS), *clock.rates(step),
                        **self._stage_fields(good.step))
        rec.warning, rec.finished = NAN_ADVICE.format(step=good.step), "nan"
        return rec

    # ---- sampling -----------------------------------------------------------------------------
    def sample(self, z: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] from the EMA generator (fixed noise by default); while growing, at the
        stage of the last step, upscaled (nearest) to the full size."""
        if self.growth:
            self.ema.set_stage(self.stage(max(self.step - 1, 0)))
        self._recalibrate_ema_bn()
        with torch.inference_mode():
            images = self.ema(self.fixed_z if z is None else z.to(self.device)).float()
        return self.growth.upscale(images) if self.growth else images

    @torch.no_grad()
    def _recalibrate_ema_bn(self) -> None:
        """Batch-norm statistics that match the EMA weights (G's running stats belong to G's weights)."""
        bns = [m for m in self.ema.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
        self.ema.train()
        for chunk in self._calib_z.split(64):
            self.ema(chunk)
        for m in bns:
            m.momentum = 0.1
        self.ema.eval()

    # ---- state, checkpoints, metrics ----------------------------------------------------------
    def _state(self) -> TrainState:
        return TrainState(step=self.step, config=self.config.to_dict(),
                          modules={"G": self.G.state_dict(), "D": self.D.state_dict(), "EMA": self.ema.state_dict()},
                          optimizers={"optG": self.opt_g.state_dict(), "optD": self.opt_d.state_dict()},
                          rng=self.rng.get_state())

    def _load_state(self, state: TrainState) -> None:
        for name, module in (("G", self.G), ("D", self.D), ("EMA", self.ema)):
            module.load_state_dict(state.modules[name], strict=True)
        for opt, key, lr in ((self.opt_g, "optG", self.config.lr_g), (self.opt_d, "optD", self.config.lr_d)):
            opt.load_state_dict(state.optimizers[key])
            adopt_optimizer_state(opt, self._fused)
            for group in opt.param_groups:  # the config rules (a resume may change them); the file's are old
                group["lr"], group["betas"] = lr, (self.config.beta1, self.config.beta2)
        if self.parallel:  # the file holds rank 0's generator: each rank reseeds its own stream
            self.rng.manual_seed(self._noise_seed(state.step))
        elif state.rng.numel() == self.rng.get_state().numel():
            self.rng.set_state(state.rng)
        else:  # a CUDA generator's state does not fit a CPU one (and back): same seed, new stream
            log.warning("The checkpoint's noise generator comes from another kind of device (%s); "
                        "reseeding it from the seed and step.", self.device.type)
            self.rng.manual_seed(self.config.seed + state.step)
        self.step = state.step

    def save_checkpoint(self) -> None:
        """Remember this state as the last good one (and write it to out_dir if set)."""
        self._good = copy.deepcopy(self._state())
        if self.out_dir:
            save_checkpoint(self._good, self.out_dir)

    def _record(self, records: list[TrainStep]) -> None:
        lines = [r.metrics() for r in records]
        self.history.extend(lines)
        if self.out_dir:
            append_metrics(self.out_dir, lines)

    def _rewrite_metrics(self) -> None:
        if self.out_dir:
            write_metrics(self.out_dir, self.history)

    @classmethod
    def resume(cls, checkpoint_dir: Path | str, device: torch.device | str = "cpu", steps: int | None = None,
               out_dir: Path | None = None, changes: dict | None = None,
               parallel: ParallelHook | None = None) -> Trainer:
        """Continue a run from `checkpoint_dir` (written by any number of ranks): its step and loss history,
        its config with optionally more steps and `changes` to the settings in TUNABLE_ON_RESUME (others
        raise TrainError). Under torchrun every rank reads the same file: identical weights and optimisers."""
        state = load_checkpoint(Path(checkpoint_dir))
        config = resumed_config(TrainConfig.from_dict(state.config), steps, changes)
        trainer = cls(config, device=device, out_dir=Path(out_dir or checkpoint_dir), parallel=parallel)
        trainer._load_state(state)
        trainer._good = copy.deepcopy(state)  # the optimisers may share its tensors (Adam's step counts)
        trainer.history = [h for h in read_metrics(Path(checkpoint_dir)) if h["step"] <= state.step]
        trainer._rewrite_metrics()
        if trainer.history:
            trainer._last_loss_d = trainer.history[-1]["loss_d"]
        return trainer

    def export(self, directory: Path | str, data_credit: str = "", licence: str = "other") -> Path:
        """Write the EMA generator (config.json + model.safetensors), a model card and samples.png."""
        directory = Path(directory)
        grid = grid_uint8(self.sample())
        self.exported_generator().save_pretrained(directory)
        card = model_card(self.config.to_dict(), self.dataset_size, self.step, "samples.png", data_credit, licence,
                          self.latest_quality())
        write_card(directory, card, grid)
        return directory


    def exported_generator(self) -> Generator:
        """The EMA generator as a plain CPU `Generator`: a growing run's at the largest resolution it has
        fully grown into (its full size once the schedule is through)."""
        if self.growth is None:  # contiguous: safetensors stores plain row-major tensors
            return copy.deepcopy(self.ema).to("cpu", memory_format=torch.contiguous_format)
        stage = self.stage(max(self.step - 1, 0))
        resolution = stage.resolution // 2 if stage.fading else stage.resolution
        try:
            return self.ema.plain(resolution).to("cpu", memory_format=torch.contiguous_format)
        except ValueError as err:
            raise TrainError(f"{err} The run is at {stage.resolution} px; train to step "
                             f"{self.config.growth_end} to reach {self.config.image_size} px.") from err
