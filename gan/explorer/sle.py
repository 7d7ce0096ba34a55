"""Skip-layer excitation (Liu et al. 2021, "Towards Faster and Stabilized GAN Training for High-fidelity
Few-shot Image Synthesis", FastGAN, eq. 1), as an option of the DCGAN generator (`arch="sle"`).

A low-resolution feature map gates the channels of one two stages later (64 px: 4x4 -> 16x16 and
8x8 -> 32x32): y = x_high * sigmoid(conv1x1(leaky_relu(conv4x4(avg_pool_to_4x4(x_low))))).
It gives the gradient a short path to the early layers and the image a global style signal; on the
118 emoji faces it lowered the KID after 500 steps from 1934 to 903 (docs/train.md). FastGAN's other parts (GLU blocks,
noise injection, the self-supervised decoder in D) are not used.
"""

from __future__ import annotations

import torch
from torch import nn


class SLE(nn.Module):
    """x_high (N, C_high, H, W) gated per channel by x_low (N, C_low, h, w)."""

    def __init__(self, low_channels: int, high_channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Conv2d(low_channels, high_channels, 4, 1, 0, bias=False),
                                  nn.LeakyReLU(0.1, True), nn.Conv2d(high_channels, high_channels, 1, 1, 0, bias=False),
                                  nn.Sigmoid())

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return high * self.main(low)


def excitations(main: nn.Sequential) -> tuple[list[int], nn.ModuleList]:
    """For a DCGAN generator's `main`: the indices of its ReLUs (one per resolution) and one SLE per
    ReLU from the third on, fed by the ReLU two resolutions earlier."""
    taps = [i for i, m in enumerate(main) if isinstance(m, nn.ReLU)]
    widths = [main[i - 1].num_features for i in taps]  # each ReLU follows a BatchNorm2d
    return taps, nn.ModuleList(SLE(widths[i], widths[i + 2]) for i in range(len(widths) - 2))


def forward_with_excitation(main: nn.Sequential, taps: list[int], excite: nn.ModuleList,
                            z: torch.Tensor) -> torch.Tensor:
    """`main(z)` with the SLE gates applied after each tapped ReLU from the third on."""
    h, outs = z, []
    for i, module in enumerate(main):
        h = module(h)
        if i in taps:
            if len(outs) >= 2:
                h = excite[len(outs) - 2](outs[-2], h)
            outs.append(h)
    return h
