"""Ingest against a corpus of hostile and awkward files, all built here in tmp_path."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan.ingest.data import ImageDataset, IngestConfig, IngestError, Skipped, ingest

RED, BLUE = (255, 0, 0), (0, 0, 255)
PIL_LIMIT = Image.MAX_IMAGE_PIXELS


# ---------- builders ----------


def noise(h: int, w: int, seed: int) -> np.ndarray:
    """Random RGB pixels: every image distinct, PNGs incompressible enough to truncate."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save(img: Image.Image, path: Path, **kw) -> Path:
    img.save(path, **kw)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(path: Path, w: int, h: int) -> Path:
    """A valid 1-bit PNG of w x h zero pixels: tiny on disk, huge once decoded."""
    comp, parts, row = zlib.compressobj(9), [], b"\x00" * (1 + (w + 7) // 8)
    for _ in range(h):
        parts.append(comp.compress(row))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    body = png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(parts)) + png_chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **kw)
    return buf.getvalue()


def exif_rotated_jpeg(path: Path) -> Path:
    """80x40 stored, left half red / right half blue, EXIF orientation 6 (display rotated 90 deg CW)."""
    a = np.zeros((40, 80, 3), np.uint8)
    a[:, :40] = RED
    a[:, 40:] = BLUE
    exif = Image.Exif()
    exif[0x0112] = 6
    path.write_bytes(jpeg_bytes(Image.fromarray(a), exif=exif.tobytes()))
    return path


