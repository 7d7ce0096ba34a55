"""Explore's in-page rendering in headless Chromium: slider drags drawn by onnxruntime-web without a
request, the picture matching the server's render, the scrub slider, and the server fallback."""

from __future__ import annotations

import io
import json
import time
from itertools import pairwise

import numpy as np
import pytest
from PIL import Image

from tests.conftest import save_readme_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.weights, pytest.mark.integration]

READY_TIMEOUT_S = 240  # the first visit exports the model (once per machine) and loads the runtime
AGREEMENT_MAX_LEVELS = 1  # largest 8-bit difference between the page's and the server's pixels
AGREEMENT_MAX_SHARE = 0.03  # share of 8-bit values that may differ at all (fp16 weights: ~1 %)

FRAME_TIMEOUT_MS = 120_000  # a hung render fails loudly; an ordinary one on a loaded machine takes < 1 s

# Moves a Gradio slider the way a drag does (value + 'input' event), waits until the view has drawn it (a new
# frame of that view, nothing left in flight), and returns a digest of the canvas's pixels after each move.
DRAG = """async ([selector, values, view, timeoutMs]) => {
  const A = window.atelierExplore, range = document.querySelector(selector), seen = [];
  view = view || 'main';
  const drawn = () => A.frames.filter((f) => f.where === 'page' && f.view === view).length;
  for (const value of values) {
    const before = drawn();
    range.value = String(value);
    range.dispatchEvent(new Event('input', {bubbles: true}));
    const deadline = performance.now() + timeoutMs;
    while (!(drawn() > before && A.status().views[view].idle)) {
      if (performance.now() > deadline) throw new Error(`value ${value} was never drawn in the page: ${A.log}`);
      await new Promise((r) => setTimeout(r, 2));
    }
    const canvas = document.querySelector(`canvas.atelier-page-render[data-view=${view}]`);
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let h = 0;
    for (let i = 0; i < data.length; i += 7) h = (h * 31 + data[i]) >>> 0;
    seen.push(h);
  }
  return seen;
}"""

# The page has settled: both views can draw here, nothing is in flight, and the server's pictures are loaded
# (a picture still arriving would be a request during the drag that the drag did not cause). The scrub's
# picture is below the fold, where the browser defers loading it: it is asked to load it now.
SETTLED = """() => {
  const A = window.atelierExplore, s = A && A.status(), views = (s && s.views) || {};
  const loaded = (id) => {
    const img = document.querySelector(`#${id} img`);
    if (img && img.loading === 'lazy') img.loading = 'eager';
    return img !== null && img.complete && img.naturalWidth > 0;
  };
  return ['main', 'scrub'].every((v) => views[v] && views[v].ready && views[v].idle)
         && views.main.shown && loaded('explore-picture') && loaded('explore-scrub');
}"""


def drag(page, selector: str, values: list, view: str = "main") -> list[int]:
    """Move a slider through `values`, each drawn in the page; the canvas digests."""
    return page.evaluate(DRAG, [selector, values, view, FRAME_TIMEOUT_MS])


def wait_in_page(page) -> None:
    """Until the page renders the current model itself and nothing from the page load is still arriving."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if page.evaluate(SETTLED):
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"the model never loaded in the page: {page.evaluate('window.atelierExplore.log')}")


def canvas_rgb(page, view: str = "main") -> np.ndarray:
    """The on-screen canvas's pixels (H, W, 3)."""
    data = page.evaluate("""(view) => {
        const c = document.querySelector(`canvas.atelier-page-render[data-view=${view}]`);
        return [c.width, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]; }""", view)
    size, values = data
    return np.array(values, dtype=np.uint8).reshape(size, size, 4)[:, :, :3]


def server_rgb(page, image_id: str = "explore-picture") -> tuple[str, np.ndarray]:
    """The server's picture the page shows under the canvas: (its URL, pixels)."""
    src = page.locator(f"#{image_id} img").first.get_attribute("src")
    return src, np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB"))


