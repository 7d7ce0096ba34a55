"""Explore slider-to-image latency at 64 px on CPU: engine alone, and end to end over plain HTTP.

Engine: `recipe_png` (one 64 px forward pass with a direction edit, 256 px nearest upscale, PNG
bytes) against the bare floor `G(z)` alone. End to end: the way the browser pays for a slider
move (POST /gradio_api/call/generate, read the SSE stream, GET the image file it names) against
a trivial Gradio endpoint that returns a fixed 256 px picture, both launched in this process.
Run: `python -m bench.explore_latency [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import urllib.request
from collections.abc import Callable

import torch

from bench import free_port, has_module, skipped_row
from common.device import describe, pick_device
from gan.explorer import latent as L
from gan.explorer import zoo

MODEL_ID = "dcgan-faces-64"


def percentile(samples: list[float], q: float) -> float:
    """q-th percentile (0..100) by linear interpolation."""
    return statistics.quantiles(samples, n=100, method="inclusive")[max(0, min(98, round(q) - 1))]


def time_pair(ours: Callable[[int], object], ref: Callable[[int], object], n: int,
              warmup: int = 5) -> tuple[list[float], list[float]]:
    """Milliseconds per call of ours(i) and ref(i), interleaved so both see the same machine load."""
    for i in range(warmup):
        ours(i), ref(i)
    a, b = [], []
    for i in range(n):
        for fn, out in ((ours, a), (ref, b)):
            start = time.perf_counter()
            fn(i)
            out.append((time.perf_counter() - start) * 1000)
    return a, b


def row(what: str, ours: list[float], ref: list[float], q: float, device: str) -> dict:
    """One bench row at percentile q."""
    o, r = percentile(ours, q), percentile(ref, q)
    return {"what": what, "ours": round(o, 2), "reference": round(r, 2), "unit": "ms",
            "ratio": round(r / o, 2), "device": device}  # the suite's convention: above 1, ours is faster


def engine_rows(n: int, threads: int, device: torch.device) -> list[dict]:
    """recipe -> PNG bytes vs the bare forward pass, with `threads` intra-op threads, on `device`."""
    torch.set_num_threads(threads)
    loaded = zoo.load(zoo.resolve(MODEL_ID), device)
    z = L.sample_z(0, loaded.G.cfg.nz, device)

    def ours(i: int) -> bytes:
        values = (((i % 61) - 30) / 10.0,) + (0.0,) * 7  # a slider sweeping -3..3
        return L.recipe_png(loaded.G, L.Recipe(seed=7, directions=values), loaded.directions)

    def bare(_i: int) -> torch.Tensor:
        with torch.inference_mode():
            image = loaded.G(z)
        if device.type == "cuda":
            torch.cuda.synchronize()  # the image exists only once the kernels ran (ours waits for its bytes)
        return image

    a, b = time_pair(ours, bare, n)
    where = describe(device) if device.type != "cpu" else "cpu"
    return [row(f"engine p{q}, {threads} thread(s): recipe->PNG (ref: bare G(z))", a, b, q, where)
            for q in (50, 95)]



def http_call(base: str, api_name: str, data: list) -> bytes:
    """POST /gradio_api/call/<api>, read the SSE stream to 'complete', GET the first file it names."""
    req = urllib.request.Request(f"{base}/gradio_api/call/{api_name}", data=json.dumps({"data": data}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        event_id = json.load(resp)["event_id"]
    with urllib.request.urlopen(f"{base}/gradio_api/call/{api_name}/{event_id}", timeout=60) as resp:
        lines = resp.read().decode().splitlines()
    if "event: complete" not in lines:
        raise RuntimeError(f"{api_name} failed: {lines[-3:]}")
    payload = json.loads(lines[lines.index("event: complete") + 1][len("data: "):])
    with urllib.request.urlopen(payload[0]["url"], timeout=60) as resp:
        return resp.read()


def launch(demo) -> str:
    """Launch a Blocks app on a free loopback port without blocking; return its base URL."""
    port = free_port()
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                allowed_paths=getattr(demo, "allowed_paths", None))
    return f"http://127.0.0.1:{port}"


def http_rows(n: int, threads: int) -> list[dict]:
    """End to end over HTTP with `threads` torch threads: our /generate vs the trivial endpoint."""
    torch.set_num_threads(threads)
    from app import build_demo
    from bench.reference.trivial_image_endpoint import build_trivial_demo
    from ui.context import AppContext

    ours_demo, ref_demo = build_demo(AppContext(device=torch.device("cpu"))), build_trivial_demo()
    ours_url, ref_url = launch(ours_demo), launch(ref_demo)
    try:
        def ours(i: int) -> bytes:
            dirs = [((i % 61) - 30) / 10.0] + [0.0] * 7
            # the recipe form in API order: model, seed, truncation, direction_1..8, upscale, size, raw_page,
            # raw_1..8, raw_edits, z (empty: the seed's)
            return http_call(ours_url, "generate",
                             [MODEL_ID, 7, 1.0, *dirs, "nearest", "256", 0, *[0.0] * 8, "{}", ""])

        a, b = time_pair(ours, lambda i: http_call(ref_url, "generate", [0.5]), n)
    finally:
        ours_demo.close()
        ref_demo.close()
    return [row(f"HTTP p{q}, {threads} thread(s): slider->image file (ref: trivial endpoint)", a, b, q, "cpu")
            for q in (50, 95)]


def run(quick: bool = False) -> list[dict]:
    """Bench rows: engine latency (on the picked device) and end-to-end latency (CPU), p50 and p95."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    n = 30 if quick else 200
    device, rows = pick_device(), []
    # One thread wins for a batch of one on a busy machine; the app keeps two for Train and Style.
    for threads in sorted({1, max(1, min(2, os.cpu_count() or 1))}):
        rows += engine_rows(n, threads, device)
        if device.type != "cpu" and threads == 1:
            rows += engine_rows(n, threads, torch.device("cpu"))  # the same engine on this machine's CPU
        if has_module("gradio"):
            rows += http_rows(n // 2 if quick else 100, threads)
        else:
            rows.append(skipped_row(f"HTTP p50/p95, {threads} thread(s): slider->image file", "gradio"))
    return rows


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    rows = run(parser.parse_args().quick)
    print(f"{'what':76s} {'ours':>8s} {'ref':>8s} unit  ratio  device")
    for r in rows:
        print(f"{r['what']:76s} {r['ours']:8.2f} {r['reference']:8.2f} {r['unit']:4s} {r['ratio']:6.2f}  {r['device']}")


if __name__ == "__main__":
    main()
