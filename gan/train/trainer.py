"""DCGAN training engine: `TrainConfig` (every default, validated) and `Trainer` (G, D, EMA-G, optimisers).

`Trainer.run(images_uint8)` yields a `TrainStep` per step. Speed choices, each measured on this
project's CPU (see docs/train.md): the data set is one in-memory uint8 tensor (no DataLoader, no
file I/O), scalars reach the host in one sync per flush (a flush at most every ~250 ms, or when a
sample/checkpoint is due), D's weight gradients are not computed during G's step, sampling runs
under `torch.inference_mode`, Adam is fused and tensors are channels_last (CPU and CUDA). `train_step(batch)` is pure in the sense a DistributedDataParallel
wrapper needs: one D step + one G step on the given batch, no host sync, no I/O.
Run `python -m gan.train --help` for the command line (gan/train/cli.py).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import torch

from gan.train.card import grid_to_pil, grid_uint8, model_card, write_card
from gan.train.checkpoint import TrainState, load_checkpoint, save_checkpoint
from gan.train.diffaugment import diff_augment, parse_policy
from gan.train.health import NAN_ADVICE, HealthMonitor, diversity
from gan.train.losses import d_loss, g_loss
from gan.train.progressive import Growth, Stage, build_networks, stage_costs
from gan.explorer.model import Generator, init_weights
from gan.train.config import (DEFAULT_POLICY, LIMITS, LOSSES, SMALL_DATASET, TUNABLE_ON_RESUME, TrainConfig,
                               suggest_config)

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
FLUSH_S = 0.25  # longest time between host syncs, so that a UI stays live


__all__ = ["DEFAULT_POLICY", "LIMITS", "LOSSES", "SMALL_DATASET", "TrainConfig", "TrainError", "TrainStep",
           "Trainer", "d_loss", "g_loss", "measure_step_seconds", "read_metrics", "suggest_config"]


class TrainError(ValueError):
    """Training cannot start or continue (wrong data, wrong checkpoint); the message says why."""


def measure_step_seconds(config: TrainConfig, device: torch.device | str = "cpu", steps: int = 4) -> float:
    """Seconds per training step at these settings: the median of `steps` timed steps on random data
    (progressive growing: a full-size step's, times the schedule's mean relative step cost)."""
    if config.grow_from:
        mean_cost = Trainer(config, device=device).work(0, config.steps) / config.steps
        return mean_cost * measure_step_seconds(replace(config, grow_from=0), device, steps)
    probe = replace(config, steps=steps + 2, sample_every=10**6, checkpoint_every=10**6)
    trainer = Trainer(probe, device=device)
    data = torch.zeros(max(probe.batch_size, 2), probe.nc, probe.image_size, probe.image_size, dtype=torch.uint8)
    data = trainer._prepare(data)
    for _ in range(2):  # warm-up: allocations, oneDNN / cuDNN kernel selection
        trainer.train_step(trainer._batch(data))
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        float(trainer.train_step(trainer._batch(data))["loss_g"])  # the sync waits for the device
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


@dataclass
class TrainStep:
    """What the trainer reports after a step."""

    step: int
    total_steps: int
    loss_d: float
    loss_g: float
    d_x: float  # mean D(x) on real images (sigmoid of D's logits)
    d_g_z: float  # mean D(G(z)) on fakes, before D's update
    images_per_s: float
    eta_s: float
    elapsed_s: float
    skipped_d: bool = False
    samples: torch.Tensor | None = None  # uint8 grid (C, H, W) from the fixed noise, EMA generator
    warning: str | None = None  # a health signal with advice
    finished: str | None = None  # "done", "stopped" or "nan" on the run's last record
    resolution: int = 0  # px that G and D trained at in this step (below image_size while growing)
    fade_in: float = 1.0  # weight of the newest layer while it fades in (progressive growing), else 1
    growing: bool = False  # whether this run grows progressively (then the two fields above go to metrics)

    def metrics(self) -> dict:
        """The scalar part, as one line of metrics.jsonl."""
        line = {"step": self.step, "loss_d": self.loss_d, "loss_g": self.loss_g, "d_x": self.d_x,
                "d_g_z": self.d_g_z, "skipped_d": self.skipped_d, "images_per_s": round(self.images_per_s, 2)}
        if self.growing:
            line.update(resolution=self.resolution, fade_in=round(self.fade_in, 4))
        return line


def resumed_config(config: TrainConfig, steps: int | None = None, changes: dict | None = None) -> TrainConfig:
    """The config a resumed run goes on with: `steps` and tunable `changes` applied, fixed fields refused."""
    changes = dict(changes or {}, **({"steps": steps} if steps is not None else {}))
    for name, value in changes.items():
        if name not in TrainConfig.__dataclass_fields__:
            raise TrainError(f"Unknown training setting {name!r}.")
        if name not in TUNABLE_ON_RESUME and getattr(config, name) != value:
            raise TrainError(f"{name} is {getattr(config, name)!r} in this run and cannot change when resuming "
                             "(it fixes the networks' shapes or the run's sample noise); set it back, or start a new run.")
    try:
        return replace(config, **{k: v for k, v in changes.items() if k in TUNABLE_ON_RESUME})
    except ValueError as err:
        raise TrainError(str(err)) from err


def adopt_optimizer_state(opt: torch.optim.Optimizer, fused: bool | None) -> None:
    """Fit loaded Adam state to this trainer's parameters and device.

    Checkpoints store contiguous tensors, but on CUDA the parameters are channels_last and fused
    Adam refuses moments of another layout; a checkpoint written on another device also brings
    its own `fused` flag and `step` placement. So: this device's `fused`, moments in the
    parameters' layout, and `step` on the parameters' device only where fused Adam wants it there.
    """
    for group in opt.param_groups:
        group["fused"] = fused
    for param, slots in opt.state.items():
        for key, value in slots.items():
            if not torch.is_tensor(value):
                continue
            if key == "step":
                slots[key] = value.to(param.device if fused else "cpu", torch.float32)
            elif value.shape == param.shape:
                slots[key] = torch.empty_like(param).copy_(value)


def _configure_backend(device: torch.device) -> None:
    """On CUDA: TF32 matmuls/convs and cuDNN autotuning (fixed shapes every step)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


