"""Sample grids and the model card written next to an exported generator."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image
from torchvision.utils import make_grid


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (N, C, H, W) -> uint8 0..255 on the CPU."""
    return images.detach().float().add(1).mul(127.5).round().clamp(0, 255).to("cpu", torch.uint8)


def grid_uint8(images: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """Images in [-1, 1] -> one uint8 grid (3 or 1, H, W), 2 px white gaps, square by default."""
    nrow = nrow or max(1, math.ceil(math.sqrt(images.shape[0])))
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=2, pad_value=1.0)
    if images.shape[1] == 1:
        grid = grid[:1]  # make_grid repeats grey to 3 channels; keep one
    return to_uint8(grid[None])[0]


def grid_to_pil(grid: torch.Tensor) -> Image.Image:
    """A uint8 (C, H, W) grid -> PIL image (L or RGB)."""
    array = grid.permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def model_card(settings: dict, dataset_size: int, steps: int, sample_file: str, data_credit: str,
               licence: str) -> str:
    """Markdown model card: what was trained on what, how long, with which settings."""
    rows = "\n".join(f"| `{k}` | `{v}` |" for k, v in settings.items())
    credit = data_credit or "The images were supplied by the person who trained this model."
    return f"""---
library_name: gan-atelier
license: {licence}
tags: [dcgan, gan, image-generation]
---
# DCGAN generator trained with GAN Atelier

A DCGAN generator (Radford et al. 2015) trained with GAN Atelier's trainer on **{dataset_size} images**
for **{steps} steps**. These are the weights of the exponential moving average (EMA) of the generator,
which gives smoother samples than the raw generator.

![samples from fixed noise]({sample_file})

## Use

```python
import torch
from gan.explorer.model import load_generator  # GAN Atelier
G = load_generator("path/to/this/folder")  # or Generator.from_pretrained("user/repo")
images = G(torch.randn(16, G.cfg.nz))      # (16, nc, S, S) in [-1, 1]
```

## Training data

{credit}

## Settings

| setting | value |
|---|---|
{rows}
"""


def write_card(directory: Path, card: str, grid: torch.Tensor, sample_file: str = "samples.png") -> None:
    """Write README.md (replacing the mixin's generic card) and the sample grid beside it."""
    grid_to_pil(grid).save(directory / sample_file)
    (directory / "README.md").write_text(card, encoding="utf-8")
