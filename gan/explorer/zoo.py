"""Which generators exist and how to load them: pretrained (weights/), a session's own, the Hub, uploads.

Every model is a `PyTorchModelHubMixin` folder (config.json + model.safetensors). Loading goes
through one `lru_cache`d function keyed by (folder, device), which also loads or computes the
model's GANSpace directions once: next to the weights when that folder is ours and writable,
else in a cache folder ($ATELIER_CACHE_DIR, default ~/.cache/gan-atelier).
Uploads are never unpickled: only safetensors are accepted, zips are checked before extraction.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from gan.explorer.latent import DirectionConfig, Directions, cached_directions
from gan.explorer.model import PICKLE_SUFFIXES, REPO_ID, Generator, ModelLoadError, load_generator
from weights.fetch import ensure
from weights.manifest import BUNDLED, SOURCES

log = logging.getLogger(__name__)

ALLOWED_FILES = {"config.json", "model.safetensors", "README.md"}
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
DIRECTIONS_FILE = "directions.safetensors"
ONNX_FILE = "generator-fp16.onnx"  # the page's export (gan.explorer.export), beside the directions


class UnknownModel(KeyError):
    """A model id that is neither pretrained nor one of this session's models."""

    def __str__(self) -> str:
        return str(self.args[0])


class HubUnavailable(RuntimeError):
    """The Hub could not be reached (offline) or has no such repo."""


@dataclass(frozen=True)
class LoadedModel:
    """A generator ready for inference, with its GANSpace directions."""

    G: Generator
    directions: Directions
    folder: Path


def pretrained_ids() -> list[str]:
    """Ids of the manifest's generators (sources whose config has a latent size), then bundled ones."""
    return [model_id for model_id, source in SOURCES.items() if "nz" in source.config] + list(BUNDLED)


def resolve(model_id: str, session_models: dict[str, Path] | None = None) -> Path:
    """The folder of a pretrained id (fetched if needed) or of one of the session's models."""
    session_models = session_models or {}
    if model_id in session_models:
        return Path(session_models[model_id])
    if model_id in pretrained_ids():
        return pretrained_folder(model_id)
    raise UnknownModel(f"Unknown model {model_id!r}: pick one from the list, or load it again.")


@functools.cache
def pretrained_folder(model_id: str) -> Path:
    """The checked local folder of a pretrained id (fetched if needed); cached for the process."""
    # ensure() hashes the weights to check them: once per process, not once per slider move.
    # Failures (WeightsUnavailable, naming the fetch command) are not cached, so a later call retries.
    return ensure(model_id)


def cache_root() -> Path:
    """Where derived files go when a model's own folder is not ours to write: $ATELIER_CACHE_DIR."""
    return Path(os.environ.get("ATELIER_CACHE_DIR") or Path.home() / ".cache" / "gan-atelier")


def derived_path(folder: Path, filename: str) -> Path:
    """Where a file derived from a model's weights goes: beside them if that folder is writable and
    not the Hub cache, else `<cache root>/<stem>/<weights digest><suffix>`."""
    from huggingface_hub import constants

    in_hub_cache = Path(constants.HF_HUB_CACHE).resolve() in folder.resolve().parents
    if os.access(folder, os.W_OK) and not in_hub_cache:
        return folder / filename
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()[:20]
    stem, _, suffix = filename.partition(".")
    return cache_root() / stem / f"{digest}.{suffix}"


def directions_path(folder: Path) -> Path:
    """directions.safetensors beside the weights, or in the cache (see derived_path)."""
    return derived_path(folder, DIRECTIONS_FILE)


@functools.lru_cache(maxsize=8)
def _load_cached(folder: str, device: str, config: DirectionConfig) -> LoadedModel:
    G = load_generator(folder, device)
    G.requires_grad_(False)
    directions = cached_directions(G, directions_path(Path(folder)), config)
    log.info("loaded %s on %s (%d directions)", folder, device, directions.k)
    return LoadedModel(G=G, directions=directions, folder=Path(folder))


