"""Measure GAN inversion for docs/explore.md: projection against the best of 1,000 random seeds.

For each picture: the projection (default ProjectionConfig, timed), the nearest of seeds 0..999 by the
same loss, their pixel and perceptual distances to the photo, and a panel row:
input | nearest seed | projection | projection moved along a direction (faces: direction 1 at +2,
which turns the head; emoji: direction 1 at -1, a warmer yellow).
Pictures: the three photos of assets/content and a close crop of the astronaut's face for the faces
model; three Noto Emoji faces (the emoji model's training data) for the emoji model; and for each
model one of its own samples from a seed outside 0..999 (a picture it can surely make).
Run: `python -m tools.projection_report [--out docs/projection-panel.png] [--steps N] [--quick]`.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import torch
from PIL import Image

from common.backbones import load_backbone
from gan.explorer import latent as L
from gan.explorer import projection as P
from gan.explorer import zoo

ROOT = Path(__file__).resolve().parent.parent
EMOJI = Path(os.environ.get("ATELIER_EMOJI_DIR", "/work/data/emoji-faces"))
TILE = 96
EDITS = {"dcgan-faces-64": (0, 2.0), "dcgan-emoji-64": (0, -1.0)}  # (direction index, value) for the last column


def pictures(model_id: str, G) -> list[tuple[str, Image.Image]]:
    """The test pictures for one model (see the module docstring)."""
    sample = L.to_pil(L.generate(G, L.sample_z(5000, G.cfg.nz))[0])
    if model_id == "dcgan-emoji-64":
        names = ["1f600.png", "1f60d.png", "1f62d.png"]  # grinning, heart eyes, crying
        return [(f"emoji {n[:-4]}", Image.open(EMOJI / n)) for n in names] + [("its own seed 5000", sample)]
    astronaut = Image.open(ROOT / "assets/content/astronaut.jpg")
    face = astronaut.crop((150, 40, 290, 180))  # the astronaut's face, close (the model's framing)
    photos = [(f"{n} photo", Image.open(ROOT / f"assets/content/{n}.jpg")) for n in ("astronaut", "chelsea", "coffee")]
    return [("astronaut, face crop", face), *photos, ("its own seed 5000", sample)]


def tile(image: torch.Tensor) -> Image.Image:
    """A (C, S, S) picture in 0..1 as a TILE px square (nearest)."""
    return L.to_pil(image, TILE, "nearest").convert("RGB")


def measure(model_id: str, steps: int, seeds: int) -> tuple[list[dict], list[list[Image.Image]]]:
    """Rows of numbers and panel rows for one model."""
    loaded = zoo.load(zoo.resolve(model_id), "cpu")
    G, config = loaded.G, P.ProjectionConfig(steps=steps)
    backbone = load_backbone(config.backbone, "cpu")
    P.run(G, Image.new("RGB", (64, 64)), P.ProjectionConfig(steps=2, starts=1, candidates=2), backbone=backbone)
    rows, panel = [], []
    named = pictures(model_id, G)
    nearest = P.nearest_seeds(G, [photo for _, photo in named], seeds, config, backbone)
    for (name, photo), (seed, seed_pixel, seed_perceptual) in zip(named, nearest, strict=True):
        started, cpu = time.perf_counter(), time.process_time()
        result = P.run(G, photo, config, backbone=backbone)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        rows.append({"model": model_id, "picture": name, "seconds": seconds, "cpu": cpu, "seed": seed,
                     "seed_pixel": seed_pixel, "seed_perceptual": seed_perceptual,
                     "pixel": result.pixel, "perceptual": result.perceptual})
        index, value = EDITS[model_id]
        edited = L.edit_z(result.z, L.Recipe(directions=(0.0,) * index + (value,)), loaded.directions)
        target = P.prepare_target(photo, G.cfg.image_size, G.cfg.nc)[0]
        pics = L.generate(G, torch.cat([L.sample_z(seed, G.cfg.nz), result.z, edited]))
        panel.append([tile(target), *(tile(p) for p in pics)])
    return rows, panel


def save_panel(panel: list[list[Image.Image]], path: Path) -> None:
    """Rows of tiles with a 4 px gutter, as a small palette PNG."""
    gap = 4
    width = len(panel[0]) * (TILE + gap) - gap
    sheet = Image.new("RGB", (width, len(panel) * (TILE + gap) - gap), (255, 255, 255))
    for r, row in enumerate(panel):
        for c, picture in enumerate(row):
            sheet.paste(picture, (c * (TILE + gap), r * (TILE + gap)))
    sheet.quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def table(rows: list[dict]) -> str:
    """The Markdown table of docs/explore.md."""
    header = ("| model | picture | nearest of 1,000 seeds: pixel / perceptual | projection: pixel / perceptual "
              "| time: wall / CPU |")
    lines = [header, "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['model']}` | {r['picture']} | seed {r['seed']}: {r['seed_pixel']:.4f} / "
                     f"{r['seed_perceptual']:.3f} | {r['pixel']:.4f} / {r['perceptual']:.3f} | {r['seconds']:.1f} / "
                     f"{r['cpu']:.1f} s |")
    return "\n".join(lines)


def main() -> None:
    """Measure both pretrained models, print the table, write the panel."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "projection-panel.png")
    parser.add_argument("--steps", type=int, default=P.ProjectionConfig().steps)
    parser.add_argument("--seeds", type=int, default=1000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows, panel = [], []
    for model_id in ("dcgan-faces-64", "dcgan-emoji-64"):
        more_rows, more_panel = measure(model_id, args.steps, args.seeds)
        rows += more_rows
        panel += more_panel
    save_panel(panel, args.out)
    print(table(rows))
    print(f"\nload average while measuring: {os.getloadavg()[0]:.1f}; torch threads: {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
