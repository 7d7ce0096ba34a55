"""Style tab end to end: /stylize through gradio_client, and a small run in headless Chromium."""

from __future__ import annotations

import time
from pathlib import Path

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


def preview_src(page) -> str | None:
    img = page.locator("#style-preview img")
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
    page.get_by_role("button", name="Stylize", exact=True).click()
    seen, deadline = [], time.time() + 240
    while time.time() < deadline and not page.locator("text=Done:").count():
        src = preview_src(page)
        if src and (not seen or seen[-1] != src):
            seen.append(src)
        time.sleep(0.2)
    assert page.locator("text=Done:").count(), "the run did not finish"
    final = preview_src(page)
    if final and seen[-1] != final:
        seen.append(final)
    assert len(seen) >= 2, f"preview never changed: {seen}"
    page.screenshot(path=str(artifacts_dir / "style.png"), full_page=True)
    page.evaluate("window.scrollTo(0, 0)")
    shot = page.screenshot(full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": 1150})
    save_readme_screenshot(shot, "screenshot-style.png", colors=128)


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
