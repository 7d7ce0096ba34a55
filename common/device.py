"""The compute device: pick it (CUDA, then MPS, then CPU), describe it, set its fast-math flags once,
and scope CPU threads per request."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def pick_device(preferred: str | None = None) -> torch.device:
    """Return `preferred` if given (or $ATELIER_DEVICE), else cuda, then mps, then cpu."""
    name = preferred or os.environ.get("ATELIER_DEVICE") or ""
    if name and name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe(device: torch.device) -> str:
    """A short human label for a device, e.g. 'CUDA (NVIDIA H100)' or 'CPU (2 threads)'."""
    if device.type == "cuda":
        return f"CUDA ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"


def configure_backend(device: torch.device | str) -> None:
    """On CUDA: TF32 matmuls and convolutions, and cuDNN autotuning (fixed shapes every step); else nothing.

    TF32 keeps fp32's range with a 10-bit mantissa on tensor cores: the training losses and the
    style objective do not notice, and both run several times faster on Ampere and later GPUs.
    Both engines call this (the trainer and style transfer), so the flags are set in one place.
    """
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


@contextmanager
def intra_op_threads(n: int | None) -> Iterator[None]:
    """Run the block with n intra-op CPU threads in this thread only, then restore.

    torch's OpenMP thread count is a per-thread setting, so a light request (one 64 px image)
    can use one core while a training job in another thread keeps its own count: a second
    thread costs more in synchronisation than it gains on a batch of one, and on a busy
    2-core machine it made Explore's p50 several times slower. None leaves things as they are.
    """
    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
