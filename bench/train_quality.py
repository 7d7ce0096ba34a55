"""Quality against training time: KID x 1000 after 1, 2, 5 and 20 minutes, the CPU default against the best
alternative measured (hinge + spectral norm, batch 16, a D a quarter as wide: docs/train.md).

Both recipes train on the same folder (the 118 Noto Emoji faces by default) in one process, one after
the other, with the same seed; the clock counts training only (it stops while KID is measured). KID
is measured as the trainer measures it live (gan/train/kid.py), with 256 generated images. Slow (about
2 x 20 minutes plus the measurements), so it is not part of `python -m bench` unless `--slow` is given.

    python -m bench.train_quality [--data FOLDER] [--minutes 1 2 5 20] [--threads 2] [--quick] [--cost-only]

It first prints what one live KID measurement costs against training steps (`--cost-only`: only that).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import torch

from common.device import describe, pick_device
from gan.train import TrainConfig, Trainer, suggest_config
from gan.train.card import grid_to_pil, grid_uint8

log = logging.getLogger(__name__)

EMOJI = Path(__file__).resolve().parents[1] / "runs" / "emoji-faces"  # written by tools.datasets.emoji_faces
MINUTES = (1, 2, 5, 20)
KID_SAMPLES = 256
# what a measured run leaves out: an end, sample grids, checkpoints and the live KID (the clock times training)
QUIET = dict(steps=10_000_000, sample_every=10**6, checkpoint_every=10**6, kid_every=0)
# The CPU recipe of DCGAN's example at CPU sizes: the default, and (after the quiet-machine round of
# docs/train.md) the default again; bench.train_grow_quality measures its speed ratios against it.
OLD_DEFAULT = dict(loss="bce", lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, batch_size=32, ngf=32, ndf=32,
                   g_arch="dcgan", d_arch="dcgan", d_norm="batch", diffaugment="color,translation,cutout",
                   ema_decay=0.999)


# The best of the other recipes at 5 minutes on a quiet CPU (docs/train.md): KID 59 against the default's 14.
ALTERNATIVE = dict(loss="hinge", d_norm="spectral", batch_size=16, ndf=8)


def recipes(n_images: int, device: torch.device) -> dict[str, TrainConfig]:
    """{"new": today's suggest_config, "old": the best alternative measured}, both without live measurements."""
    return {"new": suggest_config(n_images, device, **QUIET),
            "old": suggest_config(n_images, device, **QUIET, **ALTERNATIVE)}


def train_for(config: TrainConfig, images: torch.Tensor, marks_s: list[float], meter, device,
              grids: Path | None = None, label: str = "") -> list[dict]:
    """Train until the last mark (training seconds); at each mark, KID of 256 EMA samples (and, with `grids`,
    the first 64 of them saved as `<label>-<minutes>min.png`, and the last mark's model exported beside them).
    One dict per mark."""
    trainer = Trainer(config, device=device)
    z = torch.randn(KID_SAMPLES, config.nz, generator=torch.Generator().manual_seed(config.seed + 7919))
    stop, results, pending = threading.Event(), [], list(marks_s)
    started, paused = time.perf_counter(), 0.0
    for rec in trainer.run(images, stop_event=stop):
        trained = time.perf_counter() - started - paused
        while pending and trained >= pending[0] and not stop.is_set():
            t0 = time.perf_counter()
            minutes, samples = pending.pop(0) / 60, trainer.sample(z)
            q = meter.measure(samples)
            if grids:
                grid_to_pil(grid_uint8(samples[:64])).save(grids / f"{label}-{minutes:g}min.png")
            results.append({"minutes": minutes, "step": rec.step, "kid": q.kid, "kid_std": q.kid_std,
                            "coverage": q.coverage, "images_per_s": rec.step * config.batch_size / trained})
            log.info("%s", results[-1])
            if grids and not pending:  # the run's last mark: keep its generator (Explore can open it)
                trainer.export(grids / f"{label}-{minutes:g}min-model")
            paused += time.perf_counter() - t0
        if not pending:
            stop.set()
    return results


def load_images(data: Path | None, tmp: Path) -> tuple[torch.Tensor, str]:
    """The folder's images at 64 px (the emoji faces when present), and its name."""
    from gan.ingest.data import IngestConfig, ingest

    folder = data or EMOJI
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder; run `python -m tools.datasets faces runs/emoji-faces`.")
    return ingest([folder], tmp / "ingest", IngestConfig(image_size=64)).images, folder.name


def build_meter(images: torch.Tensor, device: torch.device):
    """The trainer's quality meter on VGG16-HED features of the whole folder."""
    from common.backbones import load_backbone
    from gan.train.kid import FeatureNet, QualityMeter

    return QualityMeter(FeatureNet(load_backbone("vgg16-hed", device)), images.float().mul(2 / 255).sub(1).to(device))


def kid_cost_row(images: torch.Tensor, device: torch.device, repeats: int = 3) -> dict:
    """What one live measurement costs, in training steps of the new default and as a share of the time
    at its `kid_every` (medians of `repeats`, alternated with timed steps in this process)."""
    from gan.train import measure_step_seconds
    from gan.train.quality import LiveQuality

    config = recipes(len(images), device)["new"]
    config = replace(config, kid_every=suggest_config(len(images), device).kid_every)
    trainer, live = Trainer(config, device=device), LiveQuality(config, device, images.to(device))
    live.measure(trainer.sample, 0)  # builds the meter: once per run, not counted
    steps, kids = [], []
    for _ in range(repeats):
        steps.append(measure_step_seconds(config, device, steps=10))
        t0 = time.perf_counter()
        live.measure(trainer.sample, 0)
        kids.append(time.perf_counter() - t0)
    step_s, kid_s = statistics.median(steps), statistics.median(kids)
    share = kid_s / (kid_s + config.kid_every * step_s)
    return {"what": f"one live KID measurement ({config.kid_samples} images) vs training steps",
            "ours": round(kid_s, 2), "unit": "s", "device": describe(device),
            "note": (f"= {kid_s / step_s:.1f} steps of {step_s:.3f} s; every {config.kid_every} steps: "
                     f"{100 * share:.1f} % of the training time (target <= {100 * config.kid_budget:.0f} %)")}


def run(quick: bool = False, data: Path | None = None, minutes: tuple[float, ...] = MINUTES,
        cost_only: bool = False, grids: Path | None = None) -> list[dict]:
    """Rows: KID's cost, then KID x 1000 after each of `minutes` for the new default (ours) and the old one."""
    device = pick_device()
    minutes = (0.1, 0.2) if quick else minutes
    with tempfile.TemporaryDirectory() as tmp:
        try:
            images, name = load_images(data, Path(tmp))
        except FileNotFoundError as err:
            return [{"what": "KID after fixed training minutes", "note": f"skipped: {err}"}]
    rows = [kid_cost_row(images, device, 1 if quick else 3)]
    if cost_only:
        return rows
    meter = build_meter(images, device)
    marks = [m * 60 for m in minutes]
    if grids:
        grids.mkdir(parents=True, exist_ok=True)
    results = {key: train_for(config, images, marks, meter, device, grids, key)
               for key, config in recipes(len(images), device).items()}
    for new, old in zip(results["new"], results["old"]):
        rows.append({"what": f"KID x1000 after {new['minutes']:g} min of training ({len(images)} images of {name})",
                     "ours": round(new["kid"], 1), "reference": round(old["kid"], 1),
                     "unit": "KID x1000 (lower is better)",
                     "device": describe(device),
                     "note": (f"steps {new['step']} vs {old['step']}; images/s {new['images_per_s']:.0f} vs "
                              f"{old['images_per_s']:.0f}; +- {new['kid_std']:.0f} / {old['kid_std']:.0f}; "
                              f"coverage {new['coverage']:.2f} vs {old['coverage']:.2f}")})
    return rows


def main() -> None:
    """Print one line per mark."""
    parser = argparse.ArgumentParser(prog="python -m bench.train_quality", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="image folder (default: the emoji faces)")
    parser.add_argument("--minutes", type=float, nargs="+", default=list(MINUTES),
                        help="training minutes to measure at")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true", help="6 and 12 seconds: a smoke run")
    parser.add_argument("--cost-only", action="store_true", help="only what one live KID measurement costs")
    parser.add_argument("--grids", type=Path, default=None,
                        help="save each mark's first 64 samples here as PNGs, and each recipe's last model")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    for row in run(args.quick, args.data, tuple(args.minutes), args.cost_only, args.grids):
        print(f"{row['what']}: default {row.get('ours')}, hinge + SN at ndf 8 {row.get('reference', '-')} "
              f"({row.get('note', '')})")


if __name__ == "__main__":
    main()
