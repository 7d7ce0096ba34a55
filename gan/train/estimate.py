"""How long a training step takes at given settings, measured on this machine (the UI's time estimate)."""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from gan.train.config import TrainConfig
from gan.train.trainer import Trainer


def measure_step_seconds(config: TrainConfig, device: torch.device | str = "cpu", steps: int = 4) -> float:
    """Seconds per training step at these settings: the median of `steps` timed steps on random data
    (progressive growing: a full-size step's, times the schedule's mean relative step cost)."""
    if config.grow_from:
        mean_cost = Trainer(config, device=device).work(0, config.steps) / config.steps
        return mean_cost * measure_step_seconds(replace(config, grow_from=0), device, steps)
    probe = replace(config, steps=steps + 2, sample_every=10**6, checkpoint_every=10**6)
    trainer = Trainer(probe, device=device)
    data = torch.zeros(max(probe.batch_size, 2), probe.nc, probe.image_size, probe.image_size, dtype=torch.uint8)
    feed = trainer.feed(data)
    for _ in range(2):  # warm-up: allocations, oneDNN / cuDNN kernel selection
        trainer.train_step(next(feed))
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        float(trainer.train_step(next(feed))["loss_g"])  # the sync waits for the device
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]
