"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs") on VGG16 features.

KID is the squared maximum mean discrepancy (MMD^2) between the features of generated images and of
the training images, under the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, estimated without
bias and averaged over random subsets. Unlike FID it has an unbiased estimator, so it can be compared
across sample sizes, which matters here: a visitor's data set may hold 100 images.

Where we differ from the paper: the features are not Inception-v3's pool3 (those weights cannot be had
offline here) but VGG16's last convolution of each block, conv1_2, conv2_2, conv3_3, conv4_3 and
conv5_3 (after ReLU), average-pooled over space (64 + 128 + 256 + 512 + 512 = 1472 numbers), from the
VGG16 trunk this project already ships for style transfer (`common.backbones`, `vgg16-hed`). Each
layer's vector is scaled so that the real set's mean square is 1 (the layers then weigh the same in
the kernel). The shallow layers matter: with conv4_3 and conv5_3 alone (edge-tuned HED features) the
number missed colour casts and grey backgrounds that the eye sees at once (docs/train.md). So the
numbers are NOT comparable with published FID or KID values: they rank runs on the same data, which
is what the Train tab needs. We report KID x 1000, as the paper's tables do.

The same features give a mode-collapse signal (`coverage`, Naeem et al. 2020, "Reliable Fidelity and
Diversity Metrics for Generative Models"): the share of real images that have a generated image
inside their k-nearest-neighbour ball. A generator that draws one face covers one face's neighbourhood.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from gan.train.metrics import Quality

KID_LAYERS = ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")  # the last conv of each block
KID_SCALE = 1000.0  # reported values are KID x 1000
SUBSETS, SUBSET_SIZE = 50, 100  # the paper's estimator: the mean over 50 subsets of 100
COVERAGE_K = 5  # k of the real k-NN balls (Naeem et al. use k = 5)


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """k(x, y) = (x.y / d + 1)^3 for rows of x (n, d) and y (m, d) -> (n, m)."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 between samples x (n, d) and y (m, d) under the polynomial kernel (n, m >= 2)."""
    n, m = x.shape[0], y.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    # the diagonals k(x_i, x_i) are left out: that is what makes the estimate unbiased
    term_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (n * (n - 1))
    term_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(term_xx + term_yy - 2 * k_xy.mean())


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = SUBSETS, subset_size: int = SUBSET_SIZE,
        seed: int = 0) -> tuple[float, float]:
    """(mean, std) of MMD^2 over `subsets` random subsets (without replacement) of each feature set.

    The subset size shrinks to the smaller set when one has fewer rows (a 60-image data set).
    """
    size = min(subset_size, real.shape[0], fake.shape[0])
    if size < 2:
        raise ValueError("KID needs at least 2 real and 2 generated images.")
    gen = torch.Generator().manual_seed(seed)
    real, fake = real.double().cpu(), fake.double().cpu()  # float64: cubic kernels of 1k-d features
    values = []
    for _ in range(subsets):
        r = real[torch.randperm(real.shape[0], generator=gen)[:size]]
        f = fake[torch.randperm(fake.shape[0], generator=gen)[:size]]
        values.append(mmd2_unbiased(r, f))
    values_t = torch.tensor(values, dtype=torch.float64)
    return float(values_t.mean()), float(values_t.std()) if subsets > 1 else 0.0


def coverage(real: torch.Tensor, fake: torch.Tensor, k: int = COVERAGE_K) -> float:
    """Share of real rows whose k-NN ball (among the real rows) holds at least one fake row (0..1)."""
    real, fake = real.double().cpu(), fake.double().cpu()
    k = min(k, real.shape[0] - 1)
    if k < 1:
        raise ValueError("Coverage needs at least 2 real images.")
    real_d = torch.cdist(real, real)
    radius = real_d.kthvalue(k + 1, dim=1).values  # +1: each row's nearest real row is itself
    nearest_fake = torch.cdist(real, fake).min(dim=1).values
    return float((nearest_fake <= radius).double().mean())


class FeatureNet:
    """Images in [-1, 1] -> per layer, one feature row each: VGG16 activations averaged over space."""

    def __init__(self, backbone, layers: tuple[str, ...] = KID_LAYERS, batch_size: int = 64) -> None:
        from common.backbones import FeatureExtractor

        self.extractor = FeatureExtractor(backbone, layers)
        self.layers, self.batch_size = tuple(layers), batch_size
        self.device = next(backbone.parameters()).device

    @torch.inference_mode()
    def raw(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Per layer, the pooled features (N, C_layer) of images (N, 3 or 1, S, S) in [-1, 1]."""
        chunks: list[list[torch.Tensor]] = [[] for _ in self.layers]
        for batch in images.split(self.batch_size):
            rgb = batch.to(self.device, torch.float32)
            rgb = rgb.expand(-1, 3, -1, -1) if rgb.shape[1] == 1 else rgb
            acts = self.extractor((rgb + 1) / 2)
            for i, name in enumerate(self.layers):
                chunks[i].append(F.adaptive_avg_pool2d(acts[name], 1).flatten(1).float().cpu())
        return [torch.cat(c) for c in chunks]


def layer_scales(per_layer: list[torch.Tensor]) -> list[float]:
    """Per layer, the factor that gives these (real) features a mean square of 1."""
    return [1.0 / math.sqrt(max(float(f.pow(2).mean()), 1e-12)) for f in per_layer]


def scaled(per_layer: list[torch.Tensor], scales: list[float]) -> torch.Tensor:
    """The layers' features, each multiplied by its scale, side by side (N, sum of C)."""
    return torch.cat([f * s for f, s in zip(per_layer, scales)], dim=1)


class QualityMeter:
    """The training set's features, computed once; `measure(fake_images)` compares a generator's.

    Coverage depends on how many probes (generated images) meet how many reference images, so the
    real set is split once, at random, into a reference half and a probe half: the generator's
    coverage of the reference half by as many generated images as the probe half holds (at most)
    is compared with the probe half's own coverage of it (`real_coverage`: what a generator that
    draws new images like yours would score).
    """

    def __init__(self, net: FeatureNet, real_images: torch.Tensor, seed: int = 0) -> None:
        """`real_images`: the training set (N, C, S, S) in [-1, 1] (all of it, or a random sample)."""
        self.net, self.seed = net, seed
        per_layer = net.raw(real_images)
        self.scales = layer_scales(per_layer)
        self.real = scaled(per_layer, self.scales)
        order = torch.randperm(self.real.shape[0], generator=torch.Generator().manual_seed(seed))
        half = self.real.shape[0] // 2
        self.reference, self.probes = self.real[order[:half]], self.real[order[half:]]
        self.real_coverage = self._coverage(self.probes)

    def _coverage(self, probes: torch.Tensor) -> float:
        """Coverage of the reference half by at most as many `probes` as the probe half holds."""
        if self.reference.shape[0] < 2:
            return 1.0  # one image: nothing to compare
        return coverage(self.reference, probes[: self.probes.shape[0]])

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Scaled features (N, D) of images in [-1, 1], comparable with `self.real`."""
        return scaled(self.net.raw(images), self.scales)

    def measure(self, fake_images: torch.Tensor) -> Quality:
        """KID x 1000 and coverage of generated images (N, C, S, S) in [-1, 1] against the real set."""
        started = time.perf_counter()
        fake = self.features(fake_images)
        mean, std = kid(self.real, fake, seed=self.seed)
        return Quality(kid=mean * KID_SCALE, kid_std=std * KID_SCALE, coverage=self._coverage(fake),
                       real_coverage=self.real_coverage, seconds=time.perf_counter() - started)
