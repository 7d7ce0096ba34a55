"""Training cost in CPU time per image: our Trainer against the PyTorch examples DCGAN program, same folder.

The companion of `bench.train_throughput` for a busy machine. Wall-clock images/s swing with whatever
else the cores run; the CPU time a run consumes does much less. One torch thread (so that no thread
spins waiting for another), and the CPU time of the reference's DataLoader worker processes is counted
(`RUSAGE_CHILDREN`, after the last epoch's workers are shut down), since on a laptop they take it from
the training. Same two comparisons as the throughput benchmark (as users run them; compute only), same
maths (64 px, batch 64, nz 100, ngf = ndf = 64, Adam 2e-4 / 0.5, BCE, no DiffAugment), alternated runs,
medians. `ratio` = reference CPU ms per image / ours.

    python -m bench.train_cpu [--data FOLDER] [--steps 6] [--repeats 3] [--size 64]
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench.reference import dcgan_example as ref
from bench.train_throughput import EMOJI, image_folder_root, ingest_folder, synthetic_folder, tensor_batches
from gan.train import TrainConfig, Trainer


def cpu_s() -> float:
    """CPU seconds of this process plus its finished children (DataLoader workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class Counted:
    """A batch iterator that starts the CPU clock at batch `warmup` and counts the images after it."""

    def __init__(self, batches, warmup: int) -> None:
        self.batches, self.warmup, self.images, self.started = batches, warmup, 0, 0.0

    def __iter__(self):
        last = 0
        for i, batch in enumerate(self.batches):
            if i == self.warmup:
                self.started = cpu_s()
            if i > self.warmup:
                self.images += last  # asking for batch i means batch i - 1 is done
            last = batch[0].shape[0]
            yield batch


def reference(batches, steps: int, size: int) -> float:
    """CPU ms per image of the example's loop over `steps` iterations after 2 warm-up ones."""
    counted = Counted(batches, 2)
    ref.train(iter(counted), steps, 2, image_size=size)
    if hasattr(batches, "close"):
        batches.close()  # shut the last epoch's workers down, so that their CPU time is counted
    gc.collect()
    return (cpu_s() - counted.started) / counted.images * 1000


def ours(images: torch.Tensor, steps: int) -> float:
    """CPU ms per image of our train_step over `steps` steps after 2 warm-up ones (no samples, no I/O)."""
    config = TrainConfig(image_size=images.shape[-1], nz=100, ngf=64, ndf=64, batch_size=64, steps=steps + 2,
                         sample_every=10**6, checkpoint_every=10**6)
    trainer, batches = Trainer(config), tensor_batches(images)  # random batches from the in-memory tensor
    for _ in range(2):
        float(trainer.train_step(next(batches)[0].contiguous(memory_format=torch.channels_last))["loss_g"])
    started = cpu_s()
    losses = [trainer.train_step(next(batches)[0].contiguous(memory_format=torch.channels_last))["loss_g"]
              for _ in range(steps)]
    float(torch.stack(losses).sum())
    return (cpu_s() - started) / (steps * config.batch_size) * 1000


def row(what: str, ours_ms: list[float], ref_ms: list[float]) -> dict:
    """A row of medians (lower is better: ms of CPU per image)."""
    o, r = statistics.median(ours_ms), statistics.median(ref_ms)
    return {"what": what, "ours": o, "reference": r, "unit": "CPU ms/image", "ratio": r / o, "device": "cpu, 1 thread",
            "note": f"median of {len(ours_ms)}, alternated; ours {min(ours_ms):.1f}-{max(ours_ms):.1f}, "
                    f"reference {min(ref_ms):.1f}-{max(ref_ms):.1f}"}


def run(quick: bool = False, data: Path | None = None, steps: int | None = None, size: int = 64,
        repeats: int | None = None) -> list[dict]:
    """Both comparisons at `size` px, alternated."""
    steps, repeats = steps or (2 if quick else 6), repeats or (1 if quick else 3)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            folder = data or (EMOJI if EMOJI.is_dir() else synthetic_folder(tmp))
            images = ingest_folder(folder, tmp, size)
            root = str(image_folder_root(folder, tmp))
            ms: dict[str, list[float]] = {"ref_users": [], "ref_compute": [], "ours_users": [], "ours_compute": []}
            for _ in range(repeats):
                loader = ref.make_dataloader(root, size, 64, 2)
                ms["ref_users"].append(reference(ref.batches_forever(loader), steps, size))
                ms["ours_users"].append(ours(images, steps))
                ms["ref_compute"].append(reference(tensor_batches(images), steps, size))
                ms["ours_compute"].append(ours(images, steps))
    finally:
        torch.set_num_threads(previous)
    return [row(f"DCGAN training CPU time, as users run it ({size} px, batch 64)", ms["ours_users"], ms["ref_users"]),
            row(f"DCGAN training CPU time, compute only ({size} px)", ms["ours_compute"], ms["ref_compute"])]


def main() -> None:
    """Print the two rows."""
    parser = argparse.ArgumentParser(prog="python -m bench.train_cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="image folder (default: the emoji faces if present)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--size", type=int, default=64, choices=(32, 64))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for r in run(args.quick, args.data, args.steps, args.size, args.repeats):
        print(f"{r['what']}: ours {r['ours']:.2f}, reference {r['reference']:.2f} {r['unit']}, "
              f"ratio {r['ratio']:.2f}x ({r['note']})")


if __name__ == "__main__":
    main()
