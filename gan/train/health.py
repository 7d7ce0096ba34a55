"""Health signals of a GAN run, each with the lesson's advice attached.

- D wins: its loss stays near 0 for a while, so G gets no useful gradient.
- Mode collapse: the samples from the fixed noise become far less diverse than the real images.
- Mode collapse in feature space: the generated images cover far fewer of the training images'
  neighbourhoods (in VGG16 features, see gan/train/kid.py) than half of the training set covers of
  the other half. This one sees a partial collapse (most samples one face, a few odd ones) that the
  pixel metric misses: a few blotchy outliers keep the mean pixel distance high.
- NaN/inf: a loss is no longer a number (the trainer then stops and rolls back).

Diversity is the mean pairwise L2 distance between images shrunk to 16x16 (an LPIPS-free pixel
metric: cheap, and enough to see a generator that draws the same picture for every z).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

D_WINS_ADVICE = ("D is winning (its loss has stayed near 0): lower D's learning rate, turn on one-sided "
                 "label smoothing (e.g. 0.1), skip D's step while its loss is low, or turn on DiffAugment.")
COLLAPSE_ADVICE = ("Possible mode collapse: the samples are much less diverse than your images. Try "
                   "DiffAugment, a lower learning rate for G, or resume from an earlier checkpoint.")
FEATURE_COLLAPSE_ADVICE = ("Possible mode collapse: the samples cover only {cov:.0%} of your images' "
                           "neighbourhoods in feature space (half of your images cover {real:.0%} of the other "
                           "half), so many samples are variations of a few pictures. Train longer (early runs "
                           "often recover), or try DiffAugment, the hinge loss with spectral norm, a lower "
                           "learning rate for G, or resume from an earlier checkpoint.")
NAN_ADVICE = ("A loss became NaN/inf. Training stopped and rolled back to the last good checkpoint "
              "(step {step}). Lower both learning rates (or use the hinge loss) before resuming.")


def diversity(images: torch.Tensor, max_images: int = 64) -> float:
    """Mean pairwise L2 distance of images (N, C, H, W) in [-1, 1], shrunk to 16x16, per pixel."""
    x = images[:max_images].float()
    if x.shape[-1] > 16:
        x = F.adaptive_avg_pool2d(x, 16)
    flat = x.flatten(1)
    if flat.shape[0] < 2:
        return 0.0
    dist = torch.cdist(flat, flat)
    n = flat.shape[0]
    return float(dist.sum() / (n * (n - 1)) / flat.shape[1] ** 0.5)


class HealthMonitor:
    """Watches the per-step losses and the sample diversity; returns a warning when one is due."""

    def __init__(self, real_diversity: float, d_loss_floor: float = 0.05, patience: int = 50,
                 collapse_ratio: float = 0.25, warmup_steps: int = 300, coverage_ratio: float = 0.5) -> None:
        self.real_diversity = real_diversity
        self.d_loss_floor = d_loss_floor
        self.patience = patience
        self.collapse_ratio = collapse_ratio
        self.warmup_steps = warmup_steps
        self._low_d = 0
        self._warned_d = False
        self._warned_collapse = False
        self.coverage_ratio = coverage_ratio
        self._warned_coverage = False

    def on_losses(self, loss_d: float) -> str | None:
        """Count steps with D's loss near 0; warn once per episode after `patience` of them."""
        self._low_d = self._low_d + 1 if loss_d < self.d_loss_floor else 0
        if self._low_d == 0:
            self._warned_d = False
        if self._low_d >= self.patience and not self._warned_d:
            self._warned_d = True
            return D_WINS_ADVICE
        return None

    def on_samples(self, step: int, sample_diversity: float) -> str | None:
        """Warn (once per episode) when the fixed-noise samples are far less diverse than the data."""
        if step < self.warmup_steps or self.real_diversity <= 0:
            return None
        low = sample_diversity < self.collapse_ratio * self.real_diversity
        if low and not self._warned_collapse:
            self._warned_collapse = True
            return COLLAPSE_ADVICE + f" (diversity {sample_diversity:.3f} vs {self.real_diversity:.3f} for the data)"
        if not low:
            self._warned_collapse = False
        return None

    def on_quality(self, step: int, quality) -> str | None:
        """Warn (once per episode) when the samples' feature-space coverage is far below the data's own."""
        if step < self.warmup_steps:
            return None
        low = quality.coverage < self.coverage_ratio * quality.real_coverage
        if low and not self._warned_coverage:
            self._warned_coverage = True
            return FEATURE_COLLAPSE_ADVICE.format(cov=quality.coverage, real=quality.real_coverage)
        if not low:
            self._warned_coverage = False
        return None
