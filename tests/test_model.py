"""DCGAN model: shapes, ranges, config round trip, strict loading, refusal of pickles."""

from __future__ import annotations

import json

import pytest
import torch

from gan.explorer.model import DCGANConfig, Discriminator, Generator, ModelLoadError, load_generator
from tests.conftest import tiny_model_config


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("nc", [1, 3])
def test_shapes_and_range(size, nc):
    cfg = tiny_model_config(image_size=size, nc=nc)
    G, D = Generator(cfg).eval(), Discriminator(cfg)
    x = G(torch.randn(3, 8))
    assert x.shape == (3, nc, size, size)
    assert x.min() >= -1 and x.max() <= 1
    assert D(x).shape == (3,)


def test_invalid_config_names_the_field():
    with pytest.raises(ValueError, match="image_size"):
        DCGANConfig(image_size=48)
    with pytest.raises(ValueError, match="nc"):
        DCGANConfig(nc=2)


def test_save_load_round_trip(tmp_path, tiny_config):
    G = Generator(tiny_config).eval()
    G.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["nz"] == tiny_config.nz
    G2 = load_generator(tmp_path)
    z = torch.randn(2, tiny_config.nz)
    assert G2.cfg == tiny_config
    assert torch.equal(G(z), G2(z))


def test_mismatched_weights_are_refused(tmp_path, tiny_config):
    Generator(tiny_config).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["ngf"] = 8
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="do not match"):
        load_generator(tmp_path)


def test_pickles_are_refused(tmp_path, tiny_config):
    (tmp_path / "config.json").write_text(json.dumps(tiny_config.to_dict()))
    torch.save(Generator(tiny_config).state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pickled weights are refused"):
        load_generator(tmp_path)
