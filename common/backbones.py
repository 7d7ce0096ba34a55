"""VGG backbones behind one interface: an RGB image in 0..1 -> activations of named layers.

Layer names follow VGG: `conv{block}_{i}` is the convolution's output *after* its ReLU (the
rectified response that Gatys et al. call conv4_2 etc.), `conv{block}_{i}_pre` is the raw
convolution output before the ReLU (what PyTorch's neural-style tutorial captures), `pool{block}`
the pooling output. Backbones:

- `vgg19-imagenet`: torchvision's VGG19_Weights.IMAGENET1K_V1, used only when its file is already
  in the torch hub cache (or when explicitly requested and a download is allowed);
- `vgg16-hed`: VGG16 as fine-tuned for HED edge detection, offline from `weights/vgg16-hed/`
  (Caffe input convention: we flip conv1_1's input channels once so it takes RGB);
- `tiny-random`: a seeded random VGG16-shaped net with 4..8 channels, for tests only;
- `vgg19-random`: VGG19's exact shapes with seeded random weights, for benchmarks only: the same
  work per iteration as vgg19-imagenet where its weights cannot be had (an offline GPU box).

`auto` picks vgg19-imagenet when cached, else vgg16-hed. Nothing is loaded at import.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

BACKBONES = ("auto", "vgg19-imagenet", "vgg16-hed", "tiny-random", "vgg19-random")
RANDOM_BACKBONES = ("tiny-random", "vgg19-random")  # no learnt features: tests and benchmarks only
POOLINGS = ("avg", "max")
VGG16_BLOCKS = (2, 2, 3, 3, 3)
VGG19_BLOCKS = (2, 2, 4, 4, 4)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class BackboneUnavailable(RuntimeError):
    """The requested backbone cannot be had here; the message names the fix."""


@dataclass(frozen=True)
class InputConvention:
    """How an RGB image in 0..1 becomes the network's input: (x * scale - mean) / std, RGB order."""

    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def layer_names(blocks: tuple[int, ...]) -> list[str]:
    """Names of the modules of a VGG `features` stack, in order (conv, relu, ..., pool)."""
    names = []
    for b, n in enumerate(blocks, start=1):
        for i in range(1, n + 1):
            names += [f"conv{b}_{i}_pre", f"conv{b}_{i}"]
        names.append(f"pool{b}")
    return names


class VGGFeatures(nn.Module):
    """A VGG `features` stack with named layers; `forward(x, layers)` returns {name: activation}."""

    def __init__(self, blocks: tuple[int, ...], widths: tuple[int, ...], convention: InputConvention,
                 pooling: str = "avg", ceil_pool: bool = False, name: str = "vgg") -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}.")
        self.name, self.blocks, self.pooling = name, blocks, pooling
        self.names = layer_names(blocks)
        self.register_buffer("mean", torch.tensor(convention.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(convention.std).view(1, 3, 1, 1))
        self.scale = convention.scale
        layers: list[nn.Module] = []
        cin = 3
        for n, width in zip(blocks, widths):
            for _ in range(n):
                # inplace=False: an in-place ReLU would overwrite the `_pre` activations we capture.
                layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=False)]
                cin = width
            pool = nn.AvgPool2d if pooling == "avg" else nn.MaxPool2d
            # Keras 'same' pooling == ceil mode for 2x2 stride 2 (matters for sizes not divisible by 16).
            layers.append(pool(2, 2, ceil_mode=ceil_pool))
        self.body = nn.Sequential(*layers)
        self.requires_grad_(False)
        self.eval()

    def conv_modules(self) -> list[nn.Conv2d]:
        """The convolutions in order (13 for VGG16, 16 for VGG19)."""
        return [m for m in self.body if isinstance(m, nn.Conv2d)]

    def depth(self, layers) -> int:
        """How many modules of `body` must run to reach the deepest of `layers`."""
        unknown = [n for n in layers if n not in self.names]
        if unknown:
            raise ValueError(f"Unknown layer(s) {unknown} for {self.name}; known: {', '.join(self.names)}.")
        return max(self.names.index(n) for n in layers) + 1

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """RGB in 0..1 -> the network's input convention."""
        return (image * self.scale - self.mean) / self.std

    def forward(self, image: torch.Tensor, layers) -> dict[str, torch.Tensor]:
        """Activations of `layers` for an RGB batch in 0..1; stops after the deepest one."""
        wanted = set(layers)
        out: dict[str, torch.Tensor] = {}
        h = self.normalize(image)
        for name, module in zip(self.names[: self.depth(wanted)], self.body):
            h = module(h)
            if name in wanted:
                out[name] = h
        return out