def zip_with(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return path


def symlink_member(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (0o120777 << 16) | 0x20  # S_IFLNK | rwx, as Info-ZIP stores a symlink
    info.create_system = 3
    return info


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def lying_zip(path: Path) -> Path:
    """A member whose headers claim 1,000 bytes while its data inflate to 1 MB."""
    zip_with(path, [("liar.png", b"\x00" * 1_000_000)])
    raw = bytearray(path.read_bytes())
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed-size field
        at = raw.find(sig)
        raw[at + off : at + off + 4] = struct.pack("<I", 1000)
    path.write_bytes(bytes(raw))
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A folder with one file per hostile or awkward category, plus a few good images."""
    d = tmp_path / "upload"
    d.mkdir()
    for i in range(3):
        save(Image.fromarray(noise(48, 48, i)), d / f"good{i}.png")
    (d / "notes.png").write_text("These are my holiday notes, not a picture.\n" * 5)
    (d / "empty.png").write_bytes(b"")
    big = png(noise(64, 64, 10))
    (d / "cut.png").write_bytes(big[: len(big) // 2])
    photo = jpeg_bytes(Image.fromarray(noise(64, 64, 11)))
    (d / "cut.jpg").write_bytes(photo[: len(photo) // 2])
    save(Image.new("RGB", (1, 1), RED), d / "dot.png")
    bomb_png(d / "bomb.png", 8000, 8000)  # 64 Mpx: over our 40 Mpx cap, under PIL's own limit
    bomb_png(d / "hugebomb.png", 20000, 20000)  # 400 Mpx: PIL's DecompressionBombError
    save(Image.fromarray(noise(48, 48, 0)), d / "good0_copy.png")  # same bytes as good0.png
    save(Image.fromarray(noise(48, 48, 1)), d / "good1_again.bmp")  # same pixels, other format
    save(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), d / "cmyk.jpg", quality=95)
    grad = (np.linspace(0, 65535, 32 * 32).reshape(32, 32)).astype(np.uint16)
    save(Image.fromarray(grad), d / "deep16.png")
    pal = Image.new("P", (32, 32), 1)
    pal.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    pal.paste(0, (0, 0, 16, 32))  # left half index 0 = transparent
    save(pal, d / "pal.gif", transparency=0)
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., :3] = BLUE
    rgba[:, 16:, 3] = 255  # left half fully transparent
    save(Image.fromarray(rgba, "RGBA"), d / "alpha.png")
    exif_rotated_jpeg(d / "rotated.jpg")
    save(Image.fromarray(noise(40, 40, 20)), d / "pic.webp", lossless=True)
    save(Image.fromarray(noise(40, 40, 21)), d / "pic.tif")
    (d / "sub").mkdir()
    save(Image.fromarray(noise(40, 40, 22)), d / "sub" / "deep.png")
    os.symlink(d / "good2.png", d / "link.png")
    os.symlink("/etc", d / "etc_link")
    zip_with(
        d / "nested.zip",
        [("inner.zip", zip_with(tmp_path / "inner.zip", [("x.png", png(noise(40, 40, 30)))]).read_bytes())],
    )
    (tmp_path / "inner.zip").unlink()
    return d


def by_name(skipped: list[Skipped]) -> dict[str, str]:
    return {s.name: s.reason for s in skipped}


def tree(root: Path, exclude: Path | None = None) -> dict[str, tuple[int, int]]:
    """Every path under root (not following links) with size and mtime, work_dir left out."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if exclude is None or not p.is_relative_to(exclude):
                st = p.lstat()  # a folder's own mtime changes when work_dir is made in it: not compared
                out[str(p)] = (0, 0) if p.is_dir() and not p.is_symlink() else (st.st_size, st.st_mtime_ns)
    return out


# ---------- tests ----------


def test_config_validates():
    for bad in (
        dict(image_size=48),
        dict(channels=2),
        dict(max_files=0),
        dict(max_ratio=0.5),
        dict(background=(0, 0, 300)),
    ):
        with pytest.raises(ValueError):
            IngestConfig(**bad)


def test_hostile_folder(corpus: Path, tmp_path: Path):
    work = tmp_path / "session" / "work"
    work.parent.mkdir()  # the app's session folder exists; ingest makes only work_dir inside it
    before = tree(tmp_path.parent, exclude=work)
    seen = []
    ds = ingest([corpus], work, progress=lambda done, total: seen.append((done, total)))
    assert tree(tmp_path.parent, exclude=work) == before  # nothing written outside work_dir
    assert [p.name for p in work.iterdir()] == ["ingest-report.json"]
    reasons = by_name(ds.report.skipped)
    assert reasons["notes.png"] == "not an image (looks like text)"
    assert reasons["empty.png"] == "empty file"
    assert reasons["cut.png"].startswith(("truncated PNG", "damaged PNG"))
    assert reasons["cut.jpg"].startswith("truncated JPEG")
    assert reasons["dot.png"].startswith("too small (1x1")
    assert reasons["bomb.png"].startswith("too many pixels (8000x8000")
    assert reasons["hugebomb.png"].startswith("too many pixels")
    assert reasons["good0_copy.png"] == "duplicate of good0.png"
    assert reasons["good1_again.bmp"] == "duplicate of good1.png"
    assert reasons["link.png"] == "symlink refused"
    assert reasons["etc_link"] == "symlink refused"
    assert reasons["inner.zip"].startswith("nested archive ignored")  # a member of nested.zip
    assert ds.report.duplicates == 2
    assert sorted(ds.names) == sorted(
        [
            "good0.png",
            "good1.png",
            "good2.png",
            "cmyk.jpg",
            "deep16.png",
            "pal.gif",
            "alpha.png",
            "rotated.jpg",
            "pic.webp",
            "pic.tif",
            "sub/deep.png",
        ]
    )
    assert ds.images.shape == (11, 3, 64, 64) and ds.images.dtype == torch.uint8
    x = ds.as_float("cpu")
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1 and x.min() < -0.9 and x.max() > 0.9
    assert seen[-1][0] == seen[-1][1] and len(seen) == seen[-1][1]
    assert ds.report.min_size == (32, 32) and ds.report.max_size == (80, 40)
    summary = ds.report.summary()
    assert "11 images ready" in summary and "notes.png" in summary


def pixel(ds: ImageDataset, name: str, y: int, x: int) -> tuple[int, ...]:
    return tuple(int(v) for v in ds.images[ds.names.index(name), :, y, x])


def test_conversions(corpus: Path, tmp_path: Path):
    ds = ingest([corpus], tmp_path / "work")
    r, g, b = pixel(ds, "cmyk.jpg", 32, 32)
    assert r > 230 and g < 30 and b < 30  # CMYK (0,255,255,0) is red
    deep = ds.images[ds.names.index("deep16.png")]
    assert (deep[0] == deep[1]).all() and (deep[1] == deep[2]).all()  # grey stays grey in RGB
    assert deep.min() < 20 and deep.max() > 235 and len(deep.unique()) > 50  # scaled, not clipped at 255
    assert pixel(ds, "pal.gif", 32, 4) == (255, 255, 255)  # transparent -> white background
    assert pixel(ds, "pal.gif", 32, 60) == (0, 200, 0)
    assert pixel(ds, "alpha.png", 32, 4) == (255, 255, 255)
    assert pixel(ds, "alpha.png", 32, 60) == BLUE


def test_exif_orientation_applied(tmp_path: Path):
    ds = ingest([exif_rotated_jpeg(tmp_path / "rotated.jpg")], tmp_path / "work")
    top, bottom = pixel(ds, "rotated.jpg", 4, 32), pixel(ds, "rotated.jpg", 60, 32)
    assert top[0] > 200 and top[2] < 60  # displayed upright: red on top
    assert bottom[2] > 200 and bottom[0] < 60  # blue below (unrotated it would be left/right)


def test_channels(tmp_path: Path):
    grey = save(Image.fromarray(np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1)), "L"), tmp_path / "grey.png")
    colour = save(Image.new("RGB", (32, 32), (0, 200, 0)), tmp_path / "green.png")
    rgb = ingest([grey], tmp_path / "w3", IngestConfig(image_size=32, channels=3)).images
    assert rgb.shape == (1, 3, 32, 32) and (rgb[0, 0] == rgb[0, 2]).all()
    mono = ingest([colour], tmp_path / "w1", IngestConfig(image_size=32, channels=1))
    assert mono.images.shape == (1, 1, 32, 32)
    assert abs(int(mono.images[0, 0, 16, 16]) - round(0.587 * 200)) <= 2  # ITU-R 601 luma of green
    assert mono.preview_grid().mode == "L"