class Trainer:
    """Owns G, D, the EMA copy of G and both Adam optimisers; runs, checkpoints, resumes, exports."""

    def __init__(self, config: TrainConfig, device: torch.device | str = "cpu", out_dir: Path | None = None) -> None:
        self.config, self.device = config, torch.device(device)
        self.out_dir = Path(out_dir) if out_dir else None
        _configure_backend(self.device)
        # channels_last everywhere (also on the CPU: in NCHW each transposed convolution of G copied its input
        # and gradients to NHWC and back for oneDNN; 64 px step ~13 % less CPU time, docs/train.md)
        self._fmt = torch.channels_last
        with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
            torch.manual_seed(config.seed)
            self.G, self.D = build_networks(config.model_config, config.grow_from)
            self.G.apply(init_weights)
            self.D.apply(init_weights)
            noise = torch.randn(config.n_samples + 256, config.nz)
        self.G.to(self.device, memory_format=self._fmt)
        self.D.to(self.device, memory_format=self._fmt)
        self.ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.fixed_z, self._calib_z = noise[: config.n_samples].to(self.device), noise[config.n_samples:].to(self.device)
        # fused Adam (one kernel per parameter instead of ~8 elementwise passes): on CUDA, and on the CPU
        # where the default per-tensor loop took ~8 % of a 64 px step (docs/train.md); same update rule
        self._fused = True if self.device.type in ("cuda", "cpu") else None
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=config.lr_g, betas=betas, fused=self._fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=config.lr_d, betas=betas, fused=self._fused)
        self.rng = torch.Generator(device=self.device).manual_seed(config.seed)
        self.policy = parse_policy(config.diffaugment)
        self.step, self.history = 0, []
        self._costs: dict | None = None  # relative step cost per growth stage, measured on first use
        self.growth = Growth(config.image_size, config.grow_from, config.grow_phase_steps,
                             config.grow_fade_steps) if config.grow_from else None
        self._good: TrainState | None = None  # last good checkpoint, for the NaN rollback
        self._last_loss_d = float("inf")
        self.dataset_size = 0

    # ---- one step (pure: no host sync, no I/O) -------------------------------------------------
    def train_step(self, real: torch.Tensor, skip_d: bool = False) -> dict[str, torch.Tensor]:
        """One D step then one G step on `real` (N, C, S, S) in [-1, 1]; returns detached scalars."""
        real = self._enter_stage(real)
        z = torch.randn(real.shape[0], self.config.nz, 1, 1, device=self.device, generator=self.rng)
        fake = self.G(z)
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
            d_real, d_fake = self.D(real_in), self.D(fake_in)
            loss = d_loss(self.config.loss, d_real, d_fake, 1.0 - self.config.label_smoothing)
        if not skip:
            self.opt_d.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_d.step()
        return loss.detach(), d_real.detach(), d_fake.detach()

    def _g_step(self, fake_in: torch.Tensor) -> torch.Tensor:
        """G's update through a frozen D: D's weight gradients are never computed (saves work)."""
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
    def run(self, data: torch.Tensor, stop_event: threading.Event | None = None) -> Iterator[TrainStep]:
        """Train on uint8 images (N, C, S, S) until config.steps or `stop_event`; yield every step."""
        data = self._prepare(data)
        monitor = HealthMonitor(diversity(self._as_float(data[:64])))
        if self._good is None:
            self._good = copy.deepcopy(self._state())
        clock = _Clock(self.step, self.config.steps, self.config.batch_size, self.work if self.growth else None)
        pending: list[tuple[int, dict, bool]] = []
        while True:
            stopping = stop_event is not None and stop_event.is_set()
            if self.step >= self.config.steps or stopping:
                yield from self._finish(pending, monitor, clock, "stopped" if stopping else "done")
                return
            skip = 0 < self._last_loss_d < self.config.d_skip_threshold
            pending.append((self.step + 1, self.train_step(self._batch(data), skip), skip))
            self.step += 1
            ending = self.step >= self.config.steps or (stop_event is not None and stop_event.is_set())
            if not ending and self._due(clock):  # else the next turn's _finish flushes
                records = self._flush(pending, monitor, clock)
                yield from records
                if records and records[-1].finished == "nan":
                    return

    def _prepare(self, data: torch.Tensor) -> torch.Tensor:
        """Check the image tensor against the config and move it to the device once."""
        c = self.config
        if not isinstance(data, torch.Tensor) or data.dtype != torch.uint8 or data.dim() != 4:
            raise TrainError("Training data must be a uint8 tensor of images shaped (N, C, S, S).")
        if data.shape[0] < 1 or tuple(data.shape[1:]) != (c.nc, c.image_size, c.image_size):
            raise TrainError(f"The images are {tuple(data.shape[1:])} but the settings expect "
                             f"({c.nc}, {c.image_size}, {c.image_size}).")
        self.dataset_size = int(data.shape[0])
        return data.to(self.device).contiguous(memory_format=self._fmt)

    def _as_float(self, images: torch.Tensor) -> torch.Tensor:
        return images.float().mul_(2 / 255).sub_(1)

    def _batch(self, data: torch.Tensor) -> torch.Tensor:
        """A random batch (with replacement) straight from the in-memory tensor, in [-1, 1]."""
        idx = torch.randint(0, data.shape[0], (self.config.batch_size,), device=self.device, generator=self.rng)
        return self._as_float(data[idx]).contiguous(memory_format=self._fmt)

    def _due(self, clock: "_Clock") -> bool:
        c = self.config
        return (self.step % c.sample_every == 0 or self.step % c.checkpoint_every == 0
                or clock.since_flush() >= FLUSH_S)

    def _flush(self, pending: list, monitor: HealthMonitor, clock: "_Clock") -> list[TrainStep]:
        """One host sync for all pending steps -> records; samples/checkpoint when due; NaN guard."""
        keys = ("loss_d", "loss_g", "d_x", "d_g_z")
        rows = torch.stack([torch.stack([out[k].float() for k in keys]) for _, out, _ in pending]).tolist()
        steps = [(s, skip) for s, _, skip in pending]
        pending.clear()
        clock.flushed(self.step)
        records = []
        for (step, skip), row in zip(steps, rows):
            if not all(map(_finite, row)):
                return [self._rollback(step, clock)]
            rec = TrainStep(step, self.config.steps, *row, *clock.rates(step), skipped_d=skip, **self._stage_fields(step))
            rec.warning = monitor.on_losses(rec.loss_d)
            records.append(rec)
        self._last_loss_d = records[-1].loss_d
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

    def _finish(self, pending: list, monitor: HealthMonitor, clock: "_Clock", why: str) -> Iterator[TrainStep]:
        """Flush what is left, then a final record with samples and a checkpoint."""
        records = self._flush(pending, monitor, clock) if pending else []
        if records and records[-1].finished == "nan":
            yield from records
            return
        last = records.pop() if records else self._repeat_last(clock)
        yield from records
        if last.samples is None or self.step % self.config.checkpoint_every:
            self._maybe_sample_and_save(last, monitor, force=True)
        last.finished = why
        yield last

    def _repeat_last(self, clock: "_Clock") -> TrainStep:
        """A record for the current step when no step ran (stopped at once, or already done)."""
        h = self.history[-1] if self.history else {"loss_d": 0.0, "loss_g": 0.0, "d_x": 0.0, "d_g_z": 0.0}
        return TrainStep(self.step, self.config.steps, h["loss_d"], h["loss_g"], h["d_x"], h["d_g_z"],
                         *clock.rates(self.step), **self._stage_fields(self.step))

    def _rollback(self, step: int, clock: "_Clock") -> TrainStep:
        """A loss went NaN/inf: restore the last good checkpoint and report it."""
        good = self._good
        self._load_state(good)
        self.history = [h for h in self.history if h["step"] <= good.step]
        self._rewrite_metrics()
        log.warning("Non-finite loss at step %d; rolled back to step %d.", step, good.step)
        rec = TrainStep(good.step, self.config.steps, float("nan"), float("nan"), float("nan"), float("nan"),
                        *clock.rates(step), **self._stage_fields(good.step))
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
        if state.rng.numel() == self.rng.get_state().numel():
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
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / METRICS_FILE, "a", encoding="utf-8") as fh:
                fh.writelines(json.dumps(line) + "\n" for line in lines)

    def _rewrite_metrics(self) -> None:
        if self.out_dir:
            text = "".join(json.dumps(h) + "\n" for h in self.history)
            (self.out_dir / METRICS_FILE).write_text(text, encoding="utf-8")

    @classmethod
    def resume(cls, checkpoint_dir: Path | str, device: torch.device | str = "cpu", steps: int | None = None,
               out_dir: Path | None = None, changes: dict | None = None) -> "Trainer":
        """Continue a run from `checkpoint_dir`: its step and loss history, its config with optionally
        more steps and `changes` to the settings in TUNABLE_ON_RESUME (others raise TrainError)."""
        state = load_checkpoint(Path(checkpoint_dir))
        config = resumed_config(TrainConfig.from_dict(state.config), steps, changes)
        trainer = cls(config, device=device, out_dir=Path(out_dir or checkpoint_dir))
        trainer._load_state(state)
        trainer._good = state
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
        card = model_card(self.config.to_dict(), self.dataset_size, self.step, "samples.png", data_credit, licence)
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


def read_metrics(directory: Path) -> list[dict]:
    """The metrics.jsonl lines of a run folder (empty when there is none)."""
    path = directory / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _finite(value: float) -> bool:
    return value == value and abs(value) != float("inf")


class _Clock:
    """Throughput and ETA over the current run, and the time since the last host sync."""

    def __init__(self, start_step: int, total: int, batch_size: int, work=None) -> None:
        self.start_step, self.total, self.batch_size = start_step, total, batch_size
        self.work = work  # (first, end) -> cost of those steps; None: every step costs the same
        self.t0 = self.last = time.perf_counter()

    def since_flush(self) -> float:
        return time.perf_counter() - self.last

    def flushed(self, step: int) -> None:
        self.last = time.perf_counter()

    def rates(self, step: int) -> tuple[float, float, float]:
        """(images/s, ETA in s, elapsed s) as of now, for `step`."""
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        done = max(step - self.start_step, 0)
        if self.work is None:
            done_work, left = float(done), float(max(self.total - step, 0))
        else:  # progressive growing: the steps left cost more than the ones done
            done_work, left = self.work(self.start_step, step), self.work(step, self.total)
        eta = elapsed / done_work * left if done_work else 0.0
        return done * self.batch_size / elapsed, eta, elapsed