class FeatureExtractor(nn.Module):
    """A backbone cut after the deepest layer in use: computes nothing it will not return."""

    def __init__(self, backbone: VGGFeatures, layers) -> None:
        super().__init__()
        self.layers = tuple(dict.fromkeys(layers))
        self.backbone = backbone
        self.body = backbone.body[: backbone.depth(self.layers)]  # shares parameters, no copy
        self.names = backbone.names[: len(self.body)]

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """{layer name: activation} for an RGB batch in 0..1."""
        out: dict[str, torch.Tensor] = {}
        h = self.backbone.normalize(image)
        for name, module in zip(self.names, self.body):
            h = module(h)
            if name in self.layers:
                out[name] = h
        return out


def vgg19_cache_file() -> Path:
    """Where torch hub keeps torchvision's VGG19 ImageNet weights."""
    from torchvision.models import VGG19_Weights

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(VGG19_Weights.IMAGENET1K_V1.url)


def load_torchvision_state(model: VGGFeatures, state: dict[str, torch.Tensor]) -> None:
    """Copy torchvision-style `features.N.weight/bias` tensors into our conv modules (strict)."""
    indices = sorted({int(k.split(".")[1]) for k in state if k.startswith("features.")})
    convs = model.conv_modules()
    if len(indices) != len(convs):
        raise BackboneUnavailable(f"{model.name}: expected {len(convs)} conv layers, found {len(indices)}.")
    with torch.no_grad():
        for conv, idx in zip(convs, indices):
            weight, bias = state[f"features.{idx}.weight"], state[f"features.{idx}.bias"]
            if weight.shape != conv.weight.shape:
                raise BackboneUnavailable(f"{model.name}: features.{idx}.weight is {tuple(weight.shape)}, "
                                          f"expected {tuple(conv.weight.shape)}.")
            conv.weight.copy_(weight)
            conv.bias.copy_(bias)