def test_background_colour(tmp_path: Path):
    a = np.zeros((32, 32, 4), np.uint8)
    ds = ingest(
        [save(Image.fromarray(a, "RGBA"), tmp_path / "clear.png")],
        tmp_path / "w",
        IngestConfig(background=(10, 20, 30)),
    )
    assert pixel(ds, "clear.png", 10, 10) == (10, 20, 30)


def test_hostile_zips(tmp_path: Path):
    good = png(noise(40, 40, 1))
    z = zip_with(
        tmp_path / "up.zip",
        [
            ("ok/a.png", good),
            ("../escape.png", png(noise(40, 40, 2))),
            ("/abs/evil.png", png(noise(40, 40, 3))),
            ("C:/win/evil.png", png(noise(40, 40, 4))),
            ("..\\back.png", png(noise(40, 40, 5))),
            (symlink_member("link.png", "../../etc/passwd"), b"../../etc/passwd"),
            ("zeros.png", b"\x00" * 5_000_000),  # ratio ~1000:1
            ("inner.zip", zip_with(tmp_path / "in.zip", [("b.png", good)]).read_bytes()),
            ("ok/dup.png", good),
            ("notes.txt", b"hello " * 50),
        ],
    )
    liar = lying_zip(tmp_path / "liar.zip")
    work = tmp_path / "work"
    before = tree(tmp_path, exclude=work)
    ds = ingest([z, liar], work)
    assert tree(tmp_path, exclude=work) == before
    assert not (tmp_path / "escape.png").exists() and not Path("/abs/evil.png").exists()
    reasons = by_name(ds.report.skipped)
    for name in ("../escape.png", "/abs/evil.png", "C:/win/evil.png", "..\\back.png"):
        assert reasons[name] == "path escapes the archive", name
    assert reasons["link.png"] == "symlink refused"
    assert reasons["zeros.png"].startswith("compression ratio") and "zip bomb" in reasons["zeros.png"]
    assert reasons["inner.zip"].startswith("nested archive ignored")
    assert reasons["ok/dup.png"] == "duplicate of ok/a.png"
    assert reasons["notes.txt"] == "not an image (looks like text)"
    assert reasons["liar.png"].startswith("damaged archive member")  # inflated past its header: CRC fails
    assert ds.names == ["ok/a.png"]


