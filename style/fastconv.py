"""Exact rewrites of the painters' slowest convolutions into cheaper ones (same sums, other order).

The feed-forward painters spend most of their time at full resolution in convolutions with few
channels (8 -> 3 with a 9x9 kernel, 16 -> 8 after an upsampling), where a CPU's vector units sit
mostly idle. Two identities move that work to half resolution with 4x the channels:

- nearest x2 upsampling, reflect pad 1, 3x3 convolution  ==  replicate pad 1 at low resolution, one
  3x3 convolution with 4 * cout outputs (one per output phase, the kernel rows and columns that
  land on the same low-resolution pixel summed), pixel shuffle. No upsampled tensor is made.
  (Reflect padding an upsampled image repeats the border pixel: replicate padding before it.)
- a stride-1 k x k convolution  ==  pixel unshuffle (space to depth), a ceil(k/2)+1 square
  convolution with 4 * cin inputs and 4 * cout outputs, pixel shuffle.

Both give the direct convolution's result to float rounding (tests/test_instant.py checks).
`PaddedConv` is the convolution layer of both painters that picks the rewrite where it pays.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def subpixel_weight(weight: torch.Tensor) -> torch.Tensor:
    """(cout, cin, 3, 3) -> (4 * cout, cin, 3, 3): one 3x3 kernel per output phase (a, b) at low res.

    Output row 2i + a reads upsampled rows 2i + a - 1 .. 2i + a + 1, i.e. low-res rows
    i - 1, i, i (a = 0) or i, i, i + 1 (a = 1): kernel rows that hit the same low-res row add up.
    """
    rows = torch.zeros(2, 3, 3, dtype=weight.dtype, device=weight.device)  # [phase, low-res offset + 1, kernel row]
    rows[0, 0, 0] = rows[0, 1, 1] = rows[0, 1, 2] = 1
    rows[1, 1, 0] = rows[1, 1, 1] = rows[1, 2, 2] = 1
    phased = torch.einsum("auk,bvl,oikl->oabiuv", rows, rows, weight)  # (cout, 2, 2, cin, 3, 3)
    return phased.reshape(weight.shape[0] * 4, weight.shape[1], 3, 3).contiguous()


def upsample_conv(x: torch.Tensor, phased: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """conv3x3(reflect_pad1(upsample_nearest2x(x))) from subpixel_weight's kernels."""
    bias4 = None if bias is None else bias.repeat_interleave(4)
    return F.pixel_shuffle(F.conv2d(F.pad(x, [1] * 4, mode="replicate"), phased, bias4), 2)


def s2d_weight(weight: torch.Tensor) -> torch.Tensor:
    """(cout, cin, k, k) -> (4 * cout, 4 * cin, k // 2 + 1, k // 2 + 1) for s2d_conv (k odd).

    Output (2y + a, 2x + b) sums w[k, j] * x[2y + a + k, 2x + b + j]; with a + k = 2m + p that is
    input phase (p, q) at low-res offset (m, n), so each (a, b, p, q) gets the kernel taps that fit.
    """
    cout, cin, size, _ = weight.shape
    half = size // 2 + 1
    out = torch.zeros(cout, 2, 2, cin, 2, 2, half, half, dtype=weight.dtype, device=weight.device)
    for a in range(2):
        for b in range(2):
            for k in range(size):
                for j in range(size):
                    out[:, a, b, :, (a + k) % 2, (b + j) % 2, (a + k) // 2, (b + j) // 2] = weight[:, :, k, j]
    return out.reshape(cout * 4, cin * 4, half, half).contiguous()


def s2d_conv(padded: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A valid (unpadded) stride-1 k x k convolution of `padded` (even sides) from s2d_weight's kernels."""
    bias4 = None if bias is None else bias.repeat_interleave(4)
    return F.pixel_shuffle(F.conv2d(F.pixel_unshuffle(padded, 2), packed, bias4), 2)


class PaddedConv(nn.Conv2d):
    """[Nearest x2 upsampling,] reflect pad, convolution: directly, or through style/fastconv.py's
    exact rewrites once prepare() has made their kernels (upsampled: subpixel; 9x9 to RGB: space
    to depth). Times are one CPU thread here, the painter at 384 px."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, upsample: bool = False,
                 bias: bool = True) -> None:
        super().__init__(cin, cout, kernel, stride, bias=bias)
        self.pad, self.upsample = kernel // 2, upsample
        self.register_buffer("fast_weight", torch.empty(0), persistent=False)

    @torch.no_grad()
    def prepare(self) -> None:
        """Build the rewritten kernel where one pays (after the weights are loaded)."""
        if self.upsample:
            self.fast_weight = subpixel_weight(self.weight)
        elif self.kernel_size[0] == 9 and self.stride[0] == 1 and self.out_channels < 8:
            # Only with few outputs (8 -> 3: 15 -> 8 ms at 384 px); 3 -> 8 is faster direct (6.1 vs 6.8 ms).
            self.fast_weight = s2d_weight(self.weight)

    def forward(self, x: torch.Tensor, exact: bool = False) -> torch.Tensor:
        """exact=True keeps the graph's own order of operations (for the fake-quantised path)."""
        if self.fast_weight.numel() and not exact:
            if self.upsample:
                return upsample_conv(x, self.fast_weight, self.bias)
            return s2d_conv(F.pad(x, [self.pad] * 4, mode="reflect"), self.fast_weight, self.bias)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return super().forward(F.pad(x, [self.pad] * 4, mode="reflect"))
