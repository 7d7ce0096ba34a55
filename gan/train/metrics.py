"""The scalars a training step reports and the run folder's `metrics.jsonl` (one JSON object per step).

The trainer (`TrainStep.metrics`), the plots (`gan.train.plot`), the CLI and the UI all read the
keys from here, so that a new metric is added in one place.
"""

from __future__ import annotations

import json
from pathlib import Path

METRICS_FILE = "metrics.jsonl"
LOSS_KEYS = ("loss_d", "loss_g")  # D's and G's losses
D_OUTPUT_KEYS = ("d_x", "d_g_z")  # mean D(x) on reals and D(G(z)) on fakes (sigmoid of D's logits)
METRIC_KEYS = LOSS_KEYS + D_OUTPUT_KEYS  # what a step computes on the device, in this order
METRIC_LABELS = {"loss_d": "loss D", "loss_g": "loss G", "d_x": "D(x)", "d_g_z": "D(G(z))"}


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
