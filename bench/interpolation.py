"""A 60-frame latent interpolation exported as a looping GIF at 256 px: ours against the notebook way.

Ours: `gan.explorer.latent.interpolate` (one batched forward pass under inference_mode, slerp) +
`animation_bytes` (ping-pong loop). Reference: bench/reference/notebook_interpolation.py
(one forward pass per frame, lerp). Same model, same endpoints, same process, alternating.
Run: `python -m bench.interpolation [--quick]`.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from bench.reference.notebook_interpolation import interpolation_gif
from common.device import pick_device
from gan.explorer import latent as L
from gan.explorer import zoo

FRAMES, SIZE, MODEL_ID = 60, 256, "dcgan-faces-64"


def _ours(G, directions) -> bytes:
    job = L.Interpolation(start=L.Recipe(model=MODEL_ID, seed=1, size=SIZE), end_seed=2, frames=FRAMES)
    return L.animation_bytes(L.interpolate(G, job, directions), job.fps, "gif")


def _reference(G) -> bytes:
    z = L.sample_z([1, 2], G.cfg.nz, next(G.parameters()).device)
    return interpolation_gif(G, z[0], z[1], FRAMES, SIZE)


def run(quick: bool = False) -> list[dict]:
    """Median seconds of each over a few alternating repeats."""
    device = pick_device()
    G = zoo.load(zoo.resolve(MODEL_ID), device).G
    directions = None  # no edits: the plain interpolation both sides make
    ours, ref = [], []
    for _ in range(2 if quick else 5):
        started = time.perf_counter()
        _ours(G, directions)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        _reference(G)
        ref.append(time.perf_counter() - started)
    o, r = statistics.median(ours), statistics.median(ref)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [{"what": f"interpolation {FRAMES} frames -> GIF {SIZE} px", "ours": o, "reference": r, "unit": "s",
             "ratio": r / o, "device": device.type, "peak_mem_mb": peak,
             "note": f"ours {min(ours):.2f}-{max(ours):.2f} s; ours loops forth and back (118 GIF frames)"}]


def main() -> None:
    """Print the row."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    for row in run(parser.parse_args().quick):
        print(row)


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
