"""Magenta's arbitrary-style painter (Ghiasi et al. 2017), the feed-forward half of instant style.

A small image-to-image network (Johnson et al. 2016's layout, as slimmed down for Magenta's int8
TFLite release): `contract` (9x9 then two stride-2 3x3 convolutions: 3 -> 8 -> 16 -> 32 channels,
BatchNorm folded in, ReLU), five `residual` blocks of 32 channels, and `expand` (nearest x2
upsampling + 3x3 convolution twice, then a 9x9 convolution to RGB and a sigmoid). Every
convolution pads by reflection. Every residual and expand convolution is followed by a
*StyleNorm*: an instance norm whose per-channel scale and offset are 1x1 convolutions of the
100-number style vector (style/predictor.py); that is how one network paints in any style.

It is fully convolutional: any size whose sides are multiples of 4 (two stride-2 layers, two x2
upsamplings) comes out at that size; the original graph fixed 384x384. With fake quantisation on,
every activation of the int8 graph is rounded as the original rounds it (style/quant.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from style.fastconv import PaddedConv
from style.quant import FakeQuant, set_fake_quant


class StyleNorm(nn.Module):
    """Conditional instance norm: (x - mean) / sqrt(var + eps) * gamma(s) + beta(s), s the style vector.

    In the original graph every intermediate is quantised to int8 (the mean, the squared
    deviations, the variance, the reciprocal square root, the folded scale and shift, ...);
    those pairs are reproduced here one by one, named after the TensorFlow ops.
    """

    def __init__(self, channels: int, style_dim: int = 100, eps: float = 1e-5, quantised_output: bool = False) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Conv2d(style_dim, channels, 1)  # TensorFlow StyleNorm/Conv_1: the scale
        self.beta = nn.Conv2d(style_dim, channels, 1)  # StyleNorm/Conv: the offset
        self.gamma_act, self.beta_act = FakeQuant(), FakeQuant()
        self.mean_act, self.sq_diff_act = FakeQuant(), FakeQuant()
        self.var_act, self.var_eps_act = FakeQuant(), FakeQuant()
        self.rsqrt_act, self.scale_act, self.mean_scale_act = FakeQuant(), FakeQuant(), FakeQuant()
        self.shift_act, self.scaled_act = FakeQuant(), FakeQuant()
        self.out_act = FakeQuant() if quantised_output else None

    def params(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, style_dim) style vectors -> per-channel (gamma, beta), each (B, C)."""
        s = style[:, :, None, None]
        return self.gamma_act(self.gamma(s)).flatten(1), self.beta_act(self.beta(s)).flatten(1)

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        if not self.mean_act.enabled:  # plain float: one fused kernel
            if gamma.shape[0] == 1:
                return F.instance_norm(x, weight=gamma[0], bias=beta[0], eps=self.eps)
            return F.instance_norm(x, eps=self.eps) * gamma[:, :, None, None] + beta[:, :, None, None]
        return self.quantised(x, gamma[:, :, None, None], beta[:, :, None, None])

    def quantised(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """The int8 graph's arithmetic, op by op (TensorFlow's batchnorm formula: x*scale + shift)."""
        mean = self.mean_act(x.mean(dim=(2, 3), keepdim=True))
        var = self.var_act(self.sq_diff_act((x - mean).square()).mean(dim=(2, 3), keepdim=True))
        inv_std = self.rsqrt_act(torch.rsqrt(self.var_eps_act(var + self.eps)))
        scale = self.scale_act(inv_std * gamma)
        shift = self.shift_act(beta - self.mean_scale_act(mean * scale))
        out = self.scaled_act(x * scale) + shift
        return self.out_act(out) if self.out_act is not None else out


class ContractConv(nn.Module):
    """Reflect pad, convolution (BatchNorm folded in), ReLU, quantised output."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv = PaddedConv(cin, cout, kernel, stride)
        self.act = FakeQuant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(F.relu(self.conv(x, exact=self.act.enabled)))


class NormConv(nn.Module):
    """[Nearest x2 upsampling,] reflect pad, convolution, StyleNorm, then ReLU / sigmoid / nothing."""

    def __init__(self, cin: int, cout: int, kernel: int, activation: str | None, upsample: bool = False,
                 style_dim: int = 100, eps: float = 1e-5) -> None:
        super().__init__()
        self.conv = PaddedConv(cin, cout, kernel, upsample=upsample)
        self.activation = activation
        self.conv_act = FakeQuant()
        # The graph quantises the norm's output itself only where no activation follows it directly.
        self.norm = StyleNorm(cout, style_dim, eps, quantised_output=activation != "relu")
        self.act = FakeQuant() if activation else None

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv_act(self.conv(x, exact=self.conv_act.enabled)), gamma, beta)
        if self.activation == "relu":
            return self.act(F.relu(x))
        return self.act(torch.sigmoid(x)) if self.activation == "sigmoid" else x


class ResidualBlock(nn.Module):
    """x + norm(conv(relu(norm(conv(x))))): two 3x3 StyleNorm convolutions, no ReLU after the sum."""

    def __init__(self, channels: int, style_dim: int = 100, eps: float = 1e-5) -> None:
        super().__init__()
        self.conv1 = NormConv(channels, channels, 3, "relu", style_dim=style_dim, eps=eps)
        self.conv2 = NormConv(channels, channels, 3, None, style_dim=style_dim, eps=eps)
        self.add_act = FakeQuant()

    def forward(self, x: torch.Tensor, params: list) -> torch.Tensor:
        h = self.conv2(self.conv1(x, *params[0]), *params[1])
        return self.add_act(x + h)


class Painter(nn.Module):
    """(B, 3, H, W) photo in 0..1 + style parameters -> (B, 3, H, W) painting in 0..1 (H, W multiples of 4)."""

    def __init__(self, style_dim: int = 100, contract=(8, 16, 32), residual_blocks: int = 5, expand=(16, 8),
                 eps: float = 1e-5, multiple: int = 4) -> None:
        super().__init__()
        c1, c2, c3 = contract
        e1, e2 = expand
        self.multiple = multiple
        self.input_act, self.style_act = FakeQuant(), FakeQuant()
        self.contract = nn.ModuleDict({"conv1": ContractConv(3, c1, 9, 1), "conv2": ContractConv(c1, c2, 3, 2),
                                       "conv3": ContractConv(c2, c3, 3, 2)})
        self.residual = nn.ModuleList(ResidualBlock(c3, style_dim, eps) for _ in range(residual_blocks))
        self.expand = nn.ModuleDict({"conv1": NormConv(c3, e1, 3, "relu", True, style_dim, eps),
                                     "conv2": NormConv(e1, e2, 3, "relu", True, style_dim, eps),
                                     "conv3": NormConv(e2, 3, 9, "sigmoid", False, style_dim, eps)})

    def prepare(self) -> Painter:
        """Make the fast convolutions' kernels (call after loading weights); returns self."""
        for module in self.modules():
            if isinstance(module, PaddedConv):
                module.prepare()
        return self

    def norms(self) -> list[StyleNorm]:
        """Every StyleNorm, in the order forward() consumes their parameters."""
        convs = [c for block in self.residual for c in (block.conv1, block.conv2)] + list(self.expand.values())
        return [conv.norm for conv in convs]

    def style_params(self, style: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(B, style_dim) style vectors -> every StyleNorm's (gamma, beta): compute once per style."""
        style = self.style_act(style)
        return [norm.params(style) for norm in self.norms()]

    def forward(self, image: torch.Tensor, params: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        if image.shape[-1] % self.multiple or image.shape[-2] % self.multiple:
            raise ValueError(f"The painter needs sides that are multiples of {self.multiple}, "
                             f"got {tuple(image.shape[-2:])}.")
        h = self.input_act(image)
        for conv in self.contract.values():
            h = conv(h)
        for i, block in enumerate(self.residual):
            h = block(h, params[2 * i: 2 * i + 2])
        offset = 2 * len(self.residual)
        for i, conv in enumerate(self.expand.values()):
            h = conv(h, *params[offset + i])
        return h


def load_painter(folder: Path, fake_quant: bool = False) -> Painter:
    """A Painter from `folder`/config.json + model.safetensors (CPU, eval, no grad)."""
    from safetensors.torch import load_file

    config = json.loads((Path(folder) / "config.json").read_text())
    model = Painter(config["style_dim"], tuple(config["contract"]), config["residual_blocks"],
                    tuple(config["expand"]), config["eps"], config["multiple"])
    model.load_state_dict(load_file(str(Path(folder) / "model.safetensors")), strict=True)
    return set_fake_quant(model.eval().requires_grad_(False), fake_quant).prepare()
