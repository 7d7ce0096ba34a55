"""Make the Style tab's cached example: astronaut in the style of Hokusai's Great Wave, vgg16-hed, CPU.

    python tools/make_style_example.py [--size 384] [--iterations 150]

Writes assets/results/astronaut_great_wave.jpg and prints the wall time and losses.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from style.transfer import StyleConfig, stylize  # noqa: E402


def main() -> None:
    """Run the example and save it as a small JPEG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--out", type=Path, default=ROOT / "assets/results/astronaut_great_wave.jpg")
    args = parser.parse_args()
    torch.set_num_threads(2)
    content = Image.open(ROOT / "assets/content/astronaut.jpg")
    style = Image.open(ROOT / "assets/styles/hokusai_great_wave.jpg")
    config = StyleConfig(size=args.size, iterations=args.iterations, backbone="vgg16-hed")
    start = time.perf_counter()
    for step in stylize(content, [style], None, config, "cpu"):
        if step.iteration % 10 == 0 or step.done:
            print(f"{step.iteration:4d}/{step.total} {step.scale} total={step.losses['total']:.4f} "
                  f"content={step.losses['content']:.4f} style={step.losses['style']:.4f} "
                  f"elapsed={step.elapsed:.0f}s eta={step.eta:.0f}s", flush=True)
    print(f"wall time {time.perf_counter() - start:.1f} s for {config.scales()} px, plan {config.iteration_plan()}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    step.result.save(args.out, quality=88)


if __name__ == "__main__":
    main()
