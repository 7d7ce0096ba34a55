"""One-off tool: reassemble public-domain paintings from Debian's `gcompris-qt-data` puzzle pieces.

GCompris ships 22 paintings cut into puzzle pieces inside a Qt resource archive,
`/usr/share/gcompris-qt/rcc/paintings.rcc`. This tool reads that archive (format `qres`,
versions 1 to 3), takes each painting's `board/*.qml` (title, width, height, pieces with
normalised centre coordinates) and pastes the `image/*.webp` pieces at their centres.

    apt-get download gcompris-qt-data && dpkg -x gcompris-qt-data_*.deb /tmp/gc
    python tools/gcompris_paintings.py /tmp/gc/usr/share/gcompris-qt/rcc/paintings.rcc --list
    python tools/gcompris_paintings.py RCC --only board3 board7 --size 512 --out /tmp/paintings

Not used by the app at run time; it made the paintings in assets/ (see assets/CREDITS.md).
"""

from __future__ import annotations

import argparse
import io
import re
import struct
import zlib
from pathlib import Path

from PIL import Image

FLAG_COMPRESSED, FLAG_DIRECTORY, FLAG_ZSTD = 0x01, 0x02, 0x04


class RccArchive:
    """A read-only view of a Qt binary resource file (`rcc -binary`)."""

    def __init__(self, blob: bytes) -> None:
        if blob[:4] != b"qres":
            raise ValueError("not a Qt resource archive (no 'qres' header)")
        self.blob = blob
        self.version, self.tree, self.data, self.names = struct.unpack(">IIII", blob[4:20])
        self.node_size = 14 if self.version == 1 else 22  # v2+ adds a 64-bit mtime per node

    def _name(self, offset: int) -> str:
        length = struct.unpack(">H", self.blob[self.names + offset:self.names + offset + 2])[0]
        start = self.names + offset + 6  # skip length (2) and hash (4)
        return self.blob[start:start + 2 * length].decode("utf-16-be")

    def _node(self, index: int) -> tuple[str, int, int, int]:
        pos = self.tree + index * self.node_size
        name_off, flags = struct.unpack(">IH", self.blob[pos:pos + 6])
        a, b = struct.unpack(">II", self.blob[pos + 6:pos + 14])
        return (self._name(name_off) if index else ""), flags, a, b

    def _read(self, data_offset: int, flags: int) -> bytes:
        pos = self.data + data_offset
        size = struct.unpack(">I", self.blob[pos:pos + 4])[0]
        raw = self.blob[pos + 4:pos + 4 + size]
        if flags & FLAG_ZSTD:
            raise ValueError("zstd-compressed entries are not supported")
        return zlib.decompress(raw[4:]) if flags & FLAG_COMPRESSED else raw  # 4-byte length, then zlib

    def files(self, index: int = 0, prefix: str = "") -> dict[str, bytes]:
        """Every file in the archive, path -> bytes."""
        name, flags, a, b = self._node(index)
        path = f"{prefix}/{name}" if name else prefix
        if flags & FLAG_DIRECTORY:
            out: dict[str, bytes] = {}
            for child in range(b, b + a):  # a = child count, b = first child index
                out.update(self.files(child, path))
            return out
        return {path.lstrip("/"): self._read(b, flags)}  # b = data offset (a = locale)


def parse_board(qml: str) -> dict:
    """Title, background size and pieces [(image path, x, y)] of one `board/*.qml`."""
    title = re.search(r'instruction:\s*qsTr\("([^"]*)"\)', qml)
    width = int(re.search(r'"width"\s*:\s*(\d+)', qml).group(1))
    height = int(re.search(r'"height"\s*:\s*(\d+)', qml).group(1))
    pieces = re.findall(r'"pixmapfile"\s*:\s*"([^"]+\.webp)",\s*"x"\s*:\s*"([\d.]+)",\s*"y"\s*:\s*"([\d.]+)"', qml)
    return {"title": title.group(1) if title else "", "width": width, "height": height,
            "pieces": [(img, float(x), float(y)) for img, x, y in pieces]}


def assemble(board: dict, images: dict[str, bytes]) -> Image.Image:
    """Paste every piece at its normalised centre on the background, then crop to the pieces."""
    canvas = Image.new("RGBA", (board["width"], board["height"]), (255, 255, 255, 0))
    for name, x, y in board["pieces"]:
        key = next(k for k in images if k.endswith("/" + name))
        piece = Image.open(io.BytesIO(images[key])).convert("RGBA")
        left = round(x * board["width"] - piece.width / 2)
        top = round(y * board["height"] - piece.height / 2)
        canvas.alpha_composite(piece, (left, top))
    # the background (bg.svg) is larger than the painting: keep only what the pieces cover
    return canvas.crop(canvas.getchannel("A").getbbox()).convert("RGB")


def main() -> None:
    """List the paintings, or reassemble some of them as JPEGs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rcc", type=Path)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--only", nargs="*", help="board names (e.g. board3)")
    parser.add_argument("--size", type=int, default=512, help="longest side of the output")
    parser.add_argument("--out", type=Path, default=Path("paintings"))
    args = parser.parse_args()
    files = RccArchive(args.rcc.read_bytes()).files()
    boards = {Path(k).stem.split("_")[0]: parse_board(v.decode("utf-8")) for k, v in files.items()
              if "/board/" in k and k.endswith(".qml")}
    images = {k: v for k, v in files.items() if k.endswith(".webp")}
    for name in sorted(boards, key=lambda n: int(re.sub(r"\D", "", n) or 0)):
        board = boards[name]
        print(f"{name:10s} {board['width']}x{board['height']} {len(board['pieces'])} pieces  {board['title']}")
        if args.list or (args.only and name not in args.only):
            continue
        picture = assemble(board, images)
        picture.thumbnail((args.size, args.size), Image.LANCZOS)
        args.out.mkdir(parents=True, exist_ok=True)
        picture.save(args.out / f"{name}.jpg", quality=90)


if __name__ == "__main__":
    main()