def download_vgg19(path: Path, timeout: float = 30.0) -> None:
    """Fetch torchvision's VGG19 file into the hub cache (time-limited; checks the name's sha256 prefix)."""
    import hashlib
    import urllib.error
    import urllib.request

    from torchvision.models import VGG19_Weights

    url = VGG19_Weights.IMAGENET1K_V1.url
    partial = path.with_suffix(".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
    except (urllib.error.URLError, OSError) as err:
        partial.unlink(missing_ok=True)
        raise BackboneUnavailable(f"vgg19-imagenet: could not download {url} ({err}). "
                                  "Use vgg16-hed (offline) or connect to the internet.") from err
    expected = path.stem.rsplit("-", 1)[-1]  # torchvision names files <arch>-<sha256 prefix>.pth
    if not digest.hexdigest().startswith(expected):
        partial.unlink(missing_ok=True)
        raise BackboneUnavailable(f"vgg19-imagenet: downloaded file does not match sha256 prefix {expected}.")
    partial.replace(path)


def build_vgg19_imagenet(pooling: str, allow_download: bool) -> VGGFeatures:
    """torchvision VGG19 ImageNet weights, from the hub cache (or downloaded if allowed)."""
    path = vgg19_cache_file()
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
    elif allow_download:
        download_vgg19(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
    else:
        raise BackboneUnavailable(f"vgg19-imagenet: {path} is not in the torch hub cache. Pick it explicitly "
                                  "while online to download it, or use vgg16-hed (offline).")
    model = VGGFeatures(VGG19_BLOCKS, (64, 128, 256, 512, 512), InputConvention(1.0, IMAGENET_MEAN, IMAGENET_STD),
                        pooling=pooling, ceil_pool=False, name="vgg19-imagenet")
    load_torchvision_state(model, state)
    return model


def build_vgg16_hed(pooling: str) -> VGGFeatures:
    """VGG16 trunk of HED from weights/vgg16-hed (fetched and converted on first use)."""
    from safetensors.torch import load_file

    from weights.fetch import WeightsUnavailable, ensure

    try:
        folder = ensure("vgg16-hed")
    except WeightsUnavailable as err:
        raise BackboneUnavailable(str(err)) from err
    config = json.loads((folder / "config.json").read_text())
    mean_bgr = config["mean"]
    # Caffe convention: BGR, 0..255, minus the BGR mean, no std. We flip conv1_1's input channels
    # below, so the network takes RGB minus the RGB-ordered mean.
    convention = InputConvention(config["input_range"], tuple(mean_bgr[::-1]), (1.0, 1.0, 1.0))
    model = VGGFeatures(VGG16_BLOCKS, (64, 128, 256, 512, 512), convention, pooling=pooling,
                        ceil_pool=config.get("pool_padding") == "same", name="vgg16-hed")
    state = load_file(str(folder / "model.safetensors"))
    if config.get("input_order") == "BGR":
        state["features.0.weight"] = state["features.0.weight"].flip(1).contiguous()
    load_torchvision_state(model, state)
    return model


def build_random(pooling: str, blocks: tuple[int, ...], widths: tuple[int, ...], name: str) -> VGGFeatures:
    """A seeded random (He-initialised) VGG-shaped net: for tests (tiny) and timing (full size)."""
    generator = torch.Generator().manual_seed(0)
    model = VGGFeatures(blocks, widths, InputConvention(1.0, IMAGENET_MEAN, IMAGENET_STD),
                        pooling=pooling, ceil_pool=True, name=name)
    with torch.no_grad():
        for conv in model.conv_modules():
            fan_in = conv.in_channels * 9
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
            conv.bias.zero_()
    return model


def resolve_backbone(backbone_id: str) -> str:
    """`auto` -> vgg19-imagenet if cached, else vgg16-hed (never a network call); others unchanged."""
    if backbone_id not in BACKBONES:
        raise ValueError(f"Unknown backbone {backbone_id!r}; choose one of {', '.join(BACKBONES)}.")
    if backbone_id != "auto":
        return backbone_id
    return "vgg19-imagenet" if vgg19_cache_file().is_file() else "vgg16-hed"


@functools.lru_cache(maxsize=4)
def _load_cached(backbone_id: str, device: str, pooling: str, allow_download: bool) -> VGGFeatures:
    builders = {"vgg19-imagenet": lambda: build_vgg19_imagenet(pooling, allow_download),
                "vgg16-hed": lambda: build_vgg16_hed(pooling),
                "tiny-random": lambda: build_random(pooling, VGG16_BLOCKS, (4, 8, 8, 8, 8), "tiny-random"),
                "vgg19-random": lambda: build_random(pooling, VGG19_BLOCKS, (64, 128, 256, 512, 512), "vgg19-random")}
    model = builders[backbone_id]()
    log.info("loaded backbone %s (%s pooling) on %s", backbone_id, pooling, device)
    return model.to(device)


def load_backbone(backbone_id: str = "auto", device: torch.device | str = "cpu", pooling: str = "avg",
                  allow_download: bool = False) -> VGGFeatures:
    """The backbone (cached per id + device + pooling); `auto` resolves first. Shared: do not modify."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}.")
    return _load_cached(resolve_backbone(backbone_id), str(torch.device(device)), pooling, allow_download)
