"""Magenta's style predictor (Ghiasi et al. 2017): a painting -> a 100-number style vector.

A MobileNetV2 trunk (Sandler et al. 2018; width 1.0, BatchNorm folded into the convolutions, ReLU6,
TensorFlow 'SAME' padding) whose 1280 pooled features a 1x1 convolution turns into the style
vector that conditions the painter's instance norms (style/painter.py). The original takes a
256x256 NHWC image in 0..1; this one takes (B, 3, H, W) RGB in 0..1 (256 px is what it was trained
on). Layer names follow the TensorFlow graph: stem = MobilenetV2/Conv, blocks.N =
expanded_conv_N, head = Conv_1, bottleneck = mobilenet_conv/Conv.

Self-contained on purpose (torch, safetensors and style/quant.py only): `features()` gives the
1280-d pooled MobileNetV2 activations, usable as a feature network elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from style.quant import FakeQuant, set_fake_quant

# MobileNetV2's inverted residual stages: (expansion t, output channels c, repeats n, first stride s).
MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))


def same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow's 'SAME' padding: out = ceil(in / stride), the odd pixel at the bottom/right."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):  # F.pad wants (left, right, top, bottom)
        total = max((-(-n // stride) - 1) * stride + kernel - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class ConvAct(nn.Module):
    """A convolution (its BatchNorm folded in), ReLU6 or nothing, and its output's quantisation."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1,
                 relu6: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, groups=groups)
        self.kernel, self.stride, self.relu6 = kernel, stride, relu6
        self.act = FakeQuant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel == 1 and self.conv.groups == 1:
            # A 1x1 convolution is a matrix product over channels: on a channels-last tensor one
            # GEMM without the reorders PyTorch's 1x1 conv path makes (2x faster here on a CPU).
            weight = self.conv.weight.view(self.conv.out_channels, -1)
            x = F.linear(x.permute(0, 2, 3, 1), weight, self.conv.bias).permute(0, 3, 1, 2)
        elif self.stride == 1:  # symmetric 'SAME' padding: the convolution pads by itself
            x = F.conv2d(x, self.conv.weight, self.conv.bias, 1, self.kernel // 2, 1, self.conv.groups)
        elif self.kernel == 3 and self.stride == 2 and x.shape[-1] % 2 == 0 == x.shape[-2] % 2:
            # 'SAME' on even sides pads only the bottom/right: the same sums as a 4x4 kernel with a zero
            # first row and column and symmetric padding 1, which spares a padded copy of x (exact).
            weight = F.pad(self.conv.weight, (1, 0, 1, 0))
            x = F.conv2d(x, weight, self.conv.bias, 2, 1, 1, self.conv.groups)
        else:
            x = self.conv(same_pad(x, self.kernel, self.stride))
        return self.act(x.clamp_(0.0, 6.0) if self.relu6 else x)  # ReLU6 in place: x is our own


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, linear 1x1 project, + input when shapes allow."""

    def __init__(self, cin: int, cout: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.expand = ConvAct(cin, hidden) if expansion != 1 else None
        self.depthwise = ConvAct(hidden, hidden, 3, stride, groups=hidden)
        self.project = ConvAct(hidden, cout, relu6=False)
        self.residual = stride == 1 and cin == cout
        self.add_act = FakeQuant() if self.residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.expand(x) if self.expand is not None else x
        h = self.project(self.depthwise(h))
        return self.add_act(x + h) if self.residual else h


class StylePredictor(nn.Module):
    """(B, 3, H, W) RGB in 0..1 -> (B, style_dim) style vectors."""

    def __init__(self, style_dim: int = 100, stem: int = 32, head: int = 1280,
                 stages=MOBILENET_V2, image_size: int = 256) -> None:
        super().__init__()
        self.image_size = image_size
        self.input_act = FakeQuant()
        self.stem = ConvAct(3, stem, 3, 2)
        blocks, cin = [], stem
        for expansion, cout, repeats, stride in stages:
            for i in range(repeats):
                blocks.append(InvertedResidual(cin, cout, expansion, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvAct(cin, head)
        self.pool_act = FakeQuant()
        self.bottleneck = nn.Conv2d(head, style_dim, 1)
        self.out_act = FakeQuant()

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """The pooled MobileNetV2 features (B, head) of images in 0..1."""
        image = image.contiguous(memory_format=torch.channels_last)  # NHWC all the way (see ConvAct)
        h = self.head(self.blocks(self.stem(self.input_act(image))))
        return self.pool_act(h.mean(dim=(2, 3), keepdim=True)).flatten(1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        pooled = self.features(image)[:, :, None, None]
        return self.out_act(self.bottleneck(pooled)).flatten(1)


def load_predictor(folder: Path, fake_quant: bool = False) -> StylePredictor:
    """A StylePredictor from `folder`/config.json + model.safetensors (CPU, eval, no grad)."""
    from safetensors.torch import load_file

    config = json.loads((Path(folder) / "config.json").read_text())
    model = StylePredictor(config["style_dim"], config["stem"], config["head"],
                           [tuple(s) for s in config["stages"]], config.get("image_size", 256))
    model.load_state_dict(load_file(str(Path(folder) / "model.safetensors")), strict=True)
    return set_fake_quant(model.eval().requires_grad_(False), fake_quant)