def test_zip_caps(tmp_path: Path):
    many = zip_with(tmp_path / "many.zip", [(f"p{i}.png", png(noise(16, 16, i))) for i in range(30)])
    few = zip_with(tmp_path / "few.zip", [(f"q{i}.png", png(noise(16, 16, 100 + i))) for i in range(5)])
    ds = ingest([many, few], tmp_path / "work", IngestConfig(max_files=20))
    assert by_name(ds.report.skipped)["many.zip"] == "too many members (30; the limit is 20 files)"
    assert len(ds) == 5
    small = IngestConfig(max_upload_bytes=2000, max_total_bytes=4000)
    big = save(Image.fromarray(noise(64, 64, 7)), tmp_path / "big.png")
    imgs = [save(Image.fromarray(noise(16, 16, 50 + i)), tmp_path / f"s{i}.png") for i in range(6)]
    ds = ingest([big, *imgs], tmp_path / "work2", small)
    reasons = by_name(ds.report.skipped)
    assert reasons["big.png"].startswith("too big")
    assert any("total size limit" in r for r in reasons.values())
    assert 0 < len(ds) < 6


def test_formats_and_gif_first_frame(tmp_path: Path):
    frames = [Image.new("RGB", (32, 32), c) for c in (RED, BLUE)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    save(Image.fromarray(noise(32, 32, 1)), tmp_path / "x.bmp")
    (tmp_path / "heic.png").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    zip_with(tmp_path / "archive.png", [("a.png", png(noise(16, 16, 3)))])  # a zip that pretends
    ds = ingest(
        [
            tmp_path / "anim.gif",
            tmp_path / "x.bmp",
            tmp_path / "heic.png",
            tmp_path / "gone.png",
            tmp_path / "archive.png",
        ],
        tmp_path / "w",
    )
    assert pixel(ds, "anim.gif", 16, 16) == RED
    reasons = by_name(ds.report.skipped)
    assert reasons["heic.png"].startswith("HEIC")
    assert reasons["archive.png"].startswith("a zip archive with another name")
    assert reasons["gone.png"] == "file not found"


def test_nothing_usable_raises(tmp_path: Path):
    (tmp_path / "a.png").write_text("not a picture")
    (tmp_path / "b.png").write_bytes(b"")
    with pytest.raises(IngestError) as err:
        ingest([tmp_path / "a.png", tmp_path / "b.png"], tmp_path / "work")
    assert "a.png" in str(err.value) and "empty file" in str(err.value)
    assert len(err.value.report.skipped) == 2 and err.value.report.used == 0


def test_preview_grid(tmp_path: Path):
    for i in range(10):
        save(Image.fromarray(noise(40, 60, i)), tmp_path / f"{i}.png")
    ds = ingest([tmp_path], tmp_path / "work", IngestConfig(image_size=32))
    grid = ds.preview_grid(9)
    assert grid.mode == "RGB" and grid.size == (3 * 34 + 2, 3 * 34 + 2)
    first = np.asarray(grid)[2:34, 2:34]
    assert (first == ds.images[0].permute(1, 2, 0).numpy()).all()


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL warns at open; we refuse
def test_bomb_between_pil_warning_and_error(tmp_path: Path):
    bomb_png(tmp_path / "warnbomb.png", 10000, 10000)  # 100 Mpx: PIL only warns, our 40 Mpx cap refuses
    save(Image.fromarray(noise(16, 16, 1)), tmp_path / "ok.png")
    ds = ingest([tmp_path / "warnbomb.png", tmp_path / "ok.png"], tmp_path / "w")
    assert by_name(ds.report.skipped)["warnbomb.png"].startswith("too many pixels (10000x10000")
    assert Image.MAX_IMAGE_PIXELS == PIL_LIMIT  # PIL's process-wide limit untouched


def test_folder_caps_and_special_files(tmp_path: Path):
    d = tmp_path / "up"
    d.mkdir()
    for i in range(6):
        save(Image.fromarray(noise(16, 16, i)), d / f"{i}.png")
    os.mkfifo(d / "pipe.png")  # reading it would block forever
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    ds = ingest([tmp_path / "broken.zip", d], tmp_path / "w", IngestConfig(max_files=4))
    reasons = by_name(ds.report.skipped)
    assert reasons["pipe.png"] == "not a regular file"
    assert reasons["4.png"] == reasons["5.png"] == "not read: the limit of 4 files is reached"
    assert reasons["broken.zip"].startswith("not a valid zip archive")
    assert ds.names == ["0.png", "1.png", "2.png", "3.png"]


def test_high_bit_depth_and_grey_alpha(tmp_path: Path):
    ramp = np.linspace(0, 4095, 32 * 32).reshape(32, 32)
    save(Image.fromarray(ramp.astype(np.int32), "I"), tmp_path / "i32.tif")
    save(Image.fromarray((ramp / 4095).astype(np.float32), "F"), tmp_path / "float.tif")
    la = Image.new("LA", (32, 32), (0, 0))
    la.paste((0, 255), (16, 0, 32, 32))  # right half opaque black, left half transparent
    save(la, tmp_path / "la.png")
    ds = ingest([tmp_path], tmp_path / "w", IngestConfig(image_size=32, channels=1))
    for name in ("i32.tif", "float.tif"):
        img = ds.images[ds.names.index(name), 0].int()
        assert img.min() <= 2 and img.max() >= 10 and len(img.unique()) > 8, name  # scaled, not clipped
    assert ds.images[ds.names.index("float.tif"), 0].max() >= 250  # 0..1 floats span the full range
    assert pixel(ds, "la.png", 16, 4) == (255,) and pixel(ds, "la.png", 16, 28) == (0,)


def test_header_tricks(tmp_path: Path):
    good = png(noise(16, 16, 1))
    text_bomb = good[:33] + png_chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"\x00" * 3_000_000)) + good[33:]
    (tmp_path / "textbomb.png").write_bytes(text_bomb)  # a text chunk inflating past Pillow's cap
    with zipfile.ZipFile(tmp_path / "z64.zip", "w") as zf:  # > 65,535 members: count lies in the zip64 record
        for i in range(70_000):
            zf.writestr(str(i), b"")
    mac = zip_with(tmp_path / "mac.zip", [("a.png", good), ("__MACOSX/._a.png", b"\x00\x05\x16\x07" + b"\x00" * 60)])
    ds = ingest([tmp_path / "z64.zip", tmp_path / "textbomb.png", mac], tmp_path / "w")
    reasons = by_name(ds.report.skipped)
    assert reasons["textbomb.png"].startswith("damaged PNG")
    assert reasons["z64.zip"] == "too many members (70,000; the limit is 20,000 files)"
    assert reasons["__MACOSX/._a.png"] == "macOS metadata, not an image"
    assert ds.names == ["a.png"]


