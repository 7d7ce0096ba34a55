"""Colour helpers: PIL <-> tensors, and YIQ luminance for colour-preserving transfer (Gatys et al. 2016).

Colour preservation optimises only the luminance Y and puts the content's chroma (I, Q) back at
the end, so the result keeps the photo's colours and takes the painting's strokes and texture.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

# NTSC YIQ; rows: Y, I, Q.
RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                           [0.595716, -0.274453, -0.321263],
                           [0.211456, -0.522591, 0.311135]])
YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> (1, 3, H, W) float32 in 0..1."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (1, 1, H, W) in 0..1 -> RGB PIL image."""
    x = image.detach().float().clamp(0, 1)[0]
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    array = (x.permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(array)


def to_yiq(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> YIQ."""
    return torch.einsum("ij,bjhw->bihw", RGB_TO_YIQ.to(rgb), rgb)


def to_rgb(yiq: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) YIQ -> RGB."""
    return torch.einsum("ij,bjhw->bihw", YIQ_TO_RGB.to(yiq), yiq)


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 1, H, W) luminance Y."""
    return to_yiq(rgb)[:, :1]


def merge_luminance(y: torch.Tensor, content_rgb: torch.Tensor) -> torch.Tensor:
    """Luminance of `y` (1 or 3 channels) with the chroma (I, Q) of `content_rgb`; RGB in 0..1."""
    y = luminance(y) if y.shape[1] == 3 else y
    yiq = to_yiq(content_rgb)
    return to_rgb(torch.cat([y, yiq[:, 1:]], dim=1)).clamp(0, 1)
