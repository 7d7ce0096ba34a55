"""The app launches, serves its page, and the browser sees the three tabs."""

from __future__ import annotations

import urllib.request

import pytest


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
