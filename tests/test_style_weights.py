"""vgg16-hed conversion: tiny synthetic h5 (no network), and the real converted weights (`weights`)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from weights import convert

TINY = (2, 2, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6)


def write_tiny_h5(path, rng):
    """A Keras-3-shaped file: groups named conv2d, conv2d_1 ..., the VGG name only in `vars`' attribute."""
    kernels = {}
    with h5py.File(path, "w") as h5:
        cin = 3
        order = list(enumerate(convert.VGG16_CONV_NAMES))
        for k, name in reversed(order):  # written in reverse, and group paths do not say which layer
            block, _ = name[4:].split("_")
            cin = TINY[k - 1] if k else 3
            kernel = rng.standard_normal((3, 3, cin, TINY[k])).astype("float32")
            bias = rng.standard_normal(TINY[k]).astype("float32")
            group = h5.create_group(f"block{block}/layers/conv2d_{12 - k}/vars")
            group.attrs["name"] = "block{}_conv{}".format(*name[4:].split("_"))
            group["0"], group["1"] = kernel, bias
            kernels[name] = (kernel, bias)
        h5.create_group("dsn1/vars").attrs["name"] = "conv2d"
    return kernels


def test_converter_maps_by_name_attribute_and_transposes(tmp_path):
    kernels = write_tiny_h5(tmp_path / "tiny.weights.h5", np.random.default_rng(0))
    state = convert.vgg16_state_from_keras(convert.read_keras_vgg16(tmp_path / "tiny.weights.h5"), TINY)
    assert len(state) == 26
    for index, name in zip(convert.VGG16_CONV_INDEX, convert.VGG16_CONV_NAMES):
        kernel, bias = kernels[name]
        weight = state[f"features.{index}.weight"]
        assert weight.shape == (kernel.shape[3], kernel.shape[2], 3, 3)
        # HWIO -> OIHW: weight[o, i, h, w] == kernel[h, w, i, o]
        assert weight[1, 0, 2, 1].item() == pytest.approx(float(kernel[2, 1, 0, 1]))
        assert torch.equal(state[f"features.{index}.bias"], torch.from_numpy(bias))
    checksum = convert.activation_checksum(state, [104.0, 117.0, 123.0])
    assert list(checksum) == list(convert.VGG16_CONV_NAMES) and all(np.isfinite(v).all() for v in checksum.values())


def test_converter_rejects_wrong_shapes(tmp_path):
    write_tiny_h5(tmp_path / "tiny.weights.h5", np.random.default_rng(1))
    with pytest.raises(convert.ConversionError):
        convert.vgg16_state_from_keras(convert.read_keras_vgg16(tmp_path / "tiny.weights.h5"))  # VGG16 sizes


@pytest.mark.weights
def test_vgg16_hed_shapes_and_activation_checksum():
    from safetensors.torch import load_file

    from common.backbones import load_backbone
    from weights.fetch import ensure

    folder = ensure("vgg16-hed")
    config = json.loads((folder / "config.json").read_text())
    state = load_file(str(folder / "model.safetensors"))
    cin = 3
    for index, cout in zip(convert.VGG16_CONV_INDEX, convert.VGG16_CHANNELS):
        assert state[f"features.{index}.weight"].shape == (cout, cin, 3, 3)
        assert state[f"features.{index}.bias"].shape == (cout,)
        cin = cout
    assert len(state) == 26
    # Recompute the converter's checksum through the engine's own loader (RGB + flipped conv1_1).
    model = load_backbone("vgg16-hed", "cpu", "max")
    with torch.no_grad():
        acts = model(convert.checksum_image(), list(config["activation_checksum"]))
    for name, (total, squares) in config["activation_checksum"].items():
        assert acts[name].double().sum().item() == pytest.approx(total, rel=1e-4), name
        assert acts[name].double().pow(2).sum().item() == pytest.approx(squares, rel=1e-4), name
