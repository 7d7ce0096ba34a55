"""Style tab end to end: /stylize and /stylize_instant through gradio_client, Explore's /paint_it, and the tab in
headless Chromium (the instant picture follows the strength slider; a small refinement streams)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import save_readme_screenshot

ASSETS = Path(__file__).resolve().parents[1] / "assets"
CONTENT, STYLE = ASSETS / "content" / "astronaut.jpg", ASSETS / "styles" / "hokusai_great_wave.jpg"


def stylize_args(handle_file, iterations=10, size=64) -> dict:
    """Keyword inputs of /stylize (the rest at their defaults)."""
    return dict(content=handle_file(str(CONTENT)), style_1=handle_file(str(STYLE)), log10_style_weight=0.3,
                log10_tv_weight=-1.0, iterations=iterations, size=size, backbone="vgg16-hed")


@pytest.mark.integration
@pytest.mark.weights
def test_stylize_streams_through_gradio_client(client):
    from gradio_client import handle_file

    job = client.submit(**stylize_args(handle_file), api_name="/stylize")
    result = job.result(timeout=300)
    preview, before_after, _plot, status, download = result
    assert "Done" in status and "10/10" in status
    with Image.open(download) as png:
        assert png.format == "PNG" and max(png.size) == 64
    assert Path(preview).is_file() and len(before_after) == 2
    assert len(job.outputs()) > 1  # it streamed intermediate updates, not just the end


def image_src(page, element_id: str) -> str | None:
    """The src of the picture shown in the element with this id, None before one is shown."""
    img = page.locator(f"#{element_id} img")
    return img.first.get_attribute("src") if img.count() else None


@pytest.mark.browser
@pytest.mark.weights
def test_browser_run_updates_preview(page, artifacts_dir):
    page.get_by_role("tab", name="Style", exact=True).click()
    page.locator("#style-examples table tbody tr").first.click()  # astronaut + Great Wave
    for label, value in (("Iterations", 20), ("Output size (longest side, px)", 96)):
        box = page.locator(f"input[aria-label='number input for {label}']")
        box.fill(str(value))
        box.press("Enter")
    page.locator("#style-refine").click()
    seen, deadline = [], time.time() + 240
    while time.time() < deadline and not page.locator("text=Done:").count():
        src = image_src(page, "style-preview")
        if src and (not seen or seen[-1] != src):
            seen.append(src)
        time.sleep(0.2)
    assert page.locator("text=Done:").count(), "the run did not finish"
    final = image_src(page, "style-preview")
    if final and seen[-1] != final:
        seen.append(final)
    assert len(seen) >= 2, f"preview never changed: {seen}"
    page.screenshot(path=str(artifacts_dir / "style.png"), full_page=True)
    page.evaluate("window.scrollTo(0, 0)")
    shot = page.screenshot(full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": 1150})
    save_readme_screenshot(shot, "screenshot-style.png", colors=128)


@pytest.mark.integration
@pytest.mark.weights
def test_stylize_instant_by_keyword(client):
    """/stylize_instant paints at the size asked, in one call (no stream); strength changes the picture."""
    from gradio_client import handle_file

    args = dict(content=handle_file(str(CONTENT)), style_1=handle_file(str(STYLE)), size=96)
    pictures = {}
    for strength in (0.0, 1.0):
        picture, status = client.predict(**args, strength=strength, api_name="/stylize_instant")
        with Image.open(picture) as opened:
            assert opened.size == (96, 96) and opened.format == "JPEG"
            pictures[strength] = np.asarray(opened.convert("RGB"), dtype=np.float32)
        assert f"strength {strength:g}" in status and "96×96" in status
    assert np.abs(pictures[0.0] - pictures[1.0]).mean() > 10  # 0..255: the painting's style shows at 1
    with pytest.raises(Exception, match=r"maximum value 1\.5"):  # the slider refuses it before the handler
        client.predict(**args, strength=2.0, api_name="/stylize_instant")


@pytest.mark.integration
@pytest.mark.weights
def test_paint_it_paints_the_explore_picture_and_the_interpolation(client):
    """Explore's /paint_it: the current picture painted at its size (256 px), and every interpolation frame."""
    picture, animation, files = client.predict(seed=3, size="256", paint="picture", style_from="preset", preset=4,
                                               api_name="/paint_it")
    plain, _recipe, _edits = client.predict(seed=3, size="256", api_name="/generate")
    with Image.open(picture) as painted, Image.open(plain) as face:
        assert painted.size == face.size == (256, 256)
        difference = np.abs(np.asarray(painted.convert("RGB"), np.float32) - np.asarray(face.convert("RGB"))).mean()
        assert difference > 10 and animation is None and len(files) == 1
    picture, animation, files = client.predict(seed=3, size="256", paint="interpolation", end_seed=9, frames=3,
                                               fps=5, method="lerp", style_from="preset", preset=4,
                                               api_name="/paint_it")
    with Image.open(animation) as gif:
        assert gif.n_frames == 4 and gif.size == (256, 256) and len(files) == 3  # 3 frames forth and back


