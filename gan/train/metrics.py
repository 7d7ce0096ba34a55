"""The records a training run reports and the run folder's `metrics.jsonl` (one JSON object per step).

`TrainStep` is what the trainer yields after each step; `Quality` is a KID / coverage measurement
(gan/train/kid.py), attached to the steps where one was taken; `RunClock` gives a record its
throughput, ETA and elapsed time. The trainer (`TrainStep.metrics`), the
plots (`gan.train.plot`), the CLI, the model card and the UI all read the keys from here, so that a
new metric is added in one place.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import torch

METRICS_FILE = "metrics.jsonl"
LOSS_KEYS = ("loss_d", "loss_g")  # D's and G's losses
D_OUTPUT_KEYS = ("d_x", "d_g_z")  # mean D(x) on reals and D(G(z)) on fakes (sigmoid of D's logits)
METRIC_KEYS = LOSS_KEYS + D_OUTPUT_KEYS  # what a step computes on the device, in this order
# measured every kid_every steps (gan/train/kid.py), on those steps' lines only
QUALITY_KEYS = ("kid", "kid_std", "coverage", "real_coverage", "kid_s")
COVERAGE_KEYS = ("coverage", "real_coverage")  # the samples' coverage of the data, and the data's own
GROWTH_KEYS = ("resolution", "fade_in")  # on every line of a progressively growing run
METRIC_LABELS = {"loss_d": "loss D", "loss_g": "loss G", "d_x": "D(x)", "d_g_z": "D(G(z))", "kid": "KID x 1000",
                 "kid_std": "KID std x 1000", "coverage": "coverage (samples)",
                 "real_coverage": "coverage (your images' own)", "kid_s": "KID seconds", "resolution": "px",
                 "fade_in": "fade-in"}


@dataclass(frozen=True)
class Quality:
    """One quality measurement of a generator against the training set (gan/train/kid.py)."""

    kid: float  # KID x 1000 (lower is better; 0 = indistinguishable in these features)
    kid_std: float  # its standard deviation over the subsets, x 1000
    coverage: float  # share of the reference half of the real set with a generated neighbour (0..1)
    real_coverage: float  # the same for the other half of the real set: what "diverse enough" looks like
    seconds: float  # what the measurement cost (generation, features, estimate)

    KEYS: ClassVar[tuple[str, ...]] = QUALITY_KEYS

    def metrics(self) -> dict:
        """The measurement as metrics.jsonl keys (rounded: they are estimates)."""
        values = (round(self.kid, 2), round(self.kid_std, 2), round(self.coverage, 3), round(self.real_coverage, 3),
                  round(self.seconds, 2))
        return dict(zip(QUALITY_KEYS, values, strict=True))


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
    quality: Quality | None = None  # KID x 1000 and coverage, on the steps where they were measured

    def metrics(self) -> dict:
        """The scalar part, as one line of metrics.jsonl (with the quality keys where measured)."""
        line = {"step": self.step, **{k: getattr(self, k) for k in METRIC_KEYS}, "skipped_d": self.skipped_d,
                "images_per_s": round(self.images_per_s, 2)}
        if self.growing:
            line.update(resolution=self.resolution, fade_in=round(self.fade_in, 4))
        if self.quality is not None:
            line.update(self.quality.metrics())
        return line


class RunClock:
    """Throughput and ETA over the current run, and the time since the last host sync."""

    def __init__(self, start_step: int, total: int, batch_size: int, work=None) -> None:
        self.start_step, self.total, self.batch_size = start_step, total, batch_size
        self.work = work  # (first, end) -> cost of those steps; None: every step costs the same
        self.t0 = self.last = time.perf_counter()

    def since_flush(self) -> float:
        """Seconds since the last host sync."""
        return time.perf_counter() - self.last

    def flushed(self, step: int) -> None:
        """A host sync happened (at `step`)."""
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


def latest_quality(history: list[dict]) -> dict | None:
    """The last measured quality keys of a run's metrics lines (with its step), or None."""
    measured = [h for h in history if "kid" in h]
    return {k: measured[-1][k] for k in ("step", *QUALITY_KEYS)} if measured else None


def read_metrics(directory: Path) -> list[dict]:
    """The metrics.jsonl lines of a run folder (empty when there is none)."""
    path = Path(directory) / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def append_metrics(directory: Path, lines: list[dict]) -> None:
    """Add records to the run folder's metrics.jsonl (created with its folder when missing)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / METRICS_FILE, "a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(line) + "\n" for line in lines)


def write_metrics(directory: Path, lines: list[dict]) -> None:
    """Replace the run folder's metrics.jsonl with `lines` (after a resume or a rollback)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / METRICS_FILE).write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
