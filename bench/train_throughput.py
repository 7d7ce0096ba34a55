"""Training throughput (images/s): our Trainer against the PyTorch examples DCGAN program, same folder.

Two comparisons at 32 and at 64 px, run in one process one after the other, same maths (batch 64,
nz 100, ngf = ndf = 64, Adam 2e-4 / (0.5, 0.999), BCE, no DiffAugment):
- as users run them: the reference reads the folder through ImageFolder + DataLoader(num_workers=2)
  every epoch; ours ingests the folder once into a uint8 tensor (its one-off seconds are printed apart);
- compute only: both fed random batches from one in-memory tensor.

    python -m bench.train_throughput [--data FOLDER] [--steps 10] [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.reference import dcgan_example as ref
from common.device import describe, pick_device
from gan.train import TrainConfig, Trainer

EMOJI = Path(__file__).resolve().parents[1] / "runs" / "emoji-faces"  # written by tools.datasets.emoji_faces


def synthetic_folder(root: Path, n: int = 256, size: int = 72) -> Path:
    """A folder of n random-blob PNGs (used when no real image folder is given)."""
    folder = root / "synthetic"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BICUBIC).save(folder / f"{i:04d}.png")
    return folder


def image_folder_root(folder: Path, tmp: Path) -> Path:
    """ImageFolder wants root/<class>/<images>: a root whose one class links to `folder`."""
    root = tmp / "imagefolder"
    root.mkdir(exist_ok=True)
    if not (root / "images").exists():
        (root / "images").symlink_to(folder.resolve(), target_is_directory=True)
    return root


def ours(images: torch.Tensor, steps: int, warmup: int, device: torch.device, compiled: bool = False) -> float:
    """Our Trainer on a uint8 tensor: images/s over `steps` after `warmup` steps (no samples, no checkpoints).
    `compiled`: G and D under torch.compile (in place, so checkpoints keep their keys)."""
    config = TrainConfig(image_size=images.shape[-1], nz=100, ngf=64, ndf=64, batch_size=64, steps=warmup + steps + 1,
                         sample_every=10**6, checkpoint_every=10**6)
    trainer, started = Trainer(config, device=device), None
    if compiled:
        trainer.G.compile()
        trainer.D.compile()
    for rec in trainer.run(images):
        if rec.step == warmup:
            started = time.perf_counter()
        if rec.step == warmup + steps:
            return steps * config.batch_size / (time.perf_counter() - started)
    raise RuntimeError("the trainer stopped early")


def tensor_batches(images: torch.Tensor, batch_size: int = 64):
    """Random batches in [-1, 1] from one in-memory uint8 tensor, shaped like a DataLoader's (x, y)."""
    gen = torch.Generator().manual_seed(0)
    while True:
        idx = torch.randint(0, images.shape[0], (batch_size,), generator=gen)
        yield images[idx].float().mul_(2 / 255).sub_(1), None


def spread_row(what: str, ours_runs: list[float], ref_runs: list[float], device: str) -> dict:
    """A row of medians, with each side's range (min-max over the repeats) in the note."""
    o, r = statistics.median(ours_runs), statistics.median(ref_runs)
    note = (f"median of {len(ours_runs)}, alternated; ours {min(ours_runs):.0f}-{max(ours_runs):.0f}, "
            f"reference {min(ref_runs):.0f}-{max(ref_runs):.0f}")
    return {"what": what, "ours": o, "reference": r, "unit": "images/s", "ratio": o / r, "device": device, "note": note}


def ingest_folder(folder: Path, tmp: Path, size: int) -> torch.Tensor:
    """Our one-off ingest of the folder at `size` px (its seconds are printed, not timed as training)."""
    from gan.ingest.data import IngestConfig, ingest

    t0 = time.perf_counter()
    images = ingest([folder], tmp / f"ingest-{size}", IngestConfig(image_size=size, channels=3)).images
    print(f"data: {folder} ({images.shape[0]} images at {size} px); our one-off ingest: "
          f"{time.perf_counter() - t0:.2f} s")
    return images


def compare(folder: Path, tmp: Path, images: torch.Tensor, steps: int, warmup: int, device: torch.device,
            repeats: int = 3) -> list[dict]:
    """Both comparisons at the images' size, `repeats` alternated runs each; rows of medians."""
    size = images.shape[-1]
    loader = ref.make_dataloader(str(image_folder_root(folder, tmp)), size, 64, workers=2)
    runs: dict[str, list[float]] = {"ref_users": [], "ours_users": [], "ref_compute": [], "ours_compute": []}
    for _ in range(repeats):  # alternated, so that a change in the machine's load hits both sides
        runs["ref_users"].append(ref.train(ref.batches_forever(loader), steps, warmup, device=str(device),
                                           image_size=size))
        runs["ours_users"].append(ours(images, steps, warmup, device))
        runs["ref_compute"].append(ref.train(tensor_batches(images), steps, warmup, device=str(device),
                                             image_size=size))
        runs["ours_compute"].append(ours(images, steps, warmup, device))
    dev = describe(device)
    return [
        spread_row(f"DCGAN training, as users run it ({size} px, batch 64)", runs["ours_users"], runs["ref_users"],
                   dev),
        spread_row(f"DCGAN training, compute only ({size} px, in-memory batches)", runs["ours_compute"],
                   runs["ref_compute"], dev),
    ]


def run(quick: bool = False, data: Path | None = None, steps: int | None = None,
        sizes: tuple[int, ...] = (32, 64)) -> list[dict]:
    """Both comparisons at each size (on a CPU 32 px gets 4x the steps: each is about 4x cheaper)."""
    device = pick_device()
    # a GPU step takes milliseconds: more of them for a stable rate; a CPU step 0.5 s at 64 px
    steps = steps or (4 if quick else 50 if device.type == "cuda" else 10)
    warmup = 1 if quick else 3
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folder = data or (EMOJI if EMOJI.is_dir() else synthetic_folder(tmp))
        images = {size: ingest_folder(folder, tmp, size) for size in sizes}
        for size in sizes:
            scaled = steps * (64 // size) ** 2 if device.type == "cpu" else steps  # a GPU is launch-bound here
            rows += compare(folder, tmp, images[size], scaled, warmup, device, 1 if quick else 3)
        if device.type == "cuda":
            rows.append(compiled_row(images[64] if 64 in images else ingest_folder(folder, tmp, 64), steps, device))
    return rows


def compiled_row(images: torch.Tensor, steps: int, device: torch.device) -> dict:
    """Ours with and without torch.compile, 64 px compute only (measured on this CPU: no gain, 23 s of
    compiling, so the app does not compile; this row decides it for CUDA)."""
    eager = ours(images, steps, 2, device)
    compiled = ours(images, steps, 5, device, compiled=True)  # warm-up pays the compiles (and recompiles)
    return {"what": "DCGAN training, compute only (64 px): ours + torch.compile vs ours eager", "ours": compiled,
            "reference": eager, "unit": "images/s", "ratio": compiled / eager, "device": describe(device),
            "note": "decides whether the trainer should compile on CUDA"}


def main() -> None:
    """Print the two rows as a small table."""
    parser = argparse.ArgumentParser(prog="python -m bench.train_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="image folder (default: the emoji faces if present)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per run at 64 px (default 10, 50 on CUDA, quick 4)")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for row in run(args.quick, args.data, args.steps):
        print(f"{row['what']}: ours {row['ours']:.1f} {row['unit']}, reference {row['reference']:.1f} "
              f"{row['unit']}, ratio {row['ratio']:.2f}x on {row['device']}")


if __name__ == "__main__":
    main()
