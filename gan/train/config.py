"""`TrainConfig`: every training setting with its default and its validation; `suggest_config` for a data
set and device; `resumed_config`, what a resumed run may change."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import torch

from gan.explorer.model import DCGANConfig
from gan.train.diffaugment import parse_policy
from gan.train.progressive import growth_end, start_resolutions
from gan.train.variants import D_ARCHS, D_NORMS, G_ARCHS

LOSSES = ("bce", "hinge")
DEFAULT_POLICY = "color,translation,cutout"
SMALL_DATASET = 1000  # below this many images DiffAugment is on by default (Zhao et al. 2020)
# (low, high) of every numeric setting: validation and the UI's sliders read these.
LIMITS = {"nz": (1, 512), "ngf": (4, 256), "ndf": (4, 256), "lr_g": (1e-6, 1e-2), "lr_d": (1e-6, 1e-2),
          "beta1": (0.0, 0.99), "beta2": (0.0, 0.9999), "batch_size": (1, 512), "steps": (1, 10_000_000),
          "d_skip_threshold": (0.0, 2.0), "label_smoothing": (0.0, 0.5), "ema_decay": (0.0, 0.9999),
          "sample_every": (1, 1_000_000), "checkpoint_every": (1, 1_000_000), "n_samples": (1, 256),
          "grow_phase_steps": (1, 1_000_000), "grow_fade_steps": (1, 1_000_000),
          "kid_every": (0, 1_000_000), "kid_samples": (16, 4096), "kid_budget": (0.0, 1.0)}
FEATURE_NETS = ("vgg16-hed", "tiny-random")  # tiny-random: tests only (no learnt features)
# What a resumed run may change: how it learns, not what it is (shapes of the weights, the fixed
# noise of its sample grids, its image format). Changing lr_d mid-run is the lesson's remedy when D wins.
TUNABLE_ON_RESUME = ("steps", "batch_size", "lr_g", "lr_d", "beta1", "beta2", "loss", "label_smoothing",
                     "d_skip_threshold", "diffaugment", "ema_decay", "sample_every", "checkpoint_every",
                     "kid_every", "kid_samples", "kid_budget", "feature_net")


class TrainError(ValueError):
    """Training cannot start or continue (wrong data, wrong checkpoint); the message says why."""


@dataclass(frozen=True)
class TrainConfig:
    """Every training setting with its default: the PyTorch DCGAN example's (non-saturating BCE, batch norm in
    D), which on a quiet CPU learnt the 118 emoji faces best in 5 and 20 minutes (docs/train.md)."""

    image_size: int = 64
    nc: int = 3
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    loss: str = "bce"  # "bce" = non-saturating BCE on logits (DCGAN), "hinge" = hinge loss (Lim & Ye 2017)
    lr_g: float = 2e-4
    lr_d: float = 2e-4  # separate from lr_g: lowering it is the lesson's first remedy when D wins
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 64
    steps: int = 2000
    d_skip_threshold: float = 0.0  # skip D's step while its loss is below this (0 = never skip)
    label_smoothing: float = 0.0  # one-sided: real target = 1 - label_smoothing (0.1 -> 0.9)
    diffaugment: str = ""  # DiffAugment policy, e.g. "color,translation,cutout"; "" = off
    ema_decay: float = 0.999  # EMA of G's weights, used for samples and export
    sample_every: int = 100
    checkpoint_every: int = 500
    n_samples: int = 64  # fixed-noise samples in each grid
    kid_every: int = 500  # measure KID x 1000 and coverage every this many steps (0 = never)
    kid_samples: int = 128  # generated images per measurement (its own fixed noise)
    kid_budget: float = 0.05  # a due measurement waits while measuring took more than this share (1: no bound)
    feature_net: str = "vgg16-hed"  # pretrained features for KID and the projected D (gan/train/kid.py)
    g_arch: str = "dcgan"  # "dcgan", or "sle": + skip-layer excitation (FastGAN, see gan/train/variants.py)
    d_arch: str = "dcgan"  # "dcgan", or "projected": Projected GAN's D on frozen pretrained features
    d_norm: str = "batch"  # D's normalisation: "batch" (DCGAN's batch norm) or "spectral" (spectral norm, no
    # batch norm; Miyato et al. 2018)
    seed: int = 0
    # progressive growing (Karras et al. 2018): start at grow_from px (0 = off), train each resolution
    # for grow_phase_steps, then fade the next layer in over grow_fade_steps (see gan/train/progressive.py)
    grow_from: int = 0
    grow_phase_steps: int = 300
    grow_fade_steps: int = 300

    def __post_init__(self) -> None:
        for name, allowed in (("g_arch", G_ARCHS), ("d_arch", D_ARCHS), ("d_norm", D_NORMS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}.")
        _ = self.model_config  # validates image_size, nc, nz, ngf, ndf
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}.")
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} must be between {low} and {high}, got {value!r}.")
        parse_policy(self.diffaugment)
        if self.feature_net not in FEATURE_NETS:
            raise ValueError(f"feature_net must be one of {', '.join(FEATURE_NETS)}, got {self.feature_net!r}.")
        self._check_growth()

    def _check_growth(self) -> None:
        if not self.grow_from:
            return
        starts = start_resolutions(self.image_size)
        if self.grow_from not in starts:
            raise ValueError(f"grow_from must be 0 (off) or one of {', '.join(map(str, starts))} px for "
                             f"{self.image_size} px images, got {self.grow_from!r}.")
        for name, variant in (("g_arch", "sle"), ("d_arch", "projected")):  # their layers do not grow
            if getattr(self, name) == variant:
                raise ValueError(f"Progressive growing (grow_from) adds DCGAN's layers one resolution at a time; "
                                 f"{name} {variant!r} does not grow. Set grow_from to 0 or {name} to 'dcgan'.")
        if self.steps < self.growth_end:
            raise ValueError(f"Growing from {self.grow_from} px ({self.grow_phase_steps} steps per resolution, "
                             f"{self.grow_fade_steps} steps of fade-in) reaches {self.image_size} px at step "
                             f"{self.growth_end}: steps must be at least that, got {self.steps}.")

    @property
    def growth_end(self) -> int:
        """The step count after which the run trains at full size only (0 without progressive growing)."""
        return growth_end(self.image_size, self.grow_from, self.grow_phase_steps, self.grow_fade_steps)

    @property
    def model_config(self) -> DCGANConfig:
        """The architecture part, as the model's own config."""
        return DCGANConfig(image_size=self.image_size, nc=self.nc, nz=self.nz, ngf=self.ngf, ndf=self.ndf,
                           arch=self.g_arch)

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> TrainConfig:
        """Inverse of to_dict; unknown keys are an error."""
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"Unknown training settings: {', '.join(sorted(unknown))}.")
        return cls(**raw)