def load(folder: Path, device: torch.device | str = "cpu", config: DirectionConfig | None = None) -> LoadedModel:
    """Load a model folder once per (folder, device); raises ModelLoadError on a bad folder."""
    return _load_cached(str(Path(folder).resolve()), str(torch.device(device)), config or DirectionConfig())


def download_from_hub(repo_id: str) -> Path:
    """Download a mixin-format repo's config + safetensors; clear messages offline or on a bad id."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    repo_id = repo_id.strip()
    if not REPO_ID.match(repo_id):
        raise HubUnavailable(f"{repo_id!r} is not a Hub repo id; write it as 'user/name'.")
    try:
        folder = snapshot_download(repo_id, allow_patterns=sorted(ALLOWED_FILES))
    except (OfflineModeIsEnabled, LocalEntryNotFoundError) as err:
        raise HubUnavailable(f"Cannot reach the Hugging Face Hub to fetch {repo_id} (offline). "
                             "Connect to the internet, or upload the model folder as a zip.") from err
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise HubUnavailable(f"Could not download {repo_id} from the Hub: {str(err).splitlines()[0]}") from err
    return Path(folder)


def _safe_members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Map file name -> zip entry, refusing traversal, links, pickles and oversize archives."""
    found: dict[str, zipfile.ZipInfo] = {}
    if sum(info.file_size for info in zf.infolist()) > MAX_UPLOAD_BYTES:
        raise ModelLoadError("The zip unpacks to more than 512 MB; a DCGAN is far smaller.")
    for info in zf.infolist():
        name = info.filename.replace("\\", "/")
        parts = [p for p in name.split("/") if p]
        if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
            raise ModelLoadError(f"The zip entry {info.filename!r} points outside the folder; refused.")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise ModelLoadError(f"The zip entry {info.filename!r} is a symbolic link; refused.")
        if info.is_dir() or not parts:
            continue
        if Path(parts[-1]).suffix.lower() in PICKLE_SUFFIXES:
            raise ModelLoadError(f"{parts[-1]}: pickled weights are refused; save the model as "
                                 "model.safetensors (save_pretrained does).")
        if parts[-1] in ALLOWED_FILES:
            if parts[-1] in found:
                raise ModelLoadError(f"The zip holds more than one {parts[-1]}; upload one model at a time.")
            found[parts[-1]] = info
    return found


def _check_complete(names: set[str], what: str) -> None:
    missing = {"config.json", "model.safetensors"} - names
    if missing:
        raise ModelLoadError(f"{what} lacks {' and '.join(sorted(missing))}; a model folder needs "
                             "config.json + model.safetensors (what save_pretrained writes).")


def unpack_upload(files: list[Path], dest: Path) -> Path:
    """Copy an uploaded zip's or folder's model files into dest (new folder); return it."""
    files = [Path(f) for f in files]
    pickles = [f.name for f in files if f.suffix.lower() in PICKLE_SUFFIXES]
    if pickles:
        raise ModelLoadError(f"{pickles[0]}: pickled weights are refused; upload model.safetensors + config.json.")
    dest.mkdir(parents=True, exist_ok=False)
    if len(files) == 1 and zipfile.is_zipfile(files[0]):
        with zipfile.ZipFile(files[0]) as zf:
            members = _safe_members(zf)
            _check_complete(set(members), files[0].name)
            for name, info in members.items():
                with zf.open(info) as src, open(dest / name, "wb") as out:
                    shutil.copyfileobj(src, out)
        return dest
    by_name = {f.name: f for f in files if f.name in ALLOWED_FILES}
    _check_complete(set(by_name), "The upload")
    for name, path in by_name.items():
        shutil.copyfile(path, dest / name)
    return dest


def import_upload(files: list[Path], dest: Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Unpack an upload into dest and load it strictly; a failed upload leaves nothing behind."""
    if dest.exists():
        raise ModelLoadError(f"{dest.name} already exists; choose another name.")
    try:
        folder = unpack_upload(files, dest)
        return load(folder, device)
    except (ModelLoadError, zipfile.BadZipFile, OSError) as err:
        shutil.rmtree(dest, ignore_errors=True)
        if isinstance(err, ModelLoadError):
            raise
        raise ModelLoadError(f"Could not read the upload: {err}") from err