@pytest.mark.browser
@pytest.mark.weights
def test_browser_instant_picture_follows_the_strength_slider(page, artifacts_dir):
    """An example pair shows the instant picture without a button; a strength move repaints it."""
    page.get_by_role("tab", name="Style", exact=True).click()
    page.locator("#style-examples table tbody tr").first.click()  # astronaut + Great Wave
    page.wait_for_selector("#style-instant img", timeout=60_000)
    status = page.locator("#style-instant-status")
    page.wait_for_function("document.querySelector('#style-instant-status').innerText.includes('strength 1')",
                           timeout=60_000)
    first = image_src(page, "style-instant")
    slider = page.locator("#style-strength input[type='range']")
    box = slider.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2)  # strength ~0.3
    page.wait_for_function("!document.querySelector('#style-instant-status').innerText.includes('strength 1 ')",
                           timeout=60_000)
    page.wait_for_function(f"document.querySelector('#style-instant img').src !== {first!r}", timeout=60_000)
    assert image_src(page, "style-instant") != first and "strength 0." in status.inner_text()
    page.screenshot(path=str(artifacts_dir / "style-instant.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.weights
def test_browser_a_preset_click_paints_with_that_preset(page):
    """The gallery fills on page load; a click puts that preset in the mixer and repaints with it."""
    page.get_by_role("tab", name="Style", exact=True).click()
    page.locator("#style-examples table tbody tr").first.click()
    page.wait_for_function("document.querySelector('#style-instant-status').innerText.includes('1 painting')",
                           timeout=60_000)
    page.locator("#style-presets button.thumbnail-item").nth(5).click(timeout=60_000)
    page.wait_for_function("document.querySelector('#style-instant-status').innerText.includes('preset 5')",
                           timeout=60_000)
    assert page.get_by_label("the presets").is_checked()


def test_time_estimate_learns_from_real_runs_not_from_tiny_ones(monkeypatch):
    """A 96 px test run is mostly per-iteration overhead: learning from it would triple later estimates."""
    from types import SimpleNamespace

    from style.transfer import StyleConfig
    from ui import style as tab

    monkeypatch.setattr(tab, "MEASURED_COST", dict(tab.MEASURED_COST))
    monkeypatch.setattr(tab, "COST_BASIS", dict(tab.COST_BASIS))
    tab.remember_cost("cpu", SimpleNamespace(stopped=False, elapsed=2.5), StyleConfig(size=96, iterations=20), 1.0)
    assert tab.MEASURED_COST["cpu"] == 4.5 and "2-core" in tab.estimate_md(120, 256, "cpu")
    tab.remember_cost("cpu", SimpleNamespace(stopped=False, elapsed=39.0), StyleConfig(size=256, iterations=120), 1.0)
    assert tab.MEASURED_COST["cpu"] == pytest.approx(10.0, rel=0.05)  # 39 s over 3.9 megapixel-iterations
    assert "this server's last run" in tab.estimate_md(120, 256, "cpu")
