"""A visitor walks all three tabs in headless Chromium; a screenshot of each step goes to tests/artifacts/.

Explore: move a slider, make a grid. Train: upload a tiny folder, start, stop, open the model in Explore.
Style: a tiny stylisation. Small settings throughout, so that it stays well under a minute.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.weights, pytest.mark.slow]


def picture(page) -> bytes:
    src = page.locator("#explore-picture img").first.get_attribute("src")
    return page.request.get(src).body()


def wait_change(page, before: bytes, timeout_ms: int = 30_000) -> bytes:
    for _ in range(timeout_ms // 200):
        now = picture(page)
        if now != before:
            return now
        page.wait_for_timeout(200)
    raise AssertionError("the picture did not change")


def tiny_folder(folder):
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(8):
        base = np.zeros((40, 40, 3), np.uint8) + rng.integers(0, 256, 3, dtype=np.uint8)
        base[10:30, 10:30] = rng.integers(0, 256, 3, dtype=np.uint8)  # a square on a plain ground
        Image.fromarray(base).save(folder / f"square_{i}.png")
    return folder


def explore(page, shots):
    page.locator("#explore-picture img").first.wait_for(timeout=60_000)
    before = picture(page)
    slider = page.locator("#explore-direction-1 input[type=range]")
    slider.focus()
    for _ in range(20):
        slider.press("ArrowRight")
    wait_change(page, before)
    page.get_by_role("button", name="Show 16 seeds from the current one").click()
    page.locator("#explore-grid img").nth(15).wait_for(timeout=30_000)
    page.screenshot(path=str(shots / "walk-1-explore.png"), full_page=True)


def train(page, shots, folder):
    page.get_by_role("tab", name="Train").click()
    page.get_by_role("radio", name="32", exact=True).check()
    page.locator("input[type=file][webkitdirectory]").first.set_input_files(str(folder))
    page.wait_for_selector("#train-report >> text=8 images ready", timeout=60_000)
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_selector("text=images/s", timeout=60_000)
    page.screenshot(path=str(shots / "walk-2-train-live.png"), full_page=True)
    page.get_by_role("button", name="Stop", exact=True).click()
    page.wait_for_selector("#train-status >> text=Stopped", timeout=60_000)
    page.get_by_role("button", name="Open in Explore").click()
    page.locator("#explore-direction-1").wait_for(state="visible", timeout=30_000)  # back on Explore
    page.wait_for_function("() => document.body.innerText.includes('My DCGAN')", timeout=30_000)
    page.wait_for_timeout(1500)
    with Image.open(io.BytesIO(picture(page))) as shown:  # the trained model draws the picture now
        assert shown.size[0] >= 32
    page.screenshot(path=str(shots / "walk-3-explore-trained.png"), full_page=True)


def style(page, shots):
    page.get_by_role("tab", name="Style", exact=True).click()
    page.locator("#style-examples table tbody tr").first.click()
    page.wait_for_selector("#style-instant img", timeout=60_000)  # the instant picture, with no button
    for label, value in (("Iterations", 10), ("Output size (longest side, px)", 64)):
        box = page.locator(f"input[aria-label='number input for {label}']")
        box.fill(str(value))
        box.press("Enter")
    page.locator("#style-refine").click()
    page.wait_for_selector("text=Done:", timeout=60_000)
    page.screenshot(path=str(shots / "walk-4-style.png"), full_page=True)


def test_a_visitor_walks_all_three_tabs(page, artifacts_dir, tmp_path):
    explore(page, artifacts_dir)
    train(page, artifacts_dir, tiny_folder(tmp_path / "squares"))
    style(page, artifacts_dir)


def slider_value(page, label: str) -> str:
    return page.locator(f"input[aria-label='number input for {label}']").input_value()


def open_app(page, app_url) -> str:
    """Load the app in `page`; its tab's resume token (sessionStorage) once the page load has set it."""
    page.goto(app_url)
    page.wait_for_function("() => sessionStorage.getItem('gan-atelier-tab')", timeout=30_000)
    return page.evaluate("() => sessionStorage.getItem('gan-atelier-tab')")


