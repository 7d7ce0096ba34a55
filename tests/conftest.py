"""Shared fixtures: tiny models, synthetic images, a launched app on a free loopback port."""

from __future__ import annotations

import os
import socket

import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ATELIER_DEVICE", "cpu")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def tiny_config():
    """A DCGAN config small enough for millisecond tests."""
    from gan.model import DCGANConfig

    return DCGANConfig(image_size=32, nc=3, nz=8, ngf=4, ndf=4)
