"""The app launches, serves its page, and the browser sees the three tabs."""

from __future__ import annotations

import urllib.request

import pytest

from tests.conftest import save_readme_screenshot


@pytest.mark.integration
def test_page_is_served(app_url):
    with urllib.request.urlopen(app_url, timeout=30) as resp:
        assert resp.status == 200
        assert b"GAN Atelier" in resp.read()


@pytest.mark.browser
def test_three_tabs_visible(page, artifacts_dir):
    from playwright.sync_api import expect

    for name in ("Explore", "Train", "Style"):  # expect() waits: the tabs render after the title on a busy machine
        expect(page.get_by_role("tab", name=name, exact=True)).to_be_visible(timeout=30_000)
    page.screenshot(path=str(artifacts_dir / "smoke.png"))


@pytest.mark.browser
def test_use_via_api_shows_named_parameters(page, artifacts_dir):
    """The footer's "Use via API" page: /generate by keyword (seed, truncation, direction_1 ...), described."""
    page.get_by_text("Use via API").click()
    page.get_by_text("API documentation").wait_for(timeout=30_000)
    code = page.locator("code, pre").filter(has_text="api_name=\"/generate\"").first
    code.wait_for(timeout=30_000)
    text = code.inner_text()
    assert "seed=0" in text and "truncation=1.0" in text and "direction_1=0.0" in text and "a0=" not in text
    assert page.get_by_text("Render one face").first.is_visible()
    page.screenshot(path=str(artifacts_dir / "api.png"))
    save_readme_screenshot(page.screenshot(), "screenshot-api.png", colors=64, width=960)