def test_a_drag_is_drawn_in_the_page_without_server_calls(page, artifacts_dir):
    wait_in_page(page)
    page.evaluate("window.atelierExplore.settleMs = 1e9")  # the server render after the drag rests comes later
    origin = page.url.rstrip("/")
    calls: list[str] = []
    page.on("request", lambda r: calls.append(r.url) if r.url.startswith(origin) else None)
    values = [round(-1.5 + 0.05 * i, 2) for i in range(60)]
    digests = drag(page, "#explore-direction-2 input[type=range]", values)
    assert calls == [], f"server calls during the drag: {calls}"
    assert len(digests) == 60 and all(a != b for a, b in pairwise(digests))
    shot = page.screenshot(clip={"x": 0, "y": 0, "width": 1280, "height": 900})
    (artifacts_dir / "explore-page-drag.png").write_bytes(shot)
    save_readme_screenshot(shot, "screenshot-explore-page.png", colors=128, width=640)
    assert page.evaluate(CANVAS_ON_PICTURE)
    page.set_viewport_size({"width": 1000, "height": 900})  # the picture's box changes size and place
    page.wait_for_function(CANVAS_ON_PICTURE, timeout=30_000)  # the page's canvas follows it exactly


CANVAS_ON_PICTURE = """() => {
  const canvas = document.querySelector('#explore-picture canvas.atelier-page-render');
  const img = canvas && canvas.previousElementSibling;
  if (!img) return false;
  const a = canvas.getBoundingClientRect(), b = img.getBoundingClientRect();
  return ['x', 'y', 'width', 'height'].every((k) => Math.abs(a[k] - b[k]) < 1);
}"""


def shown_recipe(page) -> dict:
    """The recipe the server sent with its latest picture."""
    text = page.locator("#explore-recipe textarea, #explore-recipe .cm-content").first.inner_text()
    return json.loads(text) if text.strip().startswith("{") else {}


def test_the_page_matches_the_server_render(page):
    wait_in_page(page)
    drag(page, "#explore-direction-1 input[type=range]", [1.2])
    drag(page, "#explore-truncation input[type=range]", [0.8])
    shown = canvas_rgb(page)
    # The server renders once the sliders rest (after each move if the machine is slow between them): wait for
    # the render of both moves, whose picture comes in the same answer as its recipe.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        recipe = shown_recipe(page)
        if recipe.get("truncation") == 0.8 and recipe.get("directions", [0])[0] == 1.2:
            break
        page.wait_for_timeout(100)
    assert shown_recipe(page)["truncation"] == 0.8 and shown_recipe(page)["directions"][0] == 1.2
    _, server = server_rgb(page)
    assert server.shape == shown.shape == (512, 512, 3)
    diff = np.abs(server.astype(int) - shown.astype(int))
    assert diff.max() <= AGREEMENT_MAX_LEVELS, diff.max()
    assert (diff > 0).mean() <= AGREEMENT_MAX_SHARE, (diff > 0).mean()
    assert (diff == 0).mean() > 0.9


# Holds the page's renders behind a gate (wrapping onnxruntime-web's InferenceSession.run, the module the page
# imported), moves a slider through `values` while the first render waits, then opens the gate and waits until
# the view is idle. Returns how many renders ran and how many frames were drawn. No timing: the gate decides.
BURST = """async ([selector, values]) => {
  const A = window.atelierExplore, range = document.querySelector(selector);
  const url = performance.getEntriesByType('resource').map((e) => e.name).find((n) => n.includes('ort.wasm.min.mjs'));
  const ort = await import(url), run = ort.InferenceSession.prototype.run, input = A.input;
  let open, runs = 0, inputs = 0;
  const gate = new Promise((resolve) => { open = resolve; });
  ort.InferenceSession.prototype.run = async function (...args) {
    runs += 1;
    await gate;
    return run.apply(this, args);
  };
  A.input = (...args) => { inputs += 1; return input(...args); };
  const drawn = () => A.frames.filter((f) => f.where === 'page' && f.view === 'main').length, before = drawn();
  try {
    for (const value of values) {
      range.value = String(value);
      range.dispatchEvent(new Event('input', {bubbles: true}));
    }
    while (inputs < values.length) await new Promise((r) => setTimeout(r, 2));
    open();
    while (!A.status().views.main.idle) await new Promise((r) => setTimeout(r, 2));
  } finally {
    ort.InferenceSession.prototype.run = run;
    A.input = input;
  }
  return [runs, drawn() - before];
}"""


