"""The Noto Emoji faces at any size (e.g. 128 px, for progressive growing), rendered from Google's SVGs.

The 64 px PNGs of `tools.datasets` are the largest the npm emoji-datasource packages carry. The same
emoji as vector drawings are in the npm package `@iconify-json/noto` (Noto Emoji, Apache-2.0, Google):
`npm pack` fetches it (integrity-checked against the registry), each face of a folder written by
`python -m tools.datasets faces` is looked up by its code points in the package's `chars.json`, and
headless Chromium (Playwright, /usr/bin/chromium) renders its SVG at `size` px with a transparent
background, as the 64 px PNGs have. Only the JSON members are read from the tarball.

    python -m tools.noto_svg runs/emoji-faces runs/emoji-faces-128 --size 128
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE, VERSION = "@iconify-json/noto", "1.2.9"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
CREDITS = f"""Noto Emoji drawings from the npm package {PACKAGE}@{VERSION} (icons.json), rendered at {{size}} px
with headless Chromium. Noto Emoji: Copyright Google Inc., licensed under the Apache License, Version 2.0
(https://www.apache.org/licenses/LICENSE-2.0); https://github.com/googlefonts/noto-emoji
Selection: the emoji of {{source}}.
"""


def load_icons(tmp: Path) -> tuple[dict, dict]:
    """(code points -> icon name, the icon set) from the package tarball fetched with npm."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: install Node.js (it brings npm), then try again.")
    subprocess.run([npm, "pack", f"{PACKAGE}@{VERSION}", "--silent"], cwd=tmp, check=True, capture_output=True,
                   timeout=600)
    with tarfile.open(next(tmp.glob("*.tgz"))) as tar:
        chars, icons = (json.load(tar.extractfile(f"package/{name}.json")) for name in ("chars", "icons"))
    return chars, icons


def svg_of(code: str, chars: dict, icons: dict) -> str:
    """The standalone SVG of an emoji given as '1f62e-200d-1f4a8' (a trailing -fe0f may be absent)."""
    name = chars.get(code) or chars.get(code.replace("-fe0f", ""))
    if name is None or name not in icons["icons"]:
        raise KeyError(f"{code}: not in {PACKAGE}@{VERSION}")
    icon = icons["icons"][name]
    w, h = icon.get("width", icons.get("width", 16)), icon.get("height", icons.get("height", 16))
    return f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}">{icon["body"]}</svg>'


def render(codes: list[str], chars: dict, icons: dict, dest: Path, size: int) -> None:
    """Write dest/<code>.png for each emoji, `size` px square, transparent background."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": size, "height": size})
        for code in codes:
            svg = svg_of(code, chars, icons).replace("<svg ", f'<svg width="{size}" height="{size}" ', 1)
            page.set_content(f'<html><body style="margin:0;background:transparent">{svg}</body></html>')
            page.locator("svg").screenshot(path=str(dest / f"{code}.png"), omit_background=True)
        browser.close()


def main() -> None:
    """Render the emoji of SOURCE's PNG names into DEST at --size px."""
    parser = argparse.ArgumentParser(prog="python -m tools.noto_svg", description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="a folder written by `python -m tools.datasets faces`")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    codes = sorted(p.stem for p in args.source.glob("*.png"))
    args.dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="noto-svg-") as tmp:
        chars, icons = load_icons(Path(tmp))
    render(codes, chars, icons, args.dest, args.size)
    (args.dest / "CREDITS.txt").write_text(CREDITS.format(size=args.size, source=args.source.name), encoding="utf-8")
    log.info("wrote %d emoji at %d px to %s", len(codes), args.size, args.dest)


if __name__ == "__main__":
    main()
