"""KID x 1000 against CPU minutes for a progressively grown run of the new default, as in docs/train.md.

Steps become CPU minutes the way docs/train.md's table does it: at the old default's 134 images/s on a
quiet 2-core CPU, scaled by each step's images/s relative to the old default, measured in this process
(alternated, median of the per-repeat ratios, in CPU time with one thread: wall-clock rates swing with
the other jobs on a shared machine, CPU time does not). A grown run's steps differ in cost by stage, so each
stage (a resolution, or a fade into it) gets its own ratio and the minutes are summed step by step.
KID is measured as in bench.train_quality (VGG16-HED, 256 EMA samples of fixed noise).

    python -m bench.train_grow_quality --grow-from 16 --phase 1000 --fade 500 --minutes 1 2 3 4 5 --threads 1
    python -m bench.train_grow_quality --grow-from 0 --minutes 1 2 5 --threads 1   # the plain new default

Slow (each run is 5 CPU minutes of training plus the speed ratios and the measurements); not in `python -m bench`.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.train_quality import KID_SAMPLES, OLD_DEFAULT, build_meter, load_images
from gan.train import TrainConfig, Trainer, suggest_config

log = logging.getLogger(__name__)
OLD_DEFAULT_IMAGES_PER_S = 134.0  # the old default on a quiet 2-core CPU (docs/train.md)


def timed_steps(trainer: Trainer, feed, first: int, steps: int) -> float:
    """CPU seconds for `steps` training steps starting at step index `first` (its stage), after one warm-up."""
    trainer.step = first
    float(trainer.train_step(next(feed))["loss_g"])
    started = time.process_time()  # CPU time: on a shared machine it stays put where wall time swings
    for _ in range(steps):
        float(trainer.train_step(next(feed))["loss_g"])
    return time.process_time() - started


def stage_speeds(config: TrainConfig, images: torch.Tensor, repeats: int = 5, steps: int = 8) -> dict:
    """{(resolution, fading): images/s relative to the old default}, alternated with the old default in this process."""
    old_cfg = suggest_config(len(images), "cpu", **OLD_DEFAULT, steps=10**6, kid_every=0)
    old, new = Trainer(old_cfg), Trainer(config)
    old_feed, new_feed = old.feed(images), new.feed(images)
    firsts = {}  # (resolution, fading): the middle step of its first stretch
    for s in range(0, config.growth_end + 1):
        stage = new.stage(s)
        firsts.setdefault((stage.resolution, stage.fading), s + (config.grow_fade_steps // 2 if stage.fading else 0))
    ratios = {stage: [] for stage in firsts}
    for _ in range(repeats):
        for stage, first in firsts.items():
            t_old = timed_steps(old, old_feed, 0, steps) / (steps * old_cfg.batch_size)
            t_new = timed_steps(new, new_feed, first, steps) / (steps * config.batch_size)
            ratios[stage].append(t_old / t_new)
    return {stage: statistics.median(r) for stage, r in ratios.items()}


def train_marks(config: TrainConfig, images: torch.Tensor, speeds: dict, minutes: list[float], meter) -> list[dict]:
    """Train step by step; at each mark of CPU minutes, KID x 1000 of 256 EMA samples."""
    trainer = Trainer(config)
    feed = trainer.feed(images)
    z = torch.randn(KID_SAMPLES, config.nz, generator=torch.Generator().manual_seed(config.seed + 7919))
    spent, pending, results = 0.0, list(minutes), []
    while pending:
        stage = trainer.stage()
        trainer.train_step(next(feed))
        trainer.step += 1
        spent += config.batch_size / (OLD_DEFAULT_IMAGES_PER_S * speeds[(stage.resolution, stage.fading)]) / 60
        if spent >= pending[0]:
            q = meter.measure(trainer.sample(z))
            results.append({"minutes": pending.pop(0), "step": trainer.step, "resolution": stage.resolution,
                            "kid": round(q.kid, 1), "kid_std": round(q.kid_std, 1),
                            "coverage": round(q.coverage, 2)})
            log.info("%s", results[-1])
    return results


def main() -> None:
    """Print the stage speeds and the KID at each mark, as JSON lines."""
    parser = argparse.ArgumentParser(prog="python -m bench.train_grow_quality", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/data/emoji-faces"))
    parser.add_argument("--grow-from", type=int, default=16, help="0: the plain new default")
    parser.add_argument("--phase", type=int, default=1000)
    parser.add_argument("--fade", type=int, default=500)
    parser.add_argument("--lr-g", type=float, default=2e-4)
    parser.add_argument("--lr-d", type=float, default=2e-4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 2, 5])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        images, _ = load_images(args.data, Path(tmp))
    config = suggest_config(len(images), "cpu", steps=10**6, sample_every=10**6, checkpoint_every=10**6,
                            kid_every=0, grow_from=args.grow_from, grow_phase_steps=args.phase,
                            grow_fade_steps=args.fade, lr_g=args.lr_g, lr_d=args.lr_d, batch_size=args.batch)
    speeds = stage_speeds(config, images)
    print(json.dumps({f"{res}px" + (" fade" if fading else ""): round(r, 2) for (res, fading), r in speeds.items()}),
          flush=True)
    meter = build_meter(images, torch.device("cpu"))
    for row in train_marks(config, images, speeds, args.minutes, meter):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
