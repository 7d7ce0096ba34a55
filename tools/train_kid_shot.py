"""A browser run of the Train tab until its KID plot holds two measurements; saves a small screenshot.

Launches the app on a free loopback port, opens it in headless Chromium (Playwright, the system's
/usr/bin/chromium), uploads a folder, sets `kid_every` in the Advanced accordion, starts training and
waits until the status reports a KID measured at or after the second grid step, then screenshots the
live panel (losses, D's outputs, KID, coverage, samples) as a palette PNG.

    python -m tools.train_kid_shot /work/data/emoji-faces docs/train-kid-live.png --kid-every 250
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import tempfile
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
KID_AT = "(k) => { const m = [...document.querySelector('#train-status').innerText.matchAll(/KID x 1000 .*? at step ([\\d,]+)/g)]; return m.length && parseInt(m[m.length - 1][1].replace(/,/g, '')) >= 2 * k; }"  # noqa: E501


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shoot(page, folder: Path, out: Path, kid_every: int, steps: int, timeout_s: int) -> None:
    """Drive the Train tab and write the screenshot."""
    from PIL import Image

    page.get_by_role("tab", name="Train").click()
    page.locator("input[type=file][webkitdirectory]").first.set_input_files(str(folder))
    page.wait_for_selector("#train-report >> text=images ready", timeout=120_000)
    page.get_by_label("Steps").first.fill(str(steps))
    page.get_by_text("Advanced: network variants and the quality measurement").click()
    kid = page.get_by_label("Measure KID every (steps, 0 = never)")
    kid.fill(str(kid_every))
    kid.press("Enter")
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_function(KID_AT, arg=kid_every, timeout=timeout_s * 1000)
    page.wait_for_timeout(3000)  # let the plots redraw
    png = page.locator("#train-live").screenshot()
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(colors=96, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    page.get_by_role("button", name="Stop", exact=True).click()
    # the stop measures the final weights and writes a checkpoint: over 2 minutes on a loaded 2-core machine
    page.wait_for_selector("#train-status >> text=Stopped", timeout=600_000)


def main() -> None:
    """Launch, drive, save."""
    parser = argparse.ArgumentParser(prog="python -m tools.train_kid_shot", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--kid-every", type=int, default=250)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--timeout", type=int, default=1500, help="seconds to wait for the second measurement")
    args = parser.parse_args()
    os.environ.setdefault("ATELIER_RUNTIME_DIR", tempfile.mkdtemp(prefix="atelier-"))
    from playwright.sync_api import sync_playwright

    from app import build_demo, serve

    demo, port = build_demo(), free_port()
    serve(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("text=GAN Atelier", timeout=60_000)
            shoot(page, args.folder, args.out, args.kid_every, args.steps, args.timeout)
            browser.close()
    finally:
        demo.close()


if __name__ == "__main__":
    main()
