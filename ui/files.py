"""Every file the UI hands to Gradio is written here: complete before it is named, never rewritten.

A file goes into Gradio's cache folder (which Gradio serves as is and cleans up with the app's
`delete_cache`), at `<cache>/atelier/<sha256 of the bytes>/<name>`: the folder is named by the content,
the file keeps a readable name for downloads. It is written under a temporary name and renamed (atomic
on POSIX), so a reader never sees half a file, and two sessions that produce the same bytes at once end
up with one complete file instead of one writing over the other while it is served.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from pathlib import Path

from gradio.utils import get_upload_folder
from PIL import Image


def cache_root() -> Path:
    """Our folder inside Gradio's cache ($GRADIO_TEMP_DIR, else <tmp>/gradio)."""
    return Path(get_upload_folder()) / "atelier"


def publish(data: bytes, name: str) -> str:
    """Write `data` as <cache>/atelier/<hash>/<name> unless it is already there; return the path."""
    folder = cache_root() / hashlib.sha256(data).hexdigest()[:24]
    path = folder / name
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{secrets.token_hex(4)}.tmp"
        tmp.write_bytes(data)
        tmp.replace(path)
    return str(path)


def publish_image(image: Image.Image, name: str) -> str:
    """A PIL image as a PNG file (see `publish`)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return publish(buffer.getvalue(), name)
