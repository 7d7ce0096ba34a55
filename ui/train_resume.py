"""Training runs that outlive their tab: one resume slot per browser tab, offered back after a close or restart.

A session's run folder is `<runtime>/kept/<token>` (not inside the session folder, which goes when the
session closes): the checkpoint, the metrics and the training images (`images.safetensors`). The token is
128 random bits. The browser keeps it in two places (READ_JS / WRITE_JS, run around the page-load event):

- sessionStorage (TAB_KEY): this tab's own token. Each tab has its own, it survives a reload, and the
  browser brings it back when it restores a closed tab; two tabs of one browser never share it.
- localStorage (BROWSER_KEY): this browser's tokens, newest first, so that a *new* tab can find the run
  of a tab that was closed.

On page load `claim` tries the tab's token first, then the browser's: the first whose folder can be resumed
and that no open session uses is adopted, and 'Resume your last run' shows. An unloaded session (its tab
closed) whose run a tab of the browser claims is closed then, not at the end of its grace period
(ui/context.py): its job stops and writes its checkpoint, and the run is offered straight away.
Otherwise the tab keeps its own token if no open session uses it (a reload), else gets a fresh one.
WRITE_JS puts the tab's token first in the browser's list and drops the tokens `claim` found dead (no run
to resume and no open session). Kept folders expire after the store's TTL. A session whose token never
reached a browser (an API client) has its run deleted when it closes: nobody could resume it.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from gan.ingest.data import ImageDataset, IngestReport
from gan.train.checkpoint import CHECKPOINT_FILE
from ui.context import AppContext, SessionState

TOKEN = re.compile(r"[0-9a-f]{32}")  # what secrets.token_hex(16) makes; anything else is ignored
IMAGES_FILE = "images.safetensors"
TAB_KEY = "gan-atelier-tab"
BROWSER_KEY = "gan-atelier-runs"
MAX_REMEMBERED = 8  # tokens a browser remembers (the newest)
READ_JS = (f"() => [sessionStorage.getItem('{TAB_KEY}') || '', localStorage.getItem('{BROWSER_KEY}') || '[]']")
WRITE_JS = f"""(token, forget) => {{
    sessionStorage.setItem('{TAB_KEY}', token);
    let runs = [];
    try {{ runs = JSON.parse(localStorage.getItem('{BROWSER_KEY}') || '[]'); }} catch (e) {{}}
    const gone = JSON.parse(forget || '[]');
    runs = [token, ...runs.filter((t) => t !== token && !gone.includes(t))].slice(0, {MAX_REMEMBERED});
    localStorage.setItem('{BROWSER_KEY}', JSON.stringify(runs));
}}"""


def token(session: SessionState) -> str:
    """This session's resume token (made on first use)."""
    return session.extras.setdefault("resume_token", secrets.token_hex(16))


def run_dir(ctx: AppContext, session: SessionState) -> Path:
    """Where this session's training run lives."""
    return ctx.sessions.kept_dir / token(session)


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


def parse_tokens(text: object) -> list[str]:
    """The browser's token list (JSON from localStorage); anything that is not a token is dropped."""
    try:
        items = json.loads(text) if isinstance(text, str) else []
    except json.JSONDecodeError:
        return []
    if not isinstance(items, list):
        return []
    return [t for t in items if isinstance(t, str) and TOKEN.fullmatch(t)][:MAX_REMEMBERED]


def claim(ctx: AppContext, session: SessionState, tab_token: object,
          browser_tokens: list[str]) -> tuple[bool, list[str]]:
    """Page load: give this session the tab's token or a free kept run's. -> (offer a resume?, tokens to forget)"""
    session.extras["token_in_browser"] = True
    in_use = {s.extras.get("resume_token") for s in ctx.sessions.live() if s is not session}
    leaving = {s.extras.get("resume_token"): key for key, s in ctx.sessions.leaving().items() if s is not session}
    own = tab_token if isinstance(tab_token, str) and TOKEN.fullmatch(tab_token) else None
    for candidate in ([own] if own else []) + browser_tokens:
        if candidate in leaving:  # its tab was closed and this browser reopens it: stop its job now, not later
            ctx.sessions.close(leaving[candidate])
        elif candidate in in_use:
            continue
        if resumable(ctx.sessions.kept_dir / candidate):
            session.extras["resume_token"] = candidate
            return True, _dead(ctx, browser_tokens, in_use, candidate)
    if own and own not in in_use:
        session.extras["resume_token"] = own  # a reloaded tab keeps its slot
    return False, _dead(ctx, browser_tokens, in_use, token(session))


def _dead(ctx: AppContext, tokens: list[str], in_use: set, mine: str) -> list[str]:
    """The tokens with no run to resume and no open session: the browser can forget them."""
    return [t for t in tokens if t != mine and t not in in_use and not resumable(ctx.sessions.kept_dir / t)]


def forget_unshared(ctx: AppContext, state: SessionState) -> None:
    """On close: a run whose token no browser holds cannot be resumed, so it goes now."""
    if "resume_token" in state.extras and not state.extras.get("token_in_browser"):
        shutil.rmtree(run_dir(ctx, state), ignore_errors=True)
