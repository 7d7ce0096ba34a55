"""GAN losses on D's logits: non-saturating BCE (Goodfellow et al. 2014) and hinge (Lim & Ye 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_loss(kind: str, d_real: torch.Tensor, d_fake: torch.Tensor, real_target: float) -> torch.Tensor:
    """D's loss on logits: BCE (with a possibly smoothed real target) or hinge."""
    if kind == "hinge":
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    return (F.binary_cross_entropy_with_logits(d_real, torch.full_like(d_real, real_target))
            + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))


def g_loss(kind: str, d_fake: torch.Tensor) -> torch.Tensor:
    """G's loss: non-saturating BCE (-log D(G(z))) or hinge (-D(G(z)))."""
    if kind == "hinge":
        return -d_fake.mean()
    return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
