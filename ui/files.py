"""Files that a response names: complete when named, and readable for at least an hour afterwards.

Why this module exists. Gradio serves a named file with a `stat` (the Content-Length) and then a read.
When a handler returns a PIL image, an array or bytes, Gradio writes it with
`processing_utils.save_pil_to_cache` & co. to `<cache>/<content hash>/image.webp` *in place* (open,
truncate, write). Two sessions that produce the same picture (every visitor starts at seed 0; two
trainers with the same data and seed; a training run's own live view and its Stop reply) then truncate
and rewrite the very file that a third client is downloading: the download ends short ("Too little data
for declared Content-Length") or holds half a picture. So handlers never hand Gradio pictures or bytes
for an output: they hand it a path that this module wrote.

The rule every path from here keeps:
- Complete when named: the bytes go to a temporary name in a folder of their own and are renamed into
  place (`os.replace`, atomic), before the handler returns the path.
- Written once: every call gets a fresh, unguessable folder, so no later request rewrites the file and
  no other app in the process (tests launch several) ever names it, so none deletes it at its shutdown.
- Readable for at least KEEP_S after it is named: the files live in Gradio's cache, which Gradio's
  `delete_cache` sweep (DELETE_CACHE, passed to gr.Blocks by app.py) empties of files older than
  KEEP_S, counted from the file's creation, i.e. from just before it was named. Session clean-up
  (`SessionStore.close`) only removes session folders, which hold no served file.
Leftovers (a file published but never named, e.g. a yield of a cancelled generator) are outside
Gradio's sweep; `_prune` drops whole time windows once every named file in them is past its sweep.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import threading
import time
from pathlib import Path

from gradio.utils import get_upload_folder
from PIL import Image

KEEP_S = 3600  # a named file stays readable at least this long (see docs/reliability.md)
DELETE_CACHE = (3600, KEEP_S)  # gr.Blocks(delete_cache=(every, older than)) in seconds
WINDOW_S = 600  # files are grouped in folders per 10 minutes of creation time, for pruning leftovers
_prune_lock = threading.Lock()
_pruned_window = -1


def cache_root() -> Path:
    """Where published files live: inside Gradio's cache, so Gradio serves them without a copy."""
    return Path(get_upload_folder()) / "atelier"


def publish(data: bytes, name: str) -> str:
    """Write `data` as a complete file named `name` (the download name) that nothing else writes; its path."""
    folder = _fresh_folder(name)
    tmp = folder / f".{name}.part"
    tmp.write_bytes(data)
    os.replace(tmp, folder / name)  # atomic: the name only ever shows the whole file
    return str(folder / name)


def publish_image(image: Image.Image, name: str) -> str:
    """Encode a PIL image in the format its name says (.png fast and lossless, .webp like Gradio's
    default, .jpg, .gif), then publish it; its path."""
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG"}.get(Path(name).suffix.lower(), Path(name).suffix[1:].upper())
    options = {"compress_level": 1} if fmt == "PNG" else {}  # the Explore renders' fast setting
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return publish(buffer.getvalue(), name)


def publish_zip(source: Path, name: str) -> str:
    """Zip a folder (under a temporary name, never in place) and publish the archive as `name`; its path."""
    folder = _fresh_folder(name)
    archive = shutil.make_archive(str(folder / ".archive"), "zip", source)
    os.replace(archive, folder / name)
    return str(folder / name)


def _fresh_folder(name: str) -> Path:
    """A new folder of its own (128 random bits) in the current time window, for one file called `name`."""
    if not name or Path(name).name != name or name.startswith("."):
        raise ValueError(f"{name!r} is not a plain file name")
    window = int(time.time() // WINDOW_S)
    _prune(window)
    folder = cache_root() / str(window) / secrets.token_hex(16)
    folder.mkdir(parents=True)
    return folder


def _prune(window: int) -> None:
    """Once per window: remove windows whose every named file is past Gradio's sweep (left: leftovers)."""
    global _pruned_window
    with _prune_lock:
        if window == _pruned_window:
            return
        _pruned_window = window
    every, age = DELETE_CACHE
    oldest_kept = window - (every + age) // WINDOW_S - 1  # named by its end, swept by end + age + every
    base = cache_root()
    for entry in base.iterdir() if base.is_dir() else ():
        if entry.name.isdigit() and int(entry.name) < oldest_kept:
            shutil.rmtree(entry, ignore_errors=True)
