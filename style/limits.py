"""The Style tab's interactive ranges and defaults, sized for a visit rather than for a script.

The engines accept more (`style.transfer.LIMITS`: up to 10,000 iterations and 4,096 px;
`InstantConfig`: 64 .. 2,048 px): a slider over that whole range is useless to a visitor, whose
hand cannot pick 120 iterations out of 10,000, and whose CPU cannot paint 4,096 px in a visit.
These ranges lie inside the engines' own (checked on construction), and the UI reads them here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from style.instant import InstantConfig
from style.transfer import LIMITS


def is_gpu(device: torch.device | str) -> bool:
    """True on the kinds of device that paint and optimise large pictures in a visit."""
    return torch.device(device).type in ("cuda", "mps")


@dataclass(frozen=True)
class StyleLimits:
    """Slider ranges and defaults of the Style tab (instant picture, presets, refinement)."""

    iterations: tuple[int, int] = (1, 1000)  # the refinement; a default run is 120
    size_cpu: tuple[int, int] = (64, 1024)  # the refinement's output size, px: ~4.5 s per megapixel-iteration here
    size_gpu: tuple[int, int] = (64, 2048)
    size_step: int = 32
    # The instant picture: 384 px paints in ~0.07 s of one CPU core, fast enough to follow a slider; the range
    # goes to InstantConfig's limit for the device (the photo's own resolution, up to 1024 px on a CPU).
    instant_size_cpu: int = 384
    instant_size_gpu: int = 1024
    instant_size_step: int = 32
    strength_step: float = 0.05
    weight_range: tuple[float, float] = (0.0, 1.0)  # blend and preset-mix weights (the engine normalises them)
    mixer_slots: int = 3  # presets a visitor mixes at once
    thumbnail_side: int = 96  # preset gallery thumbnails, px

    def __post_init__(self) -> None:
        instant = InstantConfig()
        inside = [("iterations", self.iterations), ("size", self.size_cpu), ("size", self.size_gpu)]
        for name, (low, high) in inside:
            if not LIMITS[name][0] <= low < high <= LIMITS[name][1]:
                raise ValueError(f"The {name} slider must lie within the engine's {LIMITS[name]}.")
        for default in (self.instant_size_cpu, self.instant_size_gpu):
            if not instant.min_size <= default <= instant.max_side_cpu:
                raise ValueError(f"The instant size default must be {instant.min_size}-{instant.max_side_cpu} px.")
        if self.mixer_slots < 1 or self.thumbnail_side < 16:
            raise ValueError("The preset mixer needs a slot, and thumbnails 16 px or more.")

    def size(self, device: torch.device | str) -> tuple[int, int]:
        """(low, high) of the refinement's output size on this device."""
        return self.size_gpu if is_gpu(device) else self.size_cpu

    def instant_size(self, device: torch.device | str) -> tuple[int, int, int]:
        """(low, high, default) of the instant picture's longest side on this device."""
        instant = InstantConfig()
        default = self.instant_size_gpu if is_gpu(device) else self.instant_size_cpu
        return instant.min_size, instant.max_side(device), default

    def strength(self) -> tuple[float, float, float]:
        """(low, high, default) of the strength slider: InstantConfig's."""
        instant = InstantConfig()
        return 0.0, instant.max_strength, instant.strength