def suggest_config(n_images: int, device: torch.device | str = "cpu", image_size: int = 64, nc: int = 3,
                   **overrides) -> TrainConfig:
    """Defaults that suit the data set size and the device (CPU: smaller nets and batches)."""
    on_cpu = torch.device(device).type == "cpu"
    # CPU, measured on the 118 emoji faces on a quiet 2-core CPU (docs/train.md): ngf = ndf = 32 and batch 32
    # (with DCGAN's loss and norms) had the lowest KID after 5 and 20 minutes of the recipes tried (batch 16,
    # hinge + spectral norm, a narrower D); 4,000 steps take about 5 minutes there.
    base = dict(image_size=image_size, nc=nc, ngf=32 if on_cpu else 64, ndf=32 if on_cpu else 64,
                batch_size=32 if on_cpu else 64, steps=4000 if on_cpu else 5000,
                sample_every=50 if on_cpu else 100, checkpoint_every=500 if on_cpu else 1000,
                diffaugment=DEFAULT_POLICY if n_images < SMALL_DATASET else "")
    base.update(overrides)
    return TrainConfig(**base)


def resumed_config(config: TrainConfig, steps: int | None = None, changes: dict | None = None) -> TrainConfig:
    """The config a resumed run goes on with: `steps` and tunable `changes` applied, fixed fields refused."""
    changes = dict(changes or {}, **({"steps": steps} if steps is not None else {}))
    for name, value in changes.items():
        if name not in TrainConfig.__dataclass_fields__:
            raise TrainError(f"Unknown training setting {name!r}.")
        if name not in TUNABLE_ON_RESUME and getattr(config, name) != value:
            raise TrainError(f"{name} is {getattr(config, name)!r} in this run and cannot change when resuming "
                             "(it fixes the networks' shapes or the run's sample noise); set it back, "
                             "or start a new run.")
    try:
        return replace(config, **{k: v for k, v in changes.items() if k in TUNABLE_ON_RESUME})
    except ValueError as err:
        raise TrainError(str(err)) from err
