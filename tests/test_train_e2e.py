"""Train tab in headless Chromium: upload a folder, start, watch the plot and the sample grid update, stop."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from tests.conftest import save_readme_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


def smileys(folder: Path, n: int = 24) -> Path:
    """n synthetic smiley faces (random colour, eyes, mouth), 48 px: a small, homogeneous set."""
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = Image.new("RGB", (48, 48), "white")
        d = ImageDraw.Draw(img)
        colour = (rng.randint(200, 255), rng.randint(150, 220), rng.randint(0, 80))
        d.ellipse([4, 4, 44, 44], fill=colour, outline=(120, 80, 0))
        eye = rng.randint(2, 5)
        for x in (17, 31):
            d.ellipse([x - eye, 18 - eye, x + eye, 18 + eye], fill="black")
        top = rng.randint(26, 32)
        d.arc([14, top - 6, 34, top + 6], 0 if rng.random() < 0.7 else 180, 180 if rng.random() < 0.7 else 360,
              fill=(90, 30, 0), width=2)
        img.save(folder / f"smiley_{i:02d}.png")
    return folder


def _samples_src(page) -> str:
    img = page.locator("#train-samples img")
    return img.first.get_attribute("src") if img.count() else ""


def test_upload_start_watch_and_stop(page, tmp_path, artifacts_dir):
    page.get_by_role("tab", name="Train").click()
    page.get_by_role("radio", name="32", exact=True).check()  # before uploading: one ingest at 32 px
    page.locator("input[type=file][webkitdirectory]").first.set_input_files(str(smileys(tmp_path / "faces")))
    page.wait_for_selector("#train-report >> text=24 images ready", timeout=60_000)
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_selector("text=images/s", timeout=60_000)
    page.wait_for_selector("#loss-plot canvas, #loss-plot svg", timeout=60_000)
    page.wait_for_function("() => document.querySelector('#train-samples img') !== null", timeout=60_000)
    first = _samples_src(page)
    page.wait_for_function(
        "(first) => { const i = document.querySelector('#train-samples img'); return i && i.src !== first; }",
        arg=first, timeout=90_000)  # the grid was replaced by a later one
    page.screenshot(path=str(artifacts_dir / "train-live.png"), full_page=True)
    page.get_by_role("button", name="Stop", exact=True).click()
    page.wait_for_selector("#train-status >> text=Stopped", timeout=60_000)
    # The Stop reply is the last word: it waits for the run's stream to send its final update, so no older
    # "Training" update lands after it (it did on a loaded machine, hiding this button again).
    page.wait_for_function("() => document.querySelector('#train-status').innerText.includes('Stopped')")
    assert page.get_by_role("button", name="Open in Explore").is_visible()
    page.wait_for_timeout(1000)  # anything still in flight would land now
    assert "Stopped" in page.locator("#train-status").inner_text()
    assert page.get_by_role("button", name="Open in Explore").is_visible()
    page.wait_for_timeout(1500)  # let the last plot update finish drawing
    page.screenshot(path=str(artifacts_dir / "train.png"), full_page=True)
    _save_docs_shot(page)


def _save_docs_shot(page) -> None:
    """The README's picture: buttons, status, progress, both plots and the grid, as a palette PNG (< 300 KB)."""
    save_readme_screenshot(page.locator("#train-live").screenshot(), "screenshot-train.png", colors=128)