def test_file_vanishing_mid_ingest_is_reported(tmp_path: Path):
    d = tmp_path / "up"
    d.mkdir()
    for name in ("a.png", "b.png"):
        save(Image.fromarray(noise(16, 16, len(name) + ord(name[0]))), d / name)
    gone = lambda done, total: (d / "b.png").unlink(missing_ok=True)  # noqa: E731
    ds = ingest([d], tmp_path / "work", progress=gone)
    assert by_name(ds.report.skipped)["b.png"] == "cannot be read (No such file or directory)"
    assert ds.names == ["a.png"]


def test_zip_reader_counts_real_bytes(tmp_path: Path):
    from gan.ingest.sources import Collector, Refused

    z = zip_with(tmp_path / "z.zip", [("big.bmp", np.random.default_rng(0).bytes(300_000))])
    collector = Collector(IngestConfig().limits())
    collector.add_source(z)
    try:
        (entry,) = collector.entries
        with pytest.raises(Refused, match="inflates beyond its limit"):
            entry.read(100_000)  # stops after ~100 kB inflated, whatever the headers claim
        assert len(entry.read(300_000)) == 300_000
    finally:
        collector.close()


def test_work_dir_inside_the_folder_is_not_read(tmp_path: Path):
    save(Image.fromarray(noise(16, 16, 1)), tmp_path / "a.png")
    first = ingest([tmp_path], tmp_path / "work")
    again = ingest([tmp_path], tmp_path / "work")
    assert (tmp_path / "work" / "ingest-report.json").exists()
    assert first.report.skipped == again.report.skipped == [] and again.names == ["a.png"]
