"""Reference: how the lesson's notebooks (and most tutorials) make a latent interpolation GIF.

One `G(z)` call per frame (batch of 1) under `torch.no_grad()`, linear interpolation,
`torchvision.utils` to a PIL image, then Pillow writes the GIF. Written by us for the benchmark.
"""

from __future__ import annotations

import io

import torch
import torchvision.transforms.functional as TF
from PIL import Image


def interpolation_gif(G: torch.nn.Module, z0: torch.Tensor, z1: torch.Tensor, frames: int, size: int) -> bytes:
    """frames images from z0 to z1, each upscaled to size px, as a looping GIF."""
    images = []
    with torch.no_grad():
        for i in range(frames):
            t = i / (frames - 1)
            z = (1 - t) * z0 + t * z1
            x = G(z.view(1, -1, 1, 1))[0]
            pil = TF.to_pil_image((x * 0.5 + 0.5).clamp(0, 1))
            images.append(pil.resize((size, size), Image.NEAREST))
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=83, loop=0)
    return buf.getvalue()
