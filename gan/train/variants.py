"""The networks a run trains, by config: DCGAN's, or the small-data variants measured in docs/train.md.

- `d_norm="spectral"`: spectral normalisation on every convolution of D and no batch norm in D
  (Miyato et al. 2018); usually with the hinge loss (Lim & Ye 2017), as in SNGAN / BigGAN.
- `g_arch="sle"`: skip-layer excitation (Liu et al. 2021, FastGAN): a low-resolution feature map gates
  the channels of a high-resolution one. It is part of the generator itself (gan/explorer/sle.py,
  `DCGANConfig.arch`), so that exported generators load in Explore like any other.
- `d_arch="projected"`: a Projected GAN discriminator (Sauer et al. 2021): frozen pretrained features
  (the `feature_net`'s conv2_2, conv3_3 and conv4_3, VGG16-HED by default, from `common.backbones`;
  the paper uses EfficientNet-lite, which cannot be had offline here), each mixed by a fixed random
  1x1 convolution (the paper's cross-channel mixing), then a small spectrally normalised discriminator
  per scale; the logits of the scales are averaged per image. To stay affordable on a CPU, the
  backbone sees the images at half resolution (32 px for 64 px images). The backbone's weights are
  not part of D's state (they are neither trained nor saved in checkpoints).

`build_networks` is the one place that builds a run's pair: the variant's G and D, or, with
progressive growing (`grow_from`, gan/train/progressive.py), the growing pair around DCGAN's layers
(spectral norm included; SLE and the projected D do not grow, and `TrainConfig` refuses them with it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan.explorer.model import DCGANConfig, Discriminator, Generator, init_weights
from gan.train.progressive import GrowingDiscriminator, GrowingGenerator

G_ARCHS = ("dcgan", "sle")
D_ARCHS = ("dcgan", "projected")
D_NORMS = ("batch", "spectral")
PROJECTED_LAYERS = ("conv2_2", "conv3_3", "conv4_3")


def build_networks(config) -> tuple[nn.Module, nn.Module]:
    """(G, D) for a TrainConfig, initialised as DCGAN does (the frozen features keep their weights)."""
    mc = config.model_config
    projected = config.d_arch == "projected"
    if config.grow_from:  # the growing pair holds the plain layers under the same keys
        g, d = GrowingGenerator(mc, config.grow_from), GrowingDiscriminator(mc, config.grow_from)
    else:
        g = Generator(mc)  # mc.arch = config.g_arch: "sle" adds the excitation gates
        d = (ProjectedDiscriminator(mc, seed=config.seed, backbone=config.feature_net) if projected
             else Discriminator(mc))
    g.apply(init_weights)  # after both are built: the same random stream as before the variants existed
    if not projected:
        d.apply(init_weights)
        if config.d_norm == "spectral":
            spectral_discriminator(d)
    return g, d


def spectral_discriminator(d: nn.Module) -> nn.Module:
    """In place: batch norms become identities, every convolution gets spectral normalisation (a growing
    D's `from_rgb` inputs too)."""
    for parent in list(d.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, name, nn.Identity())
            elif isinstance(child, nn.Conv2d):
                spectral_norm(child)
    return d


def _sn_block(cin: int, cout: int) -> nn.Sequential:
    """A stride-2 spectrally normalised conv + LeakyReLU (Projected GAN's DownBlock, without BN)."""
    return nn.Sequential(spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2, True))


class ProjectedDiscriminator(nn.Module):
    """image (N, nc, S, S) -> logit (N,): frozen features -> random 1x1 mixing -> a small D per scale."""

    def __init__(self, config: DCGANConfig, seed: int = 0, mixed: int = 64, backbone: str = "vgg16-hed") -> None:
        super().__init__()
        from common.backbones import load_backbone

        self.cfg, self.backbone_id = config, backbone
        self.__dict__["extractor"] = None  # outside the module tree: not trained, not saved (see forward)
        convs = load_backbone(backbone).conv_modules()  # VGG16: 2, 2, 3, 3, 3 convs per block
        widths = dict(zip(PROJECTED_LAYERS, (convs[3].out_channels, convs[6].out_channels, convs[9].out_channels)))
        gen = torch.Generator().manual_seed(seed)
        self.heads = nn.ModuleList()
        side = config.image_size // 2 // 2  # the backbone sees half size; conv2_2 is at half of that
        for i, name in enumerate(PROJECTED_LAYERS):
            # fixed random 1x1 projection (the paper's cross-channel mixing): a buffer, never trained
            mix = torch.randn(mixed, widths[name], 1, 1, generator=gen) * (2.0 / widths[name]) ** 0.5
            self.register_buffer(f"mix{i}", mix)
            self.heads.append(self._head(mixed, side))
            side //= 2

    @staticmethod
    def _head(channels: int, side: int) -> nn.Sequential:
        """Stride-2 SN blocks down to 4x4 (or the map's size), then a 4x4 SN conv to one logit map."""
        layers: list[nn.Module] = []
        while side > 4:
            layers.append(_sn_block(channels, channels))
            side //= 2
        layers.append(spectral_norm(nn.Conv2d(channels, 1, min(4, side), 1, 0)))
        return nn.Sequential(*layers)

    def features(self, device: torch.device):
        """The frozen feature extractor on `device` (the shared cached backbone, loaded on first use)."""
        from common.backbones import FeatureExtractor, load_backbone

        if self.extractor is None or self.extractor.backbone.mean.device != device:
            self.__dict__["extractor"] = FeatureExtractor(load_backbone(self.backbone_id, device), PROJECTED_LAYERS)
        return self.extractor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rgb = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        small = F.interpolate(rgb, scale_factor=0.5, mode="bilinear", antialias=True, align_corners=False)
        feats = self.features(x.device)((small + 1) / 2)
        logits = [head(F.conv2d(feats[name], getattr(self, f"mix{i}"))).flatten(1).mean(1)
                  for i, (name, head) in enumerate(zip(PROJECTED_LAYERS, self.heads))]
        return torch.stack(logits).mean(0)
