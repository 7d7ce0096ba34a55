"""The page's public folders, content-hashed names and pre-compressed copies.

Two folders are public (given to `gr.set_static_paths`, served by `serving.PrecompressedFiles`):
- the runtime folder `web/vendor/` (git-ignored; $ATELIER_VENDOR_DIR), where `runtime` unpacks
  onnxruntime-web under a versioned name;
- the published folder `<cache root>/web/` ($ATELIER_CACHE_DIR, default ~/.cache/gan-atelier), where
  exported generators and the page's script are copied under names that change with their content.
Every name in them is immutable, so they are served with `Cache-Control: immutable`. Each large
file gets `.br` and `.gz` siblings made once, so no request ever compresses on the fly.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import secrets
import time
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
COMPRESSIBLE = (".wasm", ".onnx", ".mjs", ".js")
MIN_COMPRESS_BYTES = 1024


def vendor_root() -> Path:
    """Where fetched browser runtimes live: $ATELIER_VENDOR_DIR, else web/vendor/ in the checkout."""
    return Path(os.environ.get("ATELIER_VENDOR_DIR") or PACKAGE_DIR / "vendor").resolve()


def published_root() -> Path:
    """Where files made at run time are published: <cache root>/web (see gan.explorer.zoo.cache_root)."""
    from gan.explorer.zoo import cache_root

    return (cache_root() / "web").resolve()


def public_roots() -> list[Path]:
    """Every folder the browser may read from (and nothing else)."""
    return [vendor_root(), published_root()]


def url_for(path: Path) -> str:
    """The page-relative URL of a public file, through Gradio's static-file route."""
    return f"gradio_api/file={Path(path).resolve()}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write through a temporary name and rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def brotli_bytes(data: bytes, quality: int) -> bytes | None:
    """Brotli-compressed data, or None when the brotli module (a gradio dependency) is absent."""
    try:
        import brotli
    except ImportError:
        return None
    return brotli.compress(data, quality=quality, lgwin=24)


def precompress(path: Path, brotli_quality: int = 9) -> list[Path]:
    """Write path.br and path.gz beside a file once (kept only when smaller); return what exists."""
    data = None
    made = []
    for suffix, encode in ((".br", lambda d: brotli_bytes(d, brotli_quality)),
                           (".gz", lambda d: gzip.compress(d, compresslevel=9, mtime=0))):
        target = path.with_name(path.name + suffix)
        if not target.is_file():
            data = path.read_bytes() if data is None else data
            packed = encode(data)
            if packed is None or len(packed) >= len(data):
                continue
            write_atomic(target, packed)
        made.append(target)
    return made


def content_name(data: bytes, stem: str, suffix: str) -> str:
    """`<stem>-<first 16 hex of sha256><suffix>`: a name that changes whenever the bytes do."""
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:16]}{suffix}"


def publish_bytes(data: bytes, folder: str, stem: str, suffix: str, brotli_quality: int = 9) -> Path:
    """Copy bytes into the published folder under their content name, pre-compressed; idempotent."""
    path = published_root() / folder / content_name(data, stem, suffix)
    if not path.is_file():
        write_atomic(path, data)
    if suffix in COMPRESSIBLE and len(data) >= MIN_COMPRESS_BYTES:
        precompress(path, brotli_quality)
    return path


def publish_file(source: Path, folder: str, name: str, brotli_quality: int = 5) -> Path:
    """Copy a file into the published folder under a name the caller derived from its content."""
    path = published_root() / folder / name
    if not path.is_file():
        write_atomic(path, Path(source).read_bytes())
        log.info("published %s as %s", source, path)
    if path.suffix in COMPRESSIBLE:
        precompress(path, brotli_quality)
    return path


def touch(path: Path) -> None:
    """Mark a published file and its compressed siblings as in use (`sweep` goes by modification time)."""
    for name in (path.name, f"{path.name}.br", f"{path.name}.gz"):
        try:
            os.utime(path.with_name(name))  # never creates a file, unlike Path.touch
        except FileNotFoundError:
            continue


def sweep(folder: Path, max_age_s: float, keep: Path | None = None) -> list[Path]:
    """Delete files in folder older than max_age_s (by modification time), but not `keep` and its
    compressed siblings; returns what went. Visitors' models would otherwise pile up on a Space."""
    if not folder.is_dir():
        return []
    cutoff, gone = time.time() - max_age_s, []
    kept = {keep.name, f"{keep.name}.br", f"{keep.name}.gz"} if keep is not None else set()
    kept |= {p.name for p in folder.iterdir() if p.name.startswith(".")}  # another writer's temporary file
    for path in folder.iterdir():
        try:
            if path.is_file() and path.name not in kept and path.stat().st_mtime < cutoff:
                path.unlink()
                gone.append(path)
        except FileNotFoundError:  # another process swept it first
            continue
    if gone:
        log.info("removed %d published files older than %.0f h from %s", len(gone), max_age_s / 3600, folder)
    return gone
