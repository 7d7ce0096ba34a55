"""Ingest speed: `gan.ingest.data.ingest` against the PyTorch DCGAN example's way of reading a folder.

The reference is how pytorch/examples `dcgan/main.py` reads an image folder: torchvision
`ImageFolder` with `Resize(S)`, `CenterCrop(S)`, `ToTensor()`, `Normalize(0.5, 0.5)`, here for one
pass over every image (what ingest does once). Ours also checks caps, hashes for duplicates,
handles EXIF/alpha/16-bit and keeps uint8. Two synthetic folders, each read by both, one after the
other in this process (best of three alternating runs): small PNGs (like the emoji sets) and larger
JPEG photos (where draft mode and reduce() matter).

    python -m bench.ingest [--quick]
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision.datasets as dset  # imported here, not inside the timed call
import torchvision.transforms as transforms
from PIL import Image

from gan.ingest.data import IngestConfig, ingest


def _smooth(rng: np.random.Generator, h: int, w: int) -> Image.Image:
    """A smooth random picture (compresses like real icons/photos, unlike white noise)."""
    small = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    return small.resize((w, h), Image.Resampling.BICUBIC)


def make_folder(root: Path, count: int, size: tuple[int, int], fmt: str, seed: int = 0) -> Path:
    """`count` distinct images of `size` (w, h) in root/class0/ (ImageFolder wants a class folder)."""
    rng = np.random.default_rng(seed)
    folder = root / "class0"
    folder.mkdir(parents=True)
    for i in range(count):
        _smooth(rng, size[1], size[0]).save(
            folder / f"{i:05d}.{fmt.lower()}", fmt, **({"quality": 90} if fmt == "JPEG" else {})
        )
    return root


def reference(root: Path, size: int) -> torch.Tensor:
    """pytorch/examples dcgan: ImageFolder + Resize + CenterCrop + ToTensor + Normalize, one pass."""
    data = dset.ImageFolder(
        root=str(root),
        transform=transforms.Compose(
            [
                transforms.Resize(size),
                transforms.CenterCrop(size),
                transforms.ToTensor(),
                transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
            ]
        ),
    )
    return torch.stack([data[i][0] for i in range(len(data))])


def _rate(count: int, fn, *args) -> float:
    """Images per second of one call `fn(*args)`."""
    t0 = time.perf_counter()
    fn(*args)
    return count / (time.perf_counter() - t0)


def run(quick: bool = False) -> list[dict]:
    """Rows for `python -m bench`: ours vs reference images/s on two folders."""
    torch.set_num_threads(2)
    cases = [
        ("small PNGs 64 px", 300 if quick else 3000, (64, 64), "PNG"),
        ("JPEG photos 1024x768", 30 if quick else 300, (1024, 768), "JPEG"),
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for i, (what, count, wh, fmt) in enumerate(cases):
            root = make_folder(Path(tmp) / f"set{i}", count, wh, fmt, seed=i)
            ref, ours = 0.0, 0.0
            for _ in range(1 if quick else 3):  # alternate, keep each one's best: the machine is shared
                ref = max(ref, _rate(count, reference, root, 64))
                ours = max(ours, _rate(count, ingest, [root], Path(tmp) / f"work{i}", IngestConfig(image_size=64)))
            rows.append(
                {
                    "what": f"ingest {count} {what} -> 64 px",
                    "ours": round(ours, 1),
                    "reference": round(ref, 1),
                    "unit": "images/s",
                    "ratio": round(ours / ref, 2),
                    "device": "cpu",
                }
            )
    return rows


def main() -> None:
    """Print the rows as a small table."""
    for r in run(quick="--quick" in sys.argv):
        print(f"{r['what']:<45} ours {r['ours']:>8} {r['unit']}  reference {r['reference']:>8}  ratio {r['ratio']}x")


if __name__ == "__main__":
    main()
