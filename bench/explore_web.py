"""Explore in the page against the server path, measured in the same headless Chromium run.

The whole app is launched in this process; Chromium (Playwright, /usr/bin/chromium) opens it.
- Input to picture, p50 / p95: one slider move at a time, from the `input` event to the picture
  on screen: drawn into the canvas by onnxruntime-web (ours) or, with the page's `forceServer`
  switch, rendered by the server and loaded by the <img> (reference), alternating, same page.
- A 60 Hz drag: 120 moves 1/60 s apart; pictures drawn per second of drag, page against server.
- Bytes over the network (Chrome's encoded lengths): a first visit until the page renders by itself,
  and a revisit in the same browser profile (its HTTP cache), against the first visit.
- The first picture on screen, first visit: with in-page rendering against an app launched without
  it (today's path), in the same process.
Run: `python -m bench.explore_web [--quick]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from bench import free_port, has_module, skipped_row

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
READY_S = 300
SLIDER = "#explore-direction-1 input[type=range]"

# Records when the first server picture and the in-page renderer become ready (ms since navigation).
PROBE = """(() => {
  const poll = () => {
    const img = document.querySelector('#explore-picture img');
    if (!window.__firstPicture && img && img.complete && img.naturalWidth > 0)
      window.__firstPicture = performance.now();
    const A = window.atelierExplore, s = A && A.status();
    if (!window.__inPage && s && Object.values(s.models).some(Boolean) && s.views.main && s.views.main.shown)
      window.__inPage = performance.now();
    if (!window.__firstPicture || !window.__inPage) setTimeout(poll, 10);
  };
  poll();
})();"""

# One slider move, then wait for the picture: page (a frame drawn) or server (the <img> loaded anew).
ONE_MOVE = """async ([selector, value, server]) => {
  const A = window.atelierExplore, range = document.querySelector(selector);
  A.forceServer = server;
  const img = () => document.querySelector('#explore-picture img');
  const before = img().src, drawn = A.frames.filter((f) => f.where === 'page').length;
  range.value = String(value);
  const t0 = performance.now();
  range.dispatchEvent(new Event('input', {bubbles: true}));
  for (;;) {
    if (!server && A.frames.filter((f) => f.where === 'page').length > drawn) return performance.now() - t0;
    if (server && img().src !== before && img().complete && img().naturalWidth > 0) return performance.now() - t0;
    if (performance.now() - t0 > 30000) return null;
    await new Promise((r) => requestAnimationFrame(r));
  }
}"""

# 120 moves at 60 Hz; counts the distinct pictures that reached the screen during the drag (+ 100 ms).
DRAG = """async ([selector, server, moves]) => {
  const A = window.atelierExplore, range = document.querySelector(selector);
  A.forceServer = server;
  const img = document.querySelector('#explore-picture img');
  let loads = 0, last = img.src;
  const watch = setInterval(() => { const i = document.querySelector('#explore-picture img');
    if (i.src !== last && i.complete && i.naturalWidth > 0) { loads += 1; last = i.src; } }, 1);
  const drawn = A.frames.filter((f) => f.where === 'page').length, t0 = performance.now();
  for (let i = 0; i < moves; i++) {
    while (performance.now() < t0 + i * 1000 / 60) await new Promise((r) => setTimeout(r, 1));
    range.value = String(((i % 60) - 30) / 10);
    range.dispatchEvent(new Event('input', {bubbles: true}));
  }
  const seconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 100));
  clearInterval(watch);
  const pictures = server ? loads : A.frames.filter((f) => f.where === 'page').length - drawn;
  return [pictures, seconds];
}"""


# Sets sliders, waits for the page's drawing and the server's settled render of the same recipe, and
# compares the two pictures pixel by pixel: [largest 8-bit difference, values differing, values].
AGREE = """async (moves) => {
  const A = window.atelierExplore;
  A.forceServer = false;
  A.settleMs = 250;
  const img = () => document.querySelector('#explore-picture img');
  const before = img().src;
  for (const [selector, value] of moves) {
    const range = document.querySelector(selector);
    range.value = String(value);
    range.dispatchEvent(new Event('input', {bubbles: true}));
  }
  const t0 = performance.now();
  while ((img().src === before || !img().complete) && performance.now() - t0 < 60000)
    await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));
  const page = document.querySelector('canvas.atelier-page-render[data-view=main]');
  const server = document.createElement('canvas');
  server.width = img().naturalWidth; server.height = img().naturalHeight;
  server.getContext('2d').drawImage(img(), 0, 0);
  const a = page.getContext('2d').getImageData(0, 0, page.width, page.height).data;
  const b = server.getContext('2d').getImageData(0, 0, server.width, server.height).data;
  if (a.length !== b.length) return null;
  let worst = 0, differ = 0, n = 0;
  for (let i = 0; i < a.length; i++) {
    if (i % 4 === 3) continue;
    const d = Math.abs(a[i] - b[i]);
    worst = Math.max(worst, d); differ += d > 0; n += 1;
  }
  return [worst, differ, n];
}"""


def agreement(page, n: int) -> tuple[int, int, int]:
    """Page against server over n recipes (truncation and three directions moved): totals."""
    import random

    rng = random.Random(0)
    worst = differ = total = 0
    for _ in range(n):
        moves = [["#explore-truncation input[type=range]", round(rng.uniform(0.5, 1.5), 2)]]
        moves += [[f"#explore-direction-{d} input[type=range]", round(rng.uniform(-3, 3), 2)] for d in (1, 2, 4)]
        found = page.evaluate(AGREE, moves)
        if found:
            worst, differ, total = max(worst, found[0]), differ + found[1], total + found[2]
    return worst, differ, total


def percentile(samples: list[float], q: int) -> float:
    """q-th percentile by linear interpolation."""
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


class Traffic:
    """Bytes Chrome received (encoded, i.e. as sent over the wire), per page, through CDP."""

    def __init__(self, page) -> None:
        self.bytes = 0
        self.ours = 0
        self.urls: dict[str, str] = {}
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on("Network.responseReceived", lambda e: self.urls.__setitem__(e["requestId"], e["response"]["url"]))
        cdp.on("Network.loadingFinished", self.finished)

    def finished(self, event: dict) -> None:
        size = int(event.get("encodedDataLength", 0))
        self.bytes += size
        url = self.urls.get(event["requestId"], "")
        if "onnxruntime-web" in url or "/gan-atelier/web/" in url:
            self.ours += size


def visit(context, url: str) -> dict:
    """Open the app; wait for the first picture and the in-page renderer; times (ms) and bytes."""
    page = context.new_page()
    traffic = Traffic(page)
    page.add_init_script(PROBE)
    page.goto(url)
    deadline = time.monotonic() + READY_S
    while page.evaluate("!window.__inPage") and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    page.wait_for_timeout(1000)  # let the settled server render and its picture arrive
    times = page.evaluate("[window.__firstPicture, window.__inPage]")
    return {"page": page, "first_picture_ms": times[0], "in_page_ms": times[1], "bytes": traffic.bytes,
            "our_bytes": traffic.ours}


def first_picture(browser, url: str) -> float:
    """Time (ms) to the first picture on screen in a fresh profile (nothing cached)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.add_init_script(PROBE)
    page.goto(url)
    page.wait_for_function("window.__firstPicture", timeout=READY_S * 1000)
    value = page.evaluate("window.__firstPicture")
    context.close()
    return value


