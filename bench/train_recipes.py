"""KID x 1000 against wall-clock training minutes for several recipes, one after the other in one process.

A recipe is a name and the settings it changes in `suggest_config` (the CPU default on a CPU), as JSON:

    python -m bench.train_recipes --data /work/data/emoji-faces --minutes 1 2 3 5 \\
        --recipe 'ndf 32={"ndf": 32}' --recipe 'ndf 16={"ndf": 16}' --recipe 'ndf 8 (default)={}' \\
        --plot docs/train-kid-ndf.png

The clock counts training only and stops while KID is measured (as bench.train_quality measures it: 256
EMA samples of a fixed noise, VGG16-HED features); run it on a quiet machine, since every recipe's minutes
are wall-clock minutes. Prints one JSON line per mark; `--plot` draws KID against minutes, one line per
recipe. Slow (the sum of the recipes' minutes plus the measurements); not in `python -m bench`.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from bench.train_quality import build_meter, load_images, train_for
from gan.train import suggest_config
from gan.train.plot import COLOURS

PLOT_COLOURS = list(COLOURS.values())


def parse_recipe(text: str) -> tuple[str, dict]:
    """'name={"ndf": 8}' -> ("name", {"ndf": 8})."""
    name, sep, settings = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: write a recipe as NAME=JSON, e.g. 'ndf 8={{\"ndf\": 8}}'.")
    try:
        changes = json.loads(settings)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: the settings are not JSON ({err}).") from err
    return name.strip(), changes


def plot(curves: dict[str, list[dict]], path: Path, size: tuple[int, int] = (720, 400)) -> None:
    """KID x 1000 against minutes, one coloured line with dots per recipe, and a legend."""
    w, h, m = *size, 50
    points = [(r["minutes"], r["kid"]) for rows in curves.values() for r in rows]
    x_max, y_max = max(x for x, _ in points), max(max(y for _, y in points), 1.0)
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle([m, m // 2, w - m // 2, h - m], outline=(180, 180, 180))

    def xy(x: float, y: float) -> tuple[float, float]:
        return m + (w - 1.5 * m) * x / x_max, h - m - (h - 1.5 * m) * max(y, 0.0) / y_max

    for tick in range(0, int(x_max) + 1, max(1, int(x_max) // 10)):
        draw.text((xy(tick, 0)[0] - 3, h - m + 4), str(tick), fill=(90, 90, 90))
    for frac in (0.25, 0.5, 0.75, 1.0):
        y = xy(0, frac * y_max)[1]
        draw.line([m, y, w - m // 2, y], fill=(235, 235, 235))
        draw.text((4, y - 6), f"{frac * y_max:.0f}", fill=(90, 90, 90))
    draw.text((w // 2 - 30, h - 18), "training minutes", fill=(90, 90, 90))
    draw.text((4, 4), f"KID x 1000 (top: {y_max:.0f}; lower is better)", fill=(90, 90, 90))
    for i, (name, rows) in enumerate(curves.items()):
        colour = PLOT_COLOURS[i % len(PLOT_COLOURS)]
        line = [xy(r["minutes"], r["kid"]) for r in rows]
        draw.line(line, fill=colour, width=2)
        for x, y in line:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        draw.text((w - 200, m // 2 + 8 + 14 * i), name, fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main() -> None:
    """Train each recipe for the marks, print the measurements, optionally plot them."""
    parser = argparse.ArgumentParser(prog="python -m bench.train_recipes", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="image folder (default: the emoji faces)")
    parser.add_argument("--recipe", type=parse_recipe, action="append", required=True,
                        help="NAME=JSON of suggest_config settings; repeat for each recipe")
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 2, 3, 5])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plot", type=Path, default=None, help="write KID against minutes as a PNG here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        images, _ = load_images(args.data, Path(tmp))
    meter, curves = build_meter(images, device), {}
    quiet = dict(steps=10_000_000, sample_every=10**6, checkpoint_every=10**6, kid_every=0)
    for name, changes in args.recipe:
        config = suggest_config(len(images), device, **{**quiet, **changes})
        curves[name] = train_for(config, images, [m * 60 for m in args.minutes], meter, device)
        for row in curves[name]:
            print(json.dumps({"recipe": name, **{k: round(v, 2) for k, v in row.items()}}), flush=True)
    if args.plot:
        plot(curves, args.plot)


if __name__ == "__main__":
    main()
