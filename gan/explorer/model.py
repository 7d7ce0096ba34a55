"""DCGAN generator and discriminator (Radford et al. 2015), as in PyTorch's DCGAN tutorial.

Both networks are configurable (image size 32, 64 or 128; 1 or 3 channels; nz; ngf / ndf) and
carry their config with their weights through `huggingface_hub.PyTorchModelHubMixin`: a folder
with `config.json` + `model.safetensors`, loadable with `Generator.from_pretrained(path_or_repo)`.

The generator's `main` Sequential keeps the tutorial's layer indices, so the tutorial's
64 px checkpoints (e.g. `gan-face-generate`) load with every key matched.
"""

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import nn

SUPPORTED_SIZES = (32, 64, 128)
# Weight files that torch.load would unpickle (arbitrary code): refused wherever a user brings weights.
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"})
# A Hugging Face Hub model repo id, `owner/name` (the Hub's limit: 96 characters per part).
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")


@dataclass(frozen=True)
class DCGANConfig:
    """Architecture of a DCGAN pair; `nz`, `ngf`, `ndf`, `nc` follow the paper / tutorial."""

    image_size: int = 64
    nc: int = 3  # image channels
    nz: int = 100  # latent size
    ngf: int = 64  # generator feature maps at the last layer
    ndf: int = 64  # discriminator feature maps at the first layer

    def __post_init__(self) -> None:
        if self.image_size not in SUPPORTED_SIZES:
            raise ValueError(f"image_size must be one of {SUPPORTED_SIZES}, got {self.image_size}.")
        if self.nc not in (1, 3):
            raise ValueError(f"nc (channels) must be 1 (grey) or 3 (colour), got {self.nc}.")
        for name in ("nz", "ngf", "ndf"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 1024:
                raise ValueError(f"{name} must be an integer from 1 to 1024, got {value!r}.")

    @property
    def n_up(self) -> int:
        """Number of stride-2 layers: 4 px -> image_size (64 px: 4)."""
        return int(math.log2(self.image_size)) - 2

    def to_dict(self) -> dict:
        """Plain dict (what config.json stores)."""
        return asdict(self)


def _as_config(config: "DCGANConfig | dict | None") -> DCGANConfig:
    """Accept a DCGANConfig or a dict read from config.json (unknown keys are an error)."""
    if isinstance(config, DCGANConfig):
        return config
    raw = dict(config or {})
    unknown = set(raw) - set(DCGANConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"config.json has unknown fields: {', '.join(sorted(unknown))}.")
    return DCGANConfig(**raw)


class Generator(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="gan-atelier",
    tags=["dcgan", "gan", "image-generation"],
    license="mit",
):
    """z (N, nz) or (N, nz, 1, 1) -> image (N, nc, S, S) in [-1, 1]."""

    def __init__(self, config: DCGANConfig = None) -> None:
        super().__init__()
        self.cfg = _as_config(config)
        self._hub_mixin_config = self.cfg  # what save_pretrained writes to config.json
        c = self.cfg
        mult = 2 ** (c.n_up - 1)  # 64 px: ngf*8 at 4x4, as in the tutorial
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(c.nz, c.ngf * mult, 4, 1, 0, bias=False),
            nn.BatchNorm2d(c.ngf * mult),
            nn.ReLU(True),
        ]
        for _ in range(c.n_up - 1):
            layers += [
                nn.ConvTranspose2d(c.ngf * mult, c.ngf * mult // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c.ngf * mult // 2),
                nn.ReLU(True),
            ]
            mult //= 2
        layers += [nn.ConvTranspose2d(c.ngf, c.nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.main(z)


class Discriminator(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="gan-atelier",
    tags=["dcgan", "gan"],
    license="mit",
):
    """image (N, nc, S, S) -> logit (N,). No sigmoid: the losses work on logits (stable BCE, hinge)."""

    def __init__(self, config: DCGANConfig = None) -> None:
        super().__init__()
        self.cfg = _as_config(config)
        self._hub_mixin_config = self.cfg  # what save_pretrained writes to config.json
        c = self.cfg
        layers: list[nn.Module] = [nn.Conv2d(c.nc, c.ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        mult = 1
        for _ in range(c.n_up - 1):
            layers += [
                nn.Conv2d(c.ndf * mult, c.ndf * mult * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(c.ndf * mult * 2),
                nn.LeakyReLU(0.2, True),
            ]
            mult *= 2
        layers.append(nn.Conv2d(c.ndf * mult, 1, 4, 1, 0, bias=False))
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten()


def init_weights(module: nn.Module) -> None:
    """DCGAN paper init: conv weights N(0, 0.02), batch-norm weights N(1, 0.02), bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class ModelLoadError(ValueError):
    """A model folder or repo that is missing, unsafe or does not match its config."""


def load_generator(source: str | Path, device: torch.device | str = "cpu") -> Generator:
    """Load a Generator from a mixin folder or Hub repo id, strictly, refusing pickles."""
    path = Path(source)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"{path.name}: no config.json; a model folder needs config.json + model.safetensors.")
        if not (path / "model.safetensors").is_file():
            pickles = [p.name for p in path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES]
            why = f" (found {', '.join(pickles)}: pickled weights are refused)" if pickles else ""
            raise ModelLoadError(f"{path.name}: no model.safetensors{why}.")
    try:
        model = Generator.from_pretrained(str(source), map_location=str(device), strict=True)
    except (RuntimeError, TypeError, ValueError, KeyError) as err:
        raise ModelLoadError(f"{source}: the weights do not match config.json ({str(err).splitlines()[0]})") from err
    return model.to(device).eval()