def first_pictures(browser, url: str, plain_url: str, n: int) -> tuple[list[float], list[float]]:
    """First-visit first-picture times with and without in-page rendering, alternating."""
    ours, ref = [], []
    for _ in range(n):
        ours.append(first_picture(browser, url))
        ref.append(first_picture(browser, plain_url))
    return ours, ref


def latency(page, n: int) -> tuple[list[float], list[float]]:
    """n single moves each way, alternating page and server, the same slider."""
    page.evaluate("window.atelierExplore.settleMs = 1e9")  # no background server render while timing
    ours, ref = [], []
    for i in range(n):
        value = ((i * 7) % 61 - 30) / 10
        for server, out in ((False, ours), (True, ref)):
            elapsed = page.evaluate(ONE_MOVE, [SLIDER, value + (0.05 if server else 0.0), server])
            if elapsed is not None:
                out.append(elapsed)
            page.wait_for_timeout(60)
    return ours, ref


def launch(in_page: bool):
    """The whole app on a free loopback port; (demo, url)."""
    import torch

    from app import build_demo, serve
    from ui.context import AppContext

    demo = build_demo(AppContext(device=torch.device("cpu")))
    port = free_port()
    serve(demo, "127.0.0.1", port, in_page=in_page, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


def measure(quick: bool) -> list[dict]:
    """Every row (see the module docstring)."""
    import tempfile

    from playwright.sync_api import sync_playwright

    demo, url = launch(True)
    plain, plain_url = launch(False)
    try:
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            warm = browser.new_context()
            visit(warm, url)["page"].close()  # the server exports the model once, outside the timings
            warm.close()
            pictures = first_pictures(browser, url, plain_url, 3 if quick else 7)
            # A persistent profile has the disk cache a returning visitor has (a fresh context's is in memory).
            context = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                            args=ARGS, viewport={"width": 1280, "height": 900})
            first = visit(context, url)
            first["page"].close()
            again = visit(context, url)
            agree = agreement(again["page"], 4 if quick else 20)
            ours, ref = latency(again["page"], 10 if quick else 40)
            page_drag = again["page"].evaluate(DRAG, [SLIDER, False, 120])
            server_drag = again["page"].evaluate(DRAG, [SLIDER, True, 120])
            context.close()
            browser.close()
    finally:
        demo.close()
        plain.close()
    return [*rows(first, again, ours, ref, page_drag, server_drag, pictures), agreement_row(agree)]


