"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The same random, differentiable augmentations are applied to real AND fake images before D sees
them, so D cannot memorise a small data set and G still gets gradients through the augmentation.
A re-creation of the authors' PyTorch `DiffAugment_pytorch.py` (policy "color,translation,cutout"),
with an explicit `torch.Generator` so that runs are reproducible for a seed. Images are in [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    """'color,translation' -> ('color', 'translation'); raise ValueError on unknown names."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"Unknown DiffAugment policy {', '.join(unknown)}; choose from {', '.join(POLICIES)}.")
    return names


def _rand(x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """One uniform number per image, shaped (N, 1, 1, 1)."""
    return torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device, generator=gen)


def rand_color(x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5), per image."""
    x = x + (_rand(x, gen) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, gen) * 2) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_rand(x, gen) + 0.5) + mean


def rand_translation(x: torch.Tensor, gen: torch.Generator | None = None, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size, filling with zeros (the paper's choice)."""
    n, _, h, w = x.shape
    sx, sy = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device, generator=gen)
    ty = torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device, generator=gen)
    gb, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                                torch.arange(w, device=x.device), indexing="ij")
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])  # a zero border that the clamped indices fall into
    return padded.permute(0, 2, 3, 1)[gb, gx, gy].permute(0, 3, 1, 2).contiguous(memory_format=_fmt(x))


def rand_cutout(x: torch.Tensor, gen: torch.Generator | None = None, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random square of `ratio` x size in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device, generator=gen)
    oy = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device, generator=gen)
    gb, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(ch, device=x.device),
                                torch.arange(cw, device=x.device), indexing="ij")
    gx = torch.clamp(gx + ox - ch // 2, 0, h - 1)
    gy = torch.clamp(gy + oy - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[gb, gx, gy] = 0
    return x * mask.unsqueeze(1)


def _fmt(x: torch.Tensor) -> torch.memory_format:
    """Keep channels_last inputs channels_last (CUDA path)."""
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and x.size(1) > 1 \
        else torch.contiguous_format


_FUNCS = {"color": rand_color, "translation": rand_translation, "cutout": rand_cutout}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...] | str, gen: torch.Generator | None = None) -> torch.Tensor:
    """Apply the policy's augmentations in order (color, translation, cutout); '' = identity."""
    names = parse_policy(policy) if isinstance(policy, str) else policy
    for name in names:
        x = _FUNCS[name](x, gen)
    return x
