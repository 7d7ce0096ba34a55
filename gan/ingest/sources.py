"""Safe enumeration of uploaded files: folders, loose files and zip archives, read in place.

`gan.ingest.data.ingest` turns what the visitor uploads into a flat list of `Entry` objects (a name the
visitor knows and a bounded reader) plus `Refusal`s for what must not be read at all. Zip members
are read straight out of the archive, never extracted, so no member can write anywhere; members
that would escape the archive (`../`, absolute paths, drive letters), symlinks, encrypted and
nested archives are still refused by name so that the visitor learns why they are missing.

Zip bombs are bounded three ways: the central directory's member count is read from the end record
before `zipfile` parses it, each member's declared size and compression ratio are checked before
reading, and the bytes really inflated are counted while reading (headers lie).
"""

import logging
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_CHUNK = 1 << 20
_S_IFLNK = 0o120000


class Refused(Exception):
    """One file (or a whole archive) is not read; `reason` is a sentence for the visitor."""

    def __init__(self, reason: str, kind: str):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class Limits:
    """The caps that enumeration and reading enforce (a view of `IngestConfig`)."""

    max_files: int
    max_total_bytes: int
    max_upload_bytes: int
    max_ratio: float


@dataclass(frozen=True)
class Entry:
    """One candidate file: its user-visible name, declared size and a reader bounded by `limit`."""

    name: str
    size: int
    read: Callable[[int], bytes]


@dataclass(frozen=True)
class Refusal:
    """A file or archive refused during enumeration."""

    name: str
    reason: str
    kind: str


def _mb(n: int) -> str:
    """Bytes as a short human size."""
    return f"{n / 1e6:,.1f} MB" if n < 1e9 else f"{n / 1e9:,.2f} GB"


def read_file(path: Path, follow: bool) -> Callable[[int], bytes]:
    """A reader for a regular file that refuses to return more than `limit` bytes."""
    # O_NOFOLLOW: a walked file swapped for a symlink after its check is still refused
    # POSIX flags; on Windows they are absent and the lstat check alone guards
    no_follow = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | (0 if follow else no_follow)

    def read(limit: int) -> bytes:
        try:
            with open(os.open(path, flags), "rb") as f:
                data = f.read(limit + 1)
        except OSError as e:
            raise Refused(f"cannot be read ({e.strerror or e})", "unreadable") from None
        if len(data) > limit:
            raise Refused(f"file grew beyond its size limit ({_mb(limit)}) while reading", "too big")
        return data

    return read


