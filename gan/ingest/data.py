"""Ingest a visitor's images into one in-memory uint8 tensor, with a report of everything skipped.

`ingest(sources, work_dir)` accepts folders, loose image files and zip archives (see
`gan.ingest.sources` for how archives are read in place and bounded). Each file is decoded by content,
not by its suffix, with Pillow restricted to PNG, JPEG, WebP, BMP, GIF and TIFF; EXIF orientation
is applied; palette, grey, alpha (composited on a background), CMYK and 16-bit images become RGB
(or L); the centre square is resized with Lanczos to `image_size`. Anything that cannot be used is
reported by name with a reason and the rest goes on; `IngestError` only when nothing is left.

Decompression bombs: the pixel cap is checked on the header's size before any decoding, so PIL's
process-wide `MAX_IMAGE_PIXELS` is never changed (changing it would race with other sessions'
threads); PIL's own `DecompressionBombError` is still caught and reported. Truncated files are
found by a full `load()`; `LOAD_TRUNCATED_IMAGES` stays off.

Duplicates are found twice: by a hash of the file's bytes (cheap, before decoding) and by a hash
of the processed pixels, which catches the same picture saved in another format or with other
metadata. Either way the later copy is dropped as "duplicate of <first name>".
"""

import hashlib
import io
import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from gan.explorer.model import SUPPORTED_SIZES
from gan.ingest.sources import ZIP_MAGIC, Collector, Entry, Limits, Refused

log = logging.getLogger(__name__)

FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")  # JPEG also opens MPO (phone photos)
_MAGIC = {
    b"\x89PNG": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"RIFF": "WebP",
    b"BM": "BMP",
    b"GIF8": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
_HIGH_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


@dataclass(frozen=True)
class IngestConfig:
    """What the images become and the caps that keep hostile uploads harmless."""

    image_size: int = 64  # 32, 64 or 128
    channels: int = 3  # 1 (grey) or 3 (RGB)
    max_files: int = 20_000
    max_total_bytes: int = 2_000_000_000  # uncompressed, summed over archive members / files
    max_upload_bytes: int = 500_000_000  # per uploaded file (zip or image)
    max_ratio: float = 100.0  # zip member compression ratio cap (zip bombs)
    max_pixels: int = 40_000_000  # per image (decompression bombs)
    min_side: int = 8  # smaller images carry too little to learn from
    background: tuple[int, int, int] = (255, 255, 255)  # transparent pixels are composited on this

    def __post_init__(self) -> None:
        if self.image_size not in SUPPORTED_SIZES:
            raise ValueError(f"Image size must be one of {SUPPORTED_SIZES}, not {self.image_size}.")
        if self.channels not in (1, 3):
            raise ValueError(f"Channels must be 1 (grey) or 3 (colour), not {self.channels}.")
        for name in ("max_files", "max_total_bytes", "max_upload_bytes", "max_pixels", "min_side"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive number, not {getattr(self, name)}.")
        if self.max_ratio < 1:
            raise ValueError(f"max_ratio must be at least 1, not {self.max_ratio}.")
        if len(self.background) != 3 or any(not 0 <= int(c) <= 255 for c in self.background):
            raise ValueError(f"Background must be three values from 0 to 255, not {self.background}.")

    def limits(self) -> Limits:
        """The caps that archive and file reading enforce."""
        return Limits(self.max_files, self.max_total_bytes, self.max_upload_bytes, self.max_ratio)


@dataclass(frozen=True)
class Skipped:
    """A file that was not used: its name as the visitor knows it and why."""

    name: str
    reason: str
    kind: str = "other"  # a short category for grouping in the summary


@dataclass
class IngestReport:
    """What ingest used and skipped."""

    used: int
    skipped: list[Skipped]
    duplicates: int
    min_size: tuple[int, int] | None  # smallest source image (by area), width x height
    max_size: tuple[int, int] | None
    upscaled: int = 0  # images smaller than image_size, enlarged
    seconds: float = 0.0

    def summary(self) -> str:
        """A few Markdown lines: what is ready, then the skipped files grouped by kind."""
        others = len(self.skipped) - self.duplicates
        lines = [(f"**{_n(self.used, 'image')} ready**{self._sizes()}; {_n(self.duplicates, 'duplicate')} dropped; "
                  f"{_n(others, 'other file')} skipped.")]
        if self.upscaled:
            n = self.upscaled
            lines.append(f"{_n(n, 'image')} smaller than the training size {_was(n)} enlarged (may look soft).")
        groups: dict[str, list[Skipped]] = {}
        for s in self.skipped:
            groups.setdefault(s.kind, []).append(s)
        for kind, items in groups.items():
            shown = "; ".join(f"`{s.name}`: {s.reason}" for s in items[:5])
            more = f"; and {len(items) - 5:,} more" if len(items) > 5 else ""
            lines.append(f"- **{kind}** ({len(items):,}): {shown}{more}")
        return "\n".join(lines)

    def _sizes(self) -> str:
        """' (all 64x64)' or ' (sizes 32x32 to 640x480)', or nothing when no image was used."""
        if self.min_size is None or self.max_size is None:
            return ""
        if self.min_size == self.max_size:
            return f" (all {_wh(self.min_size)})"
        return f" (sizes {_wh(self.min_size)} to {_wh(self.max_size)})"


def _wh(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _n(count: int, noun: str) -> str:
    """'1 image', '3 images'."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _was(count: int) -> str:
    return "was" if count == 1 else "were"


@dataclass
class ImageDataset:
    """The processed images as one uint8 tensor (N, C, S, S), their names and the ingest report."""

    images: torch.Tensor
    names: list[str]
    report: IngestReport

    def __len__(self) -> int:
        return self.images.shape[0]

    def preview_grid(self, n: int = 64, pad: int = 2, pad_value: int = 128) -> Image.Image:
        """The first `n` images in a square grid on grey lines (white tiles stay visible): what the GAN sees."""
        imgs = self.images[:n].permute(0, 2, 3, 1).numpy()  # (n, S, S, C)
        count, s, _, c = imgs.shape
        cols = max(1, math.ceil(math.sqrt(count)))
        rows = max(1, math.ceil(count / cols))
        grid = np.full((rows * (s + pad) + pad, cols * (s + pad) + pad, c), pad_value, np.uint8)
        for i, img in enumerate(imgs):
            y, x = pad + (i // cols) * (s + pad), pad + (i % cols) * (s + pad)
            grid[y : y + s, x : x + s] = img
        return Image.fromarray(grid[..., 0] if c == 1 else grid, "L" if c == 1 else "RGB")

    def as_float(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The images on `device` as float32 in [-1, 1] (uint8 is moved first: 4x less to copy)."""
        return self.images.to(device).float().div_(127.5).sub_(1.0)


class IngestError(ValueError):
    """Nothing usable remained; the message lists the reasons and `report` has them all."""

    def __init__(self, report: IngestReport):
        super().__init__("No usable image was found.\n" + report.summary())
        self.report = report


def _magic_format(data: bytes) -> str | None:
    """The image format that the first bytes announce, if any."""
    return next((fmt for magic, fmt in _MAGIC.items() if data.startswith(magic)), None)


def _not_an_image(data: bytes) -> Refused:
    """A reason for bytes that no allowed decoder accepted, from their first bytes."""
    if fmt := _magic_format(data):
        return Refused(f"damaged {fmt} (its header cannot be read)", "damaged")
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif", b"ftyphevc"):
        return Refused("HEIC/AVIF photos are not supported (export them as JPEG)", "unsupported")
    if data[:4] in ZIP_MAGIC:
        return Refused("a zip archive with another name (name it .zip to have it opened)", "not an image")
    if data.startswith(b"%PDF"):
        return Refused("not an image (a PDF document)", "not an image")
    head = data[:2048]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and sum(ch.isprintable() or ch.isspace() for ch in text) >= 0.95 * len(text):
        return Refused("not an image (looks like text)", "not an image")
    return Refused("not an image in a supported format (PNG, JPEG, WebP, BMP, GIF, TIFF)", "not an image")


def _to_8bit(im: Image.Image) -> Image.Image:
    """16/32-bit integer or float grey to 8-bit L by scaling (PIL's convert would clip at 255)."""
    a = np.asarray(im).astype(np.float64)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if im.mode.startswith("I;16") or (im.mode == "I" and 255 < hi <= 65535 and lo >= 0):
        a = a / 257.0
    elif im.mode == "F" and lo >= 0 and hi <= 1:
        a = a * 255.0
    elif lo < 0 or hi > 255:
        a = (a - lo) * (255.0 / max(hi - lo, 1e-12))  # unknown range: stretch what is there
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


def _to_mode(im: Image.Image, config: IngestConfig) -> Image.Image:
    """Any decoded mode to L or RGB; transparency is composited on the background colour."""
    if im.mode in _HIGH_BIT:
        im = _to_8bit(im)
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("LA", "La", "PA", "RGBa", "RGBA") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (*map(int, config.background), 255))
        im = Image.alpha_composite(bg, rgba)
    target = "L" if config.channels == 1 else "RGB"
    try:
        return im if im.mode == target else im.convert(target)
    except ValueError:  # e.g. LAB or multi-band TIFFs that Pillow cannot convert
        raise Refused(f"unsupported colour mode {im.mode}", "unsupported") from None


def _square(im: Image.Image, size: int) -> np.ndarray:
    """Centre square resized with Lanczos (reduce() first when much bigger): (S, S) or (S, S, 3)."""
    w, h = im.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    gap = 3.0 if side >= 3 * size else None  # integer reduce() first: much faster, same quality
    return np.asarray(im.resize((size, size), Image.Resampling.LANCZOS, box=box, reducing_gap=gap))


def _bomb(error: Image.DecompressionBombError) -> Refused:
    """PIL refused the size itself (over twice its own limit): say how many pixels it saw."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    seen = f"{int(found.group(1)):,} px" if found else "over PIL's own limit"
    return Refused(f"too many pixels ({seen}; a decompression bomb?)", "too many pixels")


def _open(data: bytes, config: IngestConfig) -> Image.Image:
    """Open by content with only the allowed decoders; header-only checks of size come first."""
    try:
        im = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise _not_an_image(data) from None
    except Image.DecompressionBombError as e:
        raise _bomb(e) from None
    except Exception as e:  # e.g. a PNG text chunk that inflates past Pillow's cap (ValueError)
        fmt = _magic_format(data) or "file"
        log.debug("Pillow refused a header", exc_info=True)
        raise Refused(f"damaged {fmt} ({type(e).__name__}: {e})", "damaged") from None
    w, h = im.size
    if w * h > config.max_pixels:
        im.close()
        raise Refused(f"too many pixels ({w}x{h}; the limit is {config.max_pixels:,})", "too many pixels")
    if min(w, h) < config.min_side:
        im.close()
        raise Refused(f"too small ({w}x{h}; at least {config.min_side} px per side)", "too small")
    return im


def decode(data: bytes, config: IngestConfig) -> tuple[np.ndarray, tuple[int, int]]:
    """One file's bytes to a (S, S[, 3]) uint8 array and the source size; raises `Refused`."""
    im = _open(data, config)
    with im:
        fmt, size = im.format, im.size
        try:
            if fmt in ("JPEG", "MPO"):  # DCT-domain downscale: decodes big photos several times faster
                im.draft("L" if config.channels == 1 else None, (config.image_size, config.image_size))
            im.load()
            ImageOps.exif_transpose(im, in_place=True)  # no copy when there is nothing to turn
            return _square(_to_mode(im, config), config.image_size), size
        except Image.DecompressionBombError as e:
            raise _bomb(e) from None
        except (OSError, SyntaxError, EOFError, ValueError) as e:
            kind = "truncated" if "truncated" in str(e) or isinstance(e, EOFError) else "damaged"
            raise Refused(f"{kind} {fmt} ({e})", "damaged") from None
        except Exception as e:  # a hostile file must not stop the others: report it, log the trace
            log.warning("unexpected error decoding a %s file", fmt, exc_info=True)
            raise Refused(f"damaged {fmt} ({type(e).__name__}: {e})", "damaged") from None


@dataclass
class _State:
    """Running totals while ingesting; `pixels` is (max entries, C, S, S), pages touched as filled."""

    bytes_left: int
    pixels: np.ndarray
    names: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    by_bytes: dict[bytes, str] = field(default_factory=dict)
    by_pixels: dict[bytes, str] = field(default_factory=dict)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    duplicates: int = 0

    def skip(self, name: str, reason: str, kind: str) -> None:
        self.skipped.append(Skipped(name, reason, kind))
        self.duplicates += kind == "duplicate"


def _take(entry: Entry, state: _State, config: IngestConfig) -> None:
    """Read, hash, decode and keep one entry, or record why not (raises `Refused`)."""
    limit = min(config.max_upload_bytes, state.bytes_left)
    if entry.size > limit:
        raise Refused(
            f"not read: the data set's total size limit ({config.max_total_bytes / 1e9:g} GB) is reached", "limit"
        )
    data = entry.read(limit)
    state.bytes_left -= len(data)
    if not data:
        raise Refused("empty file", "empty")
    digest = hashlib.blake2b(data, digest_size=16).digest()
    if digest in state.by_bytes:
        raise Refused(f"duplicate of {state.by_bytes[digest]}", "duplicate")
    state.by_bytes[digest] = entry.name
    array, size = decode(data, config)
    pixels = hashlib.blake2b(array.tobytes(), digest_size=16).digest()
    if pixels in state.by_pixels:
        raise Refused(f"duplicate of {state.by_pixels[pixels]}", "duplicate")
    state.by_pixels[pixels] = entry.name
    s = config.image_size
    state.pixels[len(state.names)] = array.reshape(s, s, config.channels).transpose(2, 0, 1)
    state.names.append(entry.name)
    state.sizes.append(size)


def _report(state: _State, config: IngestConfig, seconds: float) -> IngestReport:
    """The report from the running totals."""
    by_area = sorted(state.sizes, key=lambda s: (s[0] * s[1], s))
    upscaled = sum(min(s) < config.image_size for s in state.sizes)
    return IngestReport(
        used=len(state.names),
        skipped=state.skipped,
        duplicates=state.duplicates,
        min_size=by_area[0] if by_area else None,
        max_size=by_area[-1] if by_area else None,
        upscaled=upscaled,
        seconds=seconds,
    )


def ingest(
    sources: Sequence[str | Path],
    work_dir: Path,
    config: IngestConfig = IngestConfig(),
    progress: Callable[[int, int], None] | None = None,
) -> ImageDataset:
    """Turn folders, files and zips into an `ImageDataset`; writes only `work_dir/ingest-report.json`."""
    started = time.perf_counter()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    collector = Collector(config.limits(), skip=work_dir)
    try:
        for source in sources:
            collector.add_source(Path(source))
        # np.empty only reserves: memory is committed as images are written, and no copy is made at the end
        shape = (len(collector.entries), config.channels, config.image_size, config.image_size)
        state = _State(bytes_left=config.max_total_bytes, pixels=np.empty(shape, np.uint8))
        state.skipped += [Skipped(r.name, r.reason, r.kind) for r in collector.refused]
        total = len(collector.entries)
        for done, entry in enumerate(collector.entries, 1):
            try:
                _take(entry, state, config)
            except Refused as r:
                state.skip(entry.name, r.reason, r.kind)
            if progress is not None:
                progress(done, total)
    finally:
        collector.close()
    report = _report(state, config, time.perf_counter() - started)
    _write_report(work_dir / "ingest-report.json", report, state.names)
    log.info("ingest: %d used, %d skipped in %.2f s", report.used, len(report.skipped), report.seconds)
    if not state.names:
        raise IngestError(report)
    return ImageDataset(torch.from_numpy(state.pixels[: len(state.names)]), state.names, report)


def _write_report(path: Path, report: IngestReport, names: list[str]) -> None:
    """Keep the report beside the session's other files (the CLI and the UI can show it later)."""
    path.write_text(json.dumps({"report": asdict(report), "used": names}, indent=1), encoding="utf-8")
