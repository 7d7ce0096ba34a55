"""Data-parallel scaling: images/s of the trainer with 1 process against 2 under DDP, same config.

Both runs use the same global batch and maths (64 px, global batch 64, nz 100, ngf = ndf = 32, BCE,
no DiffAugment); each is a fresh process group of spawned processes on loopback (gloo on CPU),
timed over `steps` train steps (forwards, backwards with DDP's gradient all_reduce, Adam, EMA) after
`warmup` steps, on rank 0, one configuration right after the other. On CPU the cores are shared:
1 process x T threads against 2 processes x T/2 threads, so the same CPU time is on offer and the
ratio shows what DDP's overhead costs or its better core use gains; on a 2-core machine expect
about 1x (the point of this project's DDP is correctness and GPUs). Where CUDA is there, a row
compares 1 GPU with this machine's CPU (and, with two or more GPUs, 2 GPUs under NCCL with 1 GPU).

    python -m bench.ddp_scaling [--steps 10] [--threads 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

from bench import free_port
from gan.train import TrainConfig, Trainer
from gan.train.distributed import DistEnv, device_for, parallel_hook, setup, teardown

CONFIG = dict(image_size=64, nc=3, nz=100, ngf=32, ndf=32, batch_size=64, diffaugment="",
              sample_every=10**6, checkpoint_every=10**6)
N_IMAGES = 512



def _rank(rank: int, world: int, port: int, device: str, threads: int, steps: int, warmup: int, out_file: str) -> None:
    """One spawned rank: train warmup + steps steps; rank 0 writes its images/s to `out`."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), ATELIER_DEVICE=device)
    torch.set_num_threads(threads)
    env = DistEnv(rank=rank, local_rank=rank, world_size=world)
    dev = device_for(env, device)
    setup(env, dev)
    try:
        config = TrainConfig(steps=warmup + steps, **CONFIG)
        trainer = Trainer(config, device=dev, parallel=parallel_hook(env, dev))
        images = torch.randint(0, 256, (N_IMAGES, 3, 64, 64), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(0))
        feed = trainer.feed(images)  # this rank's shard of the set, as run() takes it
        out = trainer.train_step(next(feed))  # first step is always a warm-up
        for step in range(1, max(warmup, 1) + steps):
            if step == max(warmup, 1):
                float(out["loss_g"])  # wait for the device before reading the clock
                started = time.perf_counter()
            out = trainer.train_step(next(feed))
        float(out["loss_g"])
        rate = steps * config.batch_size / (time.perf_counter() - started)
        if rank == 0:
            Path(out_file).write_text(json.dumps({"images_per_s": rate}))
    finally:
        teardown()


def measure(world: int, device: str, threads: int, steps: int, warmup: int) -> float:
    """Global images/s of `world` spawned processes on `device` (each with `threads` CPU threads)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "rate.json")
        mp.spawn(_rank, args=(world, free_port(), device, threads, steps, warmup, out), nprocs=world, join=True)
        return json.loads(Path(out).read_text())["images_per_s"]


def run(quick: bool = False, steps: int | None = None, threads: int | None = None) -> list[dict]:
    """Rows {what, ours, reference, unit, ratio, device}: 2 processes (ours) against 1 (reference)."""
    steps, warmup = steps or (3 if quick else 10), 1 if quick else 2
    threads = threads or min(2, os.cpu_count() or 1)
    one = measure(1, "cpu", threads, steps, warmup)
    two = measure(2, "cpu", max(1, threads // 2), steps, warmup)
    one_half = measure(1, "cpu", max(1, threads // 2), steps, warmup)
    cpu = f"CPU ({threads} threads in all)"
    rows = [{"what": "DDP scaling, 2 gloo processes vs 1 (64 px, global batch 64)", "ours": two, "reference": one,
             "unit": "images/s", "ratio": two / one, "device": cpu,
             "note": f"{os.cpu_count()} cores shared; 1 process uses {threads} threads, "
                     f"each of 2 uses {max(1, threads // 2)}"},
            {"what": f"DDP scaling, 2 gloo processes vs 1 at {max(1, threads // 2)} thread(s) each", "ours": two,
             "reference": one_half, "unit": "images/s", "ratio": two / one_half, "device": cpu,
             "note": "same threads per process: the ideal is 2x when the cores are free"}]
    if torch.cuda.is_available():
        gpu = measure(1, "cuda", threads, steps, warmup)
        name = torch.cuda.get_device_name(0)
        rows.append({"what": "Trainer, 1 GPU vs 1 CPU process", "ours": gpu, "reference": one,
                     "unit": "images/s", "ratio": gpu / one, "device": f"CUDA ({name}) vs {cpu}"})
        if torch.cuda.device_count() >= 2:
            gpus = measure(2, "cuda", threads, steps, warmup)
            rows.append({"what": "DDP scaling, 2 GPUs (NCCL) vs 1", "ours": gpus, "reference": gpu,
                         "unit": "images/s", "ratio": gpus / gpu, "device": f"2 x CUDA ({name})"})
    return rows


def main() -> None:
    """Print the rows."""
    parser = argparse.ArgumentParser(prog="python -m bench.ddp_scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run (default 10, quick 3)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads in all (default min(2, cores))")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for row in run(args.quick, args.steps, args.threads):
        print(f"{row['what']}: {row['ours']:.1f} vs {row['reference']:.1f} {row['unit']}, "
              f"ratio {row['ratio']:.2f}x on {row['device']}" + (f" ({row['note']})" if row.get("note") else ""))


if __name__ == "__main__":
    main()