def _declared_members(path: Path) -> int | None:
    """Member count from the zip's end record (zip64 aware), read without parsing the directory."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        tail_len = min(size, 22 + 65535)
        f.seek(size - tail_len)
        tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return None
    count = struct.unpack("<H", tail[at + 10 : at + 12])[0]
    if count == 0xFFFF and at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07":
        # zip64: the locator points at the zip64 end record, whose field at +32 is the real count
        offset = struct.unpack("<Q", tail[at - 12 : at - 4])[0]
        if offset + 40 > size:
            return None  # a lying locator: zipfile's own parse decides, bounded by the count check after it
        with open(path, "rb") as f:
            f.seek(offset)
            record = f.read(40)
        if record[:4] == b"PK\x06\x06" and len(record) == 40:
            return struct.unpack("<Q", record[32:40])[0]
    return count


def _too_many(name: str, members: int, files_left: int, limits: Limits) -> Refusal:
    """The refusal of a whole archive that holds more members than may still be read."""
    room = f"the limit is {limits.max_files:,} files"
    if files_left < limits.max_files:
        room = f"only {files_left:,} more fit under the limit of {limits.max_files:,} files"
    return Refusal(name, f"too many members ({members:,}; {room})", "limit")


def _member_problem(info: zipfile.ZipInfo) -> Refusal | None:
    """Why a zip member must not be read, or None when it may be."""
    raw = info.filename.replace("\\", "/")
    parts = PurePosixPath(raw).parts
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":") or ".." in parts:
        return Refusal(info.filename, "path escapes the archive", "unsafe archive member")
    if (info.external_attr >> 16) & 0o170000 == _S_IFLNK:
        return Refusal(info.filename, "symlink refused", "unsafe archive member")
    if info.flag_bits & 0x1:
        return Refusal(info.filename, "encrypted member (password-protected zips are not supported)", "unsupported")
    if raw.startswith("__MACOSX/") or PurePosixPath(raw).name.startswith("._"):
        return Refusal(info.filename, "macOS metadata, not an image", "macOS metadata")
    if raw.lower().endswith((".zip", ".jar", ".7z", ".rar", ".tar", ".gz", ".tgz")):
        return Refusal(info.filename, "nested archive ignored (upload it separately)", "nested archive")
    return None


def _inflate(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """Inflate one member in chunks, counting real bytes: stop as soon as `cap` is passed."""
    chunks, total = [], 0
    with zf.open(info) as f:
        while chunk := f.read(min(_CHUNK, cap + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:
                raise Refused(
                    f"inflates beyond its limit ({_mb(cap)}) while reading; its header said {_mb(info.file_size)}",
                    "zip bomb",
                )
    return b"".join(chunks)


def _zip_reader(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits) -> Callable[[int], bytes]:
    """A reader that counts the bytes really inflated and stops at the size or ratio cap."""

    def read(limit: int) -> bytes:
        cap = min(limit, int(max(info.compress_size, 1) * limits.max_ratio))
        try:
            data = _inflate(zf, info, cap)
        except Refused:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError) as e:
            raise Refused(f"damaged archive member ({e})", "damaged") from None
        except Exception as e:  # a hostile member must not stop the others: report it, log the trace
            log.warning("unexpected error reading %s from a zip", info.filename, exc_info=True)
            raise Refused(f"damaged archive member ({type(e).__name__}: {e})", "damaged") from None
        if data[:4] in ZIP_MAGIC:
            raise Refused("nested archive ignored (upload it separately)", "nested archive")
        return data

    return read


def _zip_entries(
    path: Path, prefix: str, limits: Limits, files_left: int
) -> tuple[list[Entry], list[Refusal], zipfile.ZipFile | None]:
    """Members of one zip as entries; the archive is refused whole when it declares too many."""
    declared = _declared_members(path)
    if declared is not None and declared > files_left:
        return [], [_too_many(prefix, declared, files_left, limits)], None
    try:
        zf = zipfile.ZipFile(path)
    except Exception as e:  # BadZipFile, NotImplementedError, OverflowError...: any is a refusal
        log.debug("zipfile refused %s", path, exc_info=True)
        return [], [Refusal(prefix, f"not a valid zip archive ({e})", "damaged")], None
    infos = [i for i in zf.infolist() if not i.is_dir()]
    if len(infos) > files_left:
        zf.close()
        return [], [_too_many(prefix, len(infos), files_left, limits)], None
    entries, refused = [], []
    for info in infos:
        problem = _member_problem(info) or _member_size_problem(info, limits)
        if problem:
            refused.append(problem)
        else:
            entries.append(Entry(info.filename, info.file_size, _zip_reader(zf, info, limits)))
    return entries, refused, zf


def _member_size_problem(info: zipfile.ZipInfo, limits: Limits) -> Refusal | None:
    """Declared size and compression ratio checks for one member."""
    if info.file_size > limits.max_upload_bytes:
        return Refusal(
            info.filename,
            f"too big ({_mb(info.file_size)}; the limit is {_mb(limits.max_upload_bytes)} per file)",
            "too big",
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > 0 and ratio > limits.max_ratio:
        return Refusal(
            info.filename,
            f"compression ratio {ratio:,.0f}:1 is over the limit of {limits.max_ratio:g}:1 (zip bomb?)",
            "zip bomb",
        )
    return None


def walk(root: Path, skip: Path | None = None) -> Iterator[tuple[Path, str]]:
    """Every non-directory under `root`, sorted, without following symlinks; names are relative.

    `skip` (ingest's own work_dir) is left out, so a second ingest does not read the first's output.
    """
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if skip is None or (here / d).resolve() != skip)
        for name in sorted(filenames) + [d for d in dirnames if (here / d).is_symlink()]:
            yield here / name, (here / name).relative_to(root).as_posix()
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]


def checked_size(path: Path, limits: Limits) -> int:
    """The size of a regular file that may be read; raises `Refused` (symlink, special, too big)."""
    st = path.lstat()  # one stat per file: on slow disks it costs as much as decoding a small PNG
    if stat.S_ISLNK(st.st_mode):
        raise Refused("symlink refused", "unsafe file")
    if not stat.S_ISREG(st.st_mode):
        raise Refused("not a regular file", "unsafe file")
    if st.st_size > limits.max_upload_bytes:
        raise Refused(f"too big ({_mb(st.st_size)}; the limit is {_mb(limits.max_upload_bytes)} per file)", "too big")
    return st.st_size


class Collector:
    """Gathers entries and refusals from many sources; holds open zips until `close()`."""

    def __init__(self, limits: Limits, skip: Path | None = None):
        self.limits = limits
        self.skip = skip.resolve() if skip is not None else None
        self.entries: list[Entry] = []
        self.refused: list[Refusal] = []
        self._zips: list[zipfile.ZipFile] = []

    def add_source(self, source: Path) -> None:
        """Add a directory, a file or a zip given by the visitor (a top-level path is followed)."""
        if not source.exists():
            self.refused.append(Refusal(source.name, "file not found", "missing"))
        elif source.is_dir():
            for path, rel in walk(source, self.skip):
                self._add_file(path, rel)
        else:
            self._add_file(source, source.name, top_level=True)

    def _add_file(self, path: Path, name: str, top_level: bool = False) -> None:
        """Add one file on disk, or record why it cannot be read."""
        try:
            self._add_checked(path, name, top_level)
        except Refused as r:
            self.refused.append(Refusal(name, r.reason, r.kind))
        except OSError as e:  # vanished or unreadable between the walk and now
            self.refused.append(Refusal(name, f"cannot be read ({e.strerror or e})", "unreadable"))

    def _add_checked(self, path: Path, name: str, top_level: bool) -> None:
        """A `.zip` opens as an archive (checked by content), anything else is an image candidate."""
        size = checked_size(path.resolve() if top_level else path, self.limits)
        if self._files_left() <= 0:
            self._note_full(name)
        elif path.suffix.lower() == ".zip":
            entries, refused, zf = _zip_entries(path, name, self.limits, self._files_left())
            self.entries += entries
            self.refused += refused
            if zf is not None:
                self._zips.append(zf)
        else:
            self.entries.append(Entry(name, size, read_file(path, follow=top_level)))

    def _files_left(self) -> int:
        return self.limits.max_files - len(self.entries)

    def _note_full(self, name: str) -> None:
        """Refuse everything past the file-count cap, reported once per file name."""
        self.refused.append(
            Refusal(name, f"not read: the limit of {self.limits.max_files:,} files is reached", "limit")
        )

    def close(self) -> None:
        """Close the archives opened while collecting."""
        for zf in self._zips:
            zf.close()
        self._zips.clear()
