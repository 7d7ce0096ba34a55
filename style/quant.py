"""The activations' int8 quantise-dequantise pairs of a TFLite-trained graph, as torch modules.

Magenta's arbitrary-style networks were trained with quantisation-aware training and shipped as
int8 TFLite graphs: every activation is rounded to one of 256 levels (a scale and a zero point per
tensor) between layers. `FakeQuant` reproduces one such pair with
`torch.fake_quantize_per_tensor_affine` (round half to even, saturate to [-128, 127], as ONNX's
QuantizeLinear does); switched off, it passes its input through and the network runs in plain float.
"""

from __future__ import annotations

import torch
from torch import nn

INT8_MIN, INT8_MAX = -128, 127


class FakeQuant(nn.Module):
    """One activation's quantise-dequantise pair: x -> (clamp(round(x / scale) + zp) - zp) * scale."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("zero_point", torch.zeros((), dtype=torch.int32))
        self.enabled = False  # set_fake_quant() turns every pair of a network on or off

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, INT8_MIN, INT8_MAX)

    def extra_repr(self) -> str:
        return f"scale={float(self.scale):.5g}, zero_point={int(self.zero_point)}, enabled={self.enabled}"


def set_fake_quant(model: nn.Module, enabled: bool) -> nn.Module:
    """Turn every FakeQuant of `model` on or off; returns the model."""
    for module in model.modules():
        if isinstance(module, FakeQuant):
            module.enabled = enabled
    return model
