"""Helpers for checking the files that responses name: fetch over raw HTTP, count bad downloads, and
record outputs that reach Gradio's cache by the unsafe routes (see ui/files.py).
"""

from __future__ import annotations

import io
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gradio
import httpx
import numpy as np
import pytest
from PIL import Image

IN_PLACE_WRITERS = ("save_pil_to_cache", "save_img_array_to_cache", "save_bytes_to_cache")


def file_urls(data, found: list[str] | None = None) -> list[str]:
    """Every file URL in a response's data (Gradio FileData dicts, at any depth)."""
    found = [] if found is None else found
    if isinstance(data, dict):
        if isinstance(data.get("url"), str) and data.get("path"):
            found.append(data["url"])
        for value in data.values():
            file_urls(value, found)
    elif isinstance(data, list):
        for value in data:
            file_urls(value, found)
    return found


def call(http: httpx.Client, base: str, api: str, data: list, session_hash: str | None = None) -> list:
    """POST /gradio_api/call/<api>, read its event stream; the completed data (raises on an error event)."""
    body = {"data": data, "session_hash": session_hash or uuid.uuid4().hex[:12]}
    event_id = http.post(f"{base}gradio_api/call/{api}", json=body).raise_for_status().json()["event_id"]
    text = http.get(f"{base}gradio_api/call/{api}/{event_id}").raise_for_status().text
    for block in text.split("\n\n"):
        if block.startswith("event: complete"):
            return json.loads(block.split("data: ", 1)[1])
    raise AssertionError(f"/{api} did not complete: {text[-300:]}")


def fetch_image(http: httpx.Client, url: str) -> None:
    """Download a named file and decode it completely (raises on a short body, a 404, a torn picture)."""
    response = http.get(url)
    response.raise_for_status()
    with Image.open(io.BytesIO(response.content)) as image:
        image.load()


class Tally:
    """Downloads that worked and those that did not, from many threads."""

    def __init__(self) -> None:
        self.lock, self.ok, self.bad = threading.Lock(), 0, []

    def fetch(self, http: httpx.Client, url: str) -> None:
        try:
            fetch_image(http, url)
        except Exception as err:  # every failure is counted and shown, none retried
            with self.lock:
                self.bad.append(f"{url.rsplit('/', 1)[-1]}: {type(err).__name__}: {err}"[:200])
            return
        with self.lock:
            self.ok += 1


def watch_cache_writes(patch: pytest.MonkeyPatch, sessions_root: Path) -> list[str]:
    """Record every output that Gradio writes in place into its cache (a handler returned a picture,
    an array or bytes) or copies from a session folder (which closing the session deletes); the list
    fills as the app runs. `patch.setattr` raises if Gradio renames these functions."""
    seen: list[str] = []
    pu = gradio.processing_utils
    for name in IN_PLACE_WRITERS:
        original = getattr(pu, name)
        patch.setattr(pu, name, lambda *a, _name=name, _orig=original, **k: seen.append(_name) or _orig(*a, **k))
    copy = pu.save_file_to_cache

    def watched_copy(file_path, cache_dir):
        if Path(file_path).resolve().is_relative_to(Path(sessions_root).resolve()):
            seen.append(f"save_file_to_cache({Path(file_path).name})")
        return copy(file_path, cache_dir)

    patch.setattr(pu, "save_file_to_cache", watched_copy)
    return seen


@contextmanager
def watched_app(root: Path) -> Iterator[tuple]:
    """A launched app whose sessions live under `root` -> (ctx, demo, url, record of in-place writes)."""
    from app import build_demo, serve
    from tests.conftest import free_port
    from ui.context import AppContext, SessionStore

    with pytest.MonkeyPatch.context() as patch:
        ctx = AppContext(sessions=SessionStore(root=root))
        in_place = watch_cache_writes(patch, ctx.sessions.root)
        demo = build_demo(ctx)
        port = free_port()
        serve(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
        try:
            yield ctx, demo, f"http://127.0.0.1:{port}/", in_place
        finally:
            demo.close()


def noise_pngs(folder: Path, n: int, seed: int) -> list[Path]:
    """`n` 36 px PNGs of seeded noise in `folder`."""
    rng = np.random.default_rng(seed)
    paths = [folder / f"{i}.png" for i in range(n)]
    for path in paths:
        Image.fromarray(rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)).save(path)
    return paths
