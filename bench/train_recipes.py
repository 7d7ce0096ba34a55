"""KID x 1000 against wall-clock training minutes for several recipes, one after the other in one process.

A recipe is a name and the settings it changes in `suggest_config` (the CPU default on a CPU), as JSON:

    python -m bench.train_recipes --data /work/data/emoji-faces --minutes 1 2 3 5 \\
        --recipe 'default={}' \\
        --recipe 'hinge + SN, ndf 8={"loss": "hinge", "d_norm": "spectral", "batch_size": 16, "ndf": 8}' \\
        --plot runs/kid-recipes.png

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

from bench.train_quality import QUIET, build_meter, load_images, train_for
from gan.train import suggest_config
from gan.train.plot import COLOURS, metrics_plot

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


def plot(curves: dict[str, list[dict]], path: Path) -> None:
    """KID x 1000 against minutes, one coloured line per recipe (every recipe measured at the same marks)."""
    names = list(curves)
    rows = [{"minutes": marks[0]["minutes"], **{n: m["kid"] for n, m in zip(names, marks, strict=True)}}
            for marks in zip(*curves.values(), strict=True)]
    colours = {n: PLOT_COLOURS[i % len(PLOT_COLOURS)] for i, n in enumerate(names)}
    path.parent.mkdir(parents=True, exist_ok=True)
    metrics_plot(rows, tuple(names), (720, 400), "KID x 1000 (lower is better)", "minutes", colours).save(path)


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
    for name, changes in args.recipe:
        config = suggest_config(len(images), device, **{**QUIET, **changes})
        curves[name] = train_for(config, images, [m * 60 for m in args.minutes], meter, device)
        for row in curves[name]:
            print(json.dumps({"recipe": name, **{k: round(v, 2) for k, v in row.items()}}), flush=True)
    if args.plot:
        plot(curves, args.plot)


if __name__ == "__main__":
    main()