def train_and_stop(page, folder, channels: str = "colour") -> None:
    """Upload `folder` at 32 px in `channels`, train a few steps, stop."""
    page.bring_to_front()  # a background tab's timers are throttled
    page.get_by_role("tab", name="Train").click()
    page.get_by_role("radio", name="32", exact=True).check()
    page.get_by_role("radio", name=channels, exact=True).check()
    page.locator("input[type=file][webkitdirectory]").first.set_input_files(str(folder))
    page.wait_for_selector("#train-report >> text=8 images ready", timeout=60_000)
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_selector("text=images/s", timeout=60_000)
    page.get_by_role("button", name="Stop", exact=True).click()
    page.wait_for_selector("#train-status >> text=Stopped", timeout=60_000)


def resume_in_new_tab(context, app_url):
    """A new tab of the same browser; once the closed tabs' sessions are gone, 'Resume your last run'."""
    page = context.new_page()
    page.bring_to_front()  # a background tab's timers are throttled
    for _ in range(20):  # the unload reaches the server shortly after the tab closes
        page.goto(app_url)
        page.get_by_role("tab", name="Train").click()
        button = page.get_by_role("button", name="Resume your last run")
        try:
            button.wait_for(state="visible", timeout=3_000)
            break
        except Exception:  # not yet offered: the old session may still be closing
            page.wait_for_timeout(500)
    button.click()
    page.wait_for_selector("text=images/s", timeout=60_000)
    return page


def wait_checked(page, name: str) -> bool:
    radio = page.get_by_role("radio", name=name, exact=True)
    for _ in range(50):
        if radio.is_checked():
            return True
        page.wait_for_timeout(200)
    return False


def test_a_closed_tab_offers_its_run_back_when_reopened(browser, app_url, artifacts_dir, tmp_path):
    """Train, close the tab (demo.unload stops the job, the checkpoint stays), reopen: 'Resume your last run',
    and the page shows the resumed run's own settings (32 px, grey, the suggested batch), not the defaults."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})  # one browser: one localStorage
    page = context.new_page()
    open_app(page, app_url)
    train_and_stop(page, tiny_folder(tmp_path / "sq"), channels="grey")
    batch = slider_value(page, "Batch size")
    assert batch != "64"  # the suggestion for 8 images on a CPU, not the page's default
    page.close(run_before_unload=True)
    again = resume_in_new_tab(context, app_url)
    assert wait_checked(again, "32") and wait_checked(again, "grey"), again.locator("#train-report").inner_text()
    assert slider_value(again, "Batch size") == batch
    again.screenshot(path=str(artifacts_dir / "walk-5-resumed.png"), full_page=True)
    again.get_by_role("button", name="Stop", exact=True).click()
    again.wait_for_selector("#train-status >> text=Stopped", timeout=60_000)
    lr_d = again.get_by_label("Learning rate D")  # the lesson's remedy when D wins: resume with a lower lr_d
    lr_d.fill("0.00005")
    lr_d.press("Enter")
    again.get_by_role("button", name="Resume", exact=True).click()
    again.wait_for_selector("text=Resuming at step", timeout=60_000)  # the toast names the change
    again.wait_for_selector("#train-status >> text=Training", timeout=60_000)
    assert float(lr_d.input_value()) == 5e-5 and wait_checked(again, "grey")  # the run's settings, as resumed
    again.get_by_role("button", name="Stop", exact=True).click()
    again.wait_for_selector("#train-status >> text=Stopped", timeout=60_000)
    context.close()


def test_two_tabs_of_one_browser_keep_separate_resume_slots(browser, app_url, artifacts_dir, tmp_path):
    """Two tabs train (one in colour, one in grey) and close; two new tabs get one run each, with its settings.
    One localStorage slot for the whole browser would lose the first tab's run."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    folder = tiny_folder(tmp_path / "sq")
    first, second = context.new_page(), context.new_page()
    assert open_app(first, app_url) != open_app(second, app_url)  # one slot per tab
    train_and_stop(first, folder, channels="colour")
    train_and_stop(second, folder, channels="grey")
    first.close(run_before_unload=True)
    second.close(run_before_unload=True)
    shown = []
    for _ in range(2):
        tab = resume_in_new_tab(context, app_url)
        assert wait_checked(tab, "32")  # the run's settings have reached the page (a fresh page shows 64 px)
        shown.append("grey" if tab.get_by_role("radio", name="grey", exact=True).is_checked() else "colour")
        tab.screenshot(path=str(artifacts_dir / f"walk-6-two-tabs-{len(shown)}.png"), full_page=True)
        tab.get_by_role("button", name="Stop", exact=True).click()
        tab.wait_for_selector("#train-status >> text=Stopped", timeout=60_000)
    assert sorted(shown) == ["colour", "grey"]  # each closed tab's run came back, each with its settings
    context.close()
