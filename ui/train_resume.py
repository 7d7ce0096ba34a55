"""Training runs that outlive their tab: 'Resume your last run' after a closed tab or a server restart.

A session's run folder is `<runtime>/kept/<token>` (not inside the session folder, which goes when the
session closes): the checkpoint, the metrics and the training images (`images.safetensors`). The token
is 128 random bits, stored in the visitor's browser with `gr.BrowserState` (localStorage, encrypted with
a secret kept in the runtime dir, so that it still reads after a restart). On page load, a stored token
whose folder holds a checkpoint, and that no open session is using, is adopted by the new session and
the 'Resume your last run' button shows. Kept folders expire after the store's TTL. A session whose
token never reached a browser (an API client) has its run deleted when it closes: nobody could resume it.
"""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from gan.train.checkpoint import CHECKPOINT_FILE
from gan.ingest.data import ImageDataset, IngestReport
from ui.context import AppContext, SessionState

TOKEN = re.compile(r"[0-9a-f]{32}")  # what secrets.token_hex(16) makes; anything else is ignored
IMAGES_FILE = "images.safetensors"
STORAGE_KEY = "gan-atelier-resume"


def token(session: SessionState) -> str:
    """This session's resume token (made on first use)."""
    return session.extras.setdefault("resume_token", secrets.token_hex(16))


def run_dir(ctx: AppContext, session: SessionState) -> Path:
    """Where this session's training run lives."""
    return ctx.sessions.kept_dir / token(session)


def browser_secret(ctx: AppContext) -> str:
    """The BrowserState encryption secret, made once per runtime dir (stable across restarts)."""
    path = ctx.sessions.kept_dir / ".browser-secret"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def save_images(folder: Path, images: torch.Tensor) -> None:
    """Keep the uint8 training images beside the checkpoint, so that a resumed run has its data."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"images": images.contiguous()}, str(folder / IMAGES_FILE))


def kept_dataset(folder: Path) -> ImageDataset:
    """The training images kept in a run folder, as a data set."""
    images = load_file(str(folder / IMAGES_FILE))["images"]
    names = [f"image {i + 1}" for i in range(images.shape[0])]
    report = IngestReport(used=len(names), skipped=[], duplicates=0, min_size=None, max_size=None)
    return ImageDataset(images, names, report)


def resumable(folder: Path) -> bool:
    """A checkpoint and the images are there."""
    return (folder / CHECKPOINT_FILE).is_file() and (folder / IMAGES_FILE).is_file()


def adopt(ctx: AppContext, session: SessionState, stored: object) -> bool:
    """Page load: take over the browser's stored token when its run can be resumed; True if so."""
    session.extras["token_in_browser"] = True
    if not (isinstance(stored, str) and TOKEN.fullmatch(stored)):
        return False
    in_use = any(s.extras.get("resume_token") == stored for s in ctx.sessions.live() if s is not session)
    if in_use or not resumable(ctx.sessions.kept_dir / stored):
        return False
    session.extras["resume_token"] = stored
    return True


def forget_unshared(ctx: AppContext, state: SessionState) -> None:
    """On close: a run whose token no browser holds cannot be resumed, so it goes now."""
    if "resume_token" in state.extras and not state.extras.get("token_in_browser"):
        shutil.rmtree(run_dir(ctx, state), ignore_errors=True)
