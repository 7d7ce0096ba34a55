"""Training data as the trainer's loop sees it: endless batches in [-1, 1] on the device.

Two sources: the whole set as one in-memory uint8 tensor (the fast path: a batch is an index into
it, no DataLoader, no file I/O), or a `BatchStream` of uint8 batches from DataLoader workers for
sets larger than memory (`gan.ingest.streaming.make_loader`). `Trainer.feed` turns either into a `Feed`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

PROBE = 64  # images kept aside for the health monitor's diversity baseline


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (0..255) -> float32 in [-1, 1] (the generator's tanh range)."""
    return images.float().mul_(2 / 255).sub_(1)


class BatchStream:
    """uint8 batches (N, C, S, S) from an iterator, and the number of images in the whole set."""

    def __init__(self, batches: Iterator[torch.Tensor], size: int) -> None:
        self.batches, self.size = batches, size


class Feed:
    """Data on the device: `probe` (up to 64 uint8 images) and, as an iterator, endless float batches."""

    def __init__(self, probe: torch.Tensor, draw: Callable[[], torch.Tensor], size: int,
                 memory_format: torch.memory_format = torch.contiguous_format) -> None:
        self.probe, self.draw, self.size, self.memory_format = probe[:PROBE], draw, size, memory_format

    def __iter__(self) -> Feed:
        return self

    def __next__(self) -> torch.Tensor:
        """The next batch in [-1, 1], in the trainer's memory format."""
        return to_float(self.draw()).contiguous(memory_format=self.memory_format)