def test_only_the_latest_value_is_drawn_while_a_render_is_in_flight(page):
    wait_in_page(page)
    page.evaluate("window.atelierExplore.settleMs = 1e9")
    values = [round(0.1 * i, 1) for i in range(1, 11)]
    runs, frames = page.evaluate(BURST, ["#explore-direction-4 input[type=range]", values])
    assert (runs, frames) == (2, 2)  # the first value (in flight when the others came) and the last
    burst = canvas_rgb(page)
    drag(page, "#explore-direction-4 input[type=range]", [0.0, values[-1]])
    assert np.array_equal(canvas_rgb(page), burst)  # what stayed on screen is the last value's picture


def test_the_scrub_slider_is_drawn_in_the_page(page):
    wait_in_page(page)
    origin = page.url.rstrip("/")
    calls: list[str] = []
    page.on("request", lambda r: calls.append(r.url) if r.url.startswith(origin) else None)
    digests = drag(page, "#explore-t input[type=range]", [i / 20 for i in range(1, 21)], "scrub")
    assert calls == [] and all(a != b for a, b in pairwise(digests))


def test_without_the_page_model_the_server_renders(page):
    page.locator("#explore-picture img").first.wait_for(timeout=60_000)
    page.evaluate("window.atelierExplore.forceServer = true")
    before, _ = server_rgb(page)
    slider = page.locator("#explore-direction-3 input[type=range]")
    slider.focus()
    slider.press("ArrowRight")
    deadline = time.monotonic() + 60
    while server_rgb(page)[0] == before and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert server_rgb(page)[0] != before
    shown = page.evaluate("""() => { const c = document.querySelector('canvas.atelier-page-render[data-view=main]');
        return c !== null && c.style.visibility === 'visible'; }""")
    assert not shown  # the server's picture is the one on screen


def test_a_photo_projected_in_the_page_becomes_the_current_picture(page, artifacts_dir, tmp_path):
    from PIL import ImageOps

    photo = tmp_path / "face.png"
    face = Image.open("assets/content/astronaut.jpg").crop((150, 40, 290, 180))
    ImageOps.contain(face, (128, 128)).save(photo)
    page.locator("#explore-picture img").first.wait_for(timeout=60_000)
    page.get_by_text("Your photo in the latent space (projection)").click()
    page.locator("#explore-photo input[type=file]").set_input_files(str(photo))
    steps = page.locator("#explore-projection-steps input[type=number]")
    steps.fill("20")
    steps.press("Enter")
    page.get_by_role("button", name="Find my photo in the latent space").click()
    status = page.locator("#explore-projection-status")
    deadline = time.monotonic() + 300
    while "Done 20/20" not in status.inner_text() and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    assert "Done 20/20" in status.inner_text()
    recipe = page.locator("#explore-recipe textarea, #explore-recipe .cm-content").first
    deadline = time.monotonic() + 60
    while '"z"' not in recipe.inner_text() and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    assert len(json.loads(recipe.inner_text())["z"]) == 100
    page.wait_for_timeout(500)
    page.locator("#explore-photo").scroll_into_view_if_needed()
    page.mouse.wheel(0, -140)  # the panel's heading and its honest note above the photo
    page.wait_for_timeout(300)
    top = page.locator("#explore-photo").bounding_box()["y"] - 140
    shot = page.screenshot(clip={"x": 0, "y": max(0, top), "width": 1280, "height": 560})
    (artifacts_dir / "explore-projection.png").write_bytes(shot)
    save_readme_screenshot(shot, "screenshot-projection.png", colors=128, width=640)