def agreement_row(agree: tuple[int, int, int]) -> dict:
    """How closely the page's picture matches the server's render of the same recipe."""
    worst, differ, total = agree
    return {"what": "page vs server render, same recipes: 8-bit values that differ",
            "ours": round(100 * differ / total, 2), "reference": None, "unit": "%", "device": "chromium",
            "note": f"largest difference {worst} level(s) of 255, over {total // (512 * 512 * 3)} recipes at 512 px"}


def rows(first, again, ours, ref, page_drag, server_drag, pictures) -> list[dict]:
    """Bench rows from the measurements."""
    out = [{"what": f"input->picture p{q}: in the page (ref: server path, same page)",
            "ours": round(percentile(ours, q), 1), "reference": round(percentile(ref, q), 1), "unit": "ms",
            "device": "cpu + chromium"} for q in (50, 95)]
    out.append({"what": "60 Hz drag, 120 moves: pictures drawn per second (ref: server path)",
                "ours": round(page_drag[0] / page_drag[1], 1), "reference": round(server_drag[0] / server_drag[1], 1),
                "unit": "frames/s", "device": "cpu + chromium",
                "note": f"{page_drag[0]} vs {server_drag[0]} pictures in {page_drag[1]:.1f} / {server_drag[1]:.1f} s"})
    out.append({"what": "bytes transferred: revisit (ref: first visit), whole page",
                "ours": round(again["bytes"] / 2**20, 3), "reference": round(first["bytes"] / 2**20, 3), "unit": "MB",
                "device": "chromium",
                "note": f"runtime + model + script: {first['our_bytes'] / 2**20:.2f} MB first, "
                        f"{again['our_bytes'] / 2**10:.1f} KB again"})
    with_page, without = pictures
    out.append({"what": f"first picture on screen, first visit, median of {len(without)} (ref: no in-page rendering)",
                "ours": round(statistics.median(with_page)), "reference": round(statistics.median(without)),
                "unit": "ms", "device": "cpu + chromium",
                "note": f"in-page renderer ready at {first['in_page_ms'] / 1000:.1f} s (first visit), "
                        f"{again['in_page_ms'] / 1000:.1f} s (revisit)"})
    return out


def run(quick: bool = False) -> list[dict]:
    """Bench rows; skipped where Chromium or Playwright is missing."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if not has_module("playwright") or not os.path.exists(CHROMIUM):
        return [skipped_row("Explore in the page vs the server path", "playwright")]
    return measure(quick)


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    for row in run(parser.parse_args().quick):
        print(row)


if __name__ == "__main__":
    main()
