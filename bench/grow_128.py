"""128 px: the same DCGAN trained with and without progressive growing, for the same CPU time.

Slow (tens of minutes) and kept out of `python -m bench`. One run after the other in one process,
one torch thread (so that the process's CPU time is the work done, whatever else the machine runs);
each run stops when it has used `--budget` CPU seconds. At a quarter, half, three quarters and the
whole budget it saves, under --out/<run>/: the fixed-noise grid (PNG, samples upscaled to 128 px
while growing) and `samples_<pct>.safetensors`, 512 generated images as uint8 (EMA generator at the
stage reached), for a quality metric afterwards.

    python -m tools.noto_svg runs/emoji-faces runs/emoji-faces-128      # the 118 faces at 128 px
    python -m bench.grow_128 --data runs/emoji-faces-128 --budget 720 --out runs/grow-128
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import save_file

from gan.ingest.data import IngestConfig, ingest
from gan.train import Trainer, suggest_config
from gan.train.card import grid_to_pil, grid_uint8, to_uint8

log = logging.getLogger(__name__)
MARKS = (25, 50, 75, 100)  # percent of the budget at which samples are kept


class CpuBudget:
    """A stop flag for `Trainer.run` that turns on once this process has used `seconds` of CPU."""

    def __init__(self, seconds: float) -> None:
        self.start, self.seconds, self.paused = time.process_time(), seconds, 0.0

    def used(self) -> float:
        """CPU seconds used for training since the start (not counting the time spent keeping samples)."""
        return time.process_time() - self.start - self.paused

    def is_set(self) -> bool:
        return self.used() >= self.seconds


def keep(trainer: Trainer, folder: Path, pct: int, z: torch.Tensor) -> dict:
    """Save the grid and 512 samples of this moment; return a summary line."""
    folder.mkdir(parents=True, exist_ok=True)
    grid_to_pil(grid_uint8(trainer.sample())).save(folder / f"grid_{pct:03d}.png")
    images = torch.cat([trainer.sample(chunk) for chunk in z.split(128)])
    save_file({"images": to_uint8(images)}, str(folder / f"samples_{pct:03d}.safetensors"))
    stage = trainer.stage(max(trainer.step - 1, 0))
    return {"pct": pct, "step": trainer.step, "resolution": stage.resolution, "fade_in": stage.alpha}


def train_for(name: str, config, images: torch.Tensor, budget_s: float, out: Path) -> list[dict]:
    """Train until the CPU budget is spent, keeping samples at each mark."""
    trainer, clock = Trainer(config), CpuBudget(budget_s)
    z = torch.randn(512, config.nz, generator=torch.Generator().manual_seed(1234))
    marks, kept = list(MARKS), []
    for rec in trainer.run(images, stop_event=clock):
        while marks and (clock.used() >= budget_s * marks[0] / 100 or rec.finished):
            used, started = clock.used(), time.process_time()
            kept.append(keep(trainer, out / name, marks.pop(0), z) | {"cpu_s": round(used, 1)})
            clock.paused += time.process_time() - started
            log.info("%s: %s", name, kept[-1])
    (out / name / "marks.json").write_text(json.dumps(kept, indent=1))
    return kept


def main() -> None:
    """Both runs, one after the other, then a summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.grow_128", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("runs/grow-128"))
    parser.add_argument("--budget", type=float, default=720.0, help="CPU seconds per run")
    parser.add_argument("--grow-from", type=int, default=16)
    parser.add_argument("--phase", type=int, default=150, help="steps per resolution and per fade")
    parser.add_argument("--width", type=int, default=32, help="ngf = ndf (the app's CPU default: 32)")
    parser.add_argument("--only", choices=("plain", "grow"), default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    images = ingest([args.data], args.out / "ingest", IngestConfig(image_size=128)).images
    base = suggest_config(len(images), "cpu", 128, steps=100_000, sample_every=10**6, checkpoint_every=10**6,
                          ngf=args.width, ndf=args.width)
    runs = {"plain": base, "grow": replace(base, grow_from=args.grow_from, grow_phase_steps=args.phase,
                                            grow_fade_steps=args.phase)}
    for name, config in runs.items():
        if args.only in (None, name):
            log.info("%s: %s", name, config)
            train_for(name, config, images, args.budget, args.out)


if __name__ == "__main__":
    main()
