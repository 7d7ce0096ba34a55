"""onnxruntime-web (Microsoft, MIT), the browser's ONNX runtime, fetched from the npm registry.

Pinned by version and by the registry's Subresource-Integrity hash (sha512) of the package
tarball: the tarball is downloaded over HTTPS (no npm needed, so a Hugging Face Space can do it
too), checked, and only the three files the page needs are kept:
- `ort.wasm.min.mjs`: the API, built for the WASM backend only (50 KB);
- `ort-wasm-simd-threaded.mjs`: the Emscripten loader it imports (24 KB);
- `ort-wasm-simd-threaded.wasm`: the runtime (14 MB; 2.7 MB as brotli).
Each gets brotli and gzip copies, made once here.
They go to `<vendor root>/onnxruntime-web-<version>/` (git-ignored), whose name changes with
the pin, so the files can be cached by browsers forever. `python -m web fetch` runs this at set-up;
the app calls `ensure()` in the background when the folder is missing. Nothing runs at import.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from web.assets import precompress, vendor_root, write_atomic

log = logging.getLogger(__name__)

PACKAGE = "onnxruntime-web"
VERSION = "1.30.0"
INTEGRITY = "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
TARBALL_URL = f"https://registry.npmjs.org/{PACKAGE}/-/{PACKAGE}-{VERSION}.tgz"
FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
ENTRY = FILES[0]
STAMP = "source.json"
MAX_TARBALL_BYTES = 128 * 2**20
FETCH_COMMAND = "python -m web fetch"


class RuntimeUnavailable(RuntimeError):
    """onnxruntime-web is missing and could not be fetched; the message names the fix."""


def runtime_dir() -> Path:
    """The folder of the pinned runtime's files."""
    return vendor_root() / f"{PACKAGE}-{VERSION}"


def is_ready(folder: Path | None = None) -> bool:
    """Whether every needed file and the provenance stamp are there."""
    folder = folder or runtime_dir()
    return all((folder / name).is_file() for name in (*FILES, STAMP))


def integrity_of(data: bytes) -> str:
    """The npm / Subresource-Integrity string of some bytes: 'sha512-' + base64(sha512)."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def download(url: str, timeout_s: float = 120.0) -> bytes:
    """The bytes at url (https, or file: for tests), refusing more than MAX_TARBALL_BYTES."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            data = response.read(MAX_TARBALL_BYTES + 1)
    except (urllib.error.URLError, OSError) as err:
        raise RuntimeUnavailable(f"Could not download {url} ({err}); the sliders render on the server. "
                                 f"Connect to the internet once and run `{FETCH_COMMAND}`.") from err
    if len(data) > MAX_TARBALL_BYTES:
        raise RuntimeUnavailable(f"{url} is larger than {MAX_TARBALL_BYTES >> 20} MB; refusing it.")
    return data


def extract(tarball: bytes, dest: Path) -> None:
    """Copy the needed files out of the package tarball by exact member name (nothing else)."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for name in FILES:
            try:
                member = tar.getmember(f"package/dist/{name}")
            except KeyError as err:
                raise RuntimeUnavailable(f"{PACKAGE} {VERSION} has no dist/{name}; the pin is wrong.") from err
            if not member.isfile():
                raise RuntimeUnavailable(f"dist/{name} in the {PACKAGE} tarball is not a plain file.")
            with tar.extractfile(member) as src:
                write_atomic(dest / name, src.read())


def fetch(url: str = TARBALL_URL, integrity: str = INTEGRITY, force: bool = False) -> str:
    """Make runtime_dir() ready (download, check, extract, pre-compress); a sentence saying what was done."""
    folder = runtime_dir()
    if is_ready(folder) and not force:
        return f"{PACKAGE} {VERSION}: already there ({folder})."
    tarball = download(url)
    found = integrity_of(tarball)
    if found != integrity:
        raise RuntimeUnavailable(f"{url}: integrity {found[:24]}... does not match the pinned "
                                 f"{integrity[:24]}...; refusing it.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".fetch-") as tmp:
        staging = Path(tmp) / "out"
        extract(tarball, staging)
        for name in FILES:
            precompress(staging / name)
        stamp = {"package": PACKAGE, "version": VERSION, "integrity": integrity, "source": url,
                 "licence": "MIT (Microsoft Corporation)"}
        (staging / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)  # same filesystem: the folder appears complete or not at all
    return f"{PACKAGE} {VERSION}: fetched from {url}, checked ({integrity[:15]}...), unpacked to {folder}."


def ensure() -> Path:
    """The runtime folder, fetched first if needed; RuntimeUnavailable says why it could not be."""
    if not is_ready():
        log.info(fetch())
    return runtime_dir()
