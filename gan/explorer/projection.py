"""GAN inversion: find the latent z whose picture is closest to a photo ("your photo in the latent space").

The photo is centre-cropped to a square and resized to the generator's size (grey for a 1-channel
model). We then optimise z by gradient descent through the frozen generator, as in the
optimisation-based inversions of Zhu et al. (iGAN, ECCV 2016) and Abdal et al. (Image2StyleGAN,
ICCV 2019), with their loss: a pixel term (mean squared error in 0..1) plus a perceptual term
(squared differences of VGG16 features, each layer divided by the photo's own mean square so the
layers weigh alike; the backbone is `vgg16-hed` from common.backbones). A small prior term keeps
|z|^2 / nz near 1, where N(0, I) latents live, so the result still behaves under the sliders.

Inversion is not convex: we score `candidates` random latents once, optimise the best `starts`
of them together as one batch (Adam), and after `narrow_after` of the steps go on with the lowest
one only (successive halving in one cut: most of the time goes to the start that wins). Progress comes as
`ProjectionProgress` records, yielded every `report_every` steps; a `threading.Event` stops the
run early with the best latent so far. Works for any Generator (any nz, 32/64/128 px, 1 or 3
channels) on any device.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch
from PIL import Image, ImageOps
from torch import nn

from common.backbones import FeatureExtractor, VGGFeatures, load_backbone
from common.device import intra_op_threads
from gan.explorer.latent import MAX_LATENT

log = logging.getLogger(__name__)

MAX_INPUT_PIXELS = 40_000_000  # a photo larger than this is refused before it is decoded in full


@dataclass(frozen=True)
class ProjectionConfig:
    """Every setting of an inversion, with the limits the UI's controls read."""

    steps: int = 100
    steps_max: int = 500
    starts: int = 4  # latents optimised together; the best one wins
    candidates: int = 32  # random latents scored once to pick the starts
    narrow_after: float = 0.25  # after this share of the steps only the best start goes on (1: never)
    lr: float = 0.08
    pixel_weight: float = 1.0
    perceptual_weight: float = 0.5
    prior_weight: float = 0.05
    layers: tuple[str, ...] = ("conv1_2", "conv2_2", "conv3_3")
    backbone: str = "vgg16-hed"
    seed: int = 0  # fixes the candidates: the same photo gives the same latent
    report_every: int = 5
    # Intra-op threads on a CPU. One: on the shared 2-core development machine (load ~7) one thread
    # projected a 64 px photo in 12.6 s and two in 50 s (OpenMP threads wait on each other).
    cpu_threads: int | None = 1

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= self.steps_max:
            raise ValueError(f"Steps must be between 1 and {self.steps_max}, got {self.steps}.")
        if not 1 <= self.starts <= self.candidates <= 4096:
            raise ValueError(f"Need 1 <= starts <= candidates <= 4096, got starts={self.starts}, "
                             f"candidates={self.candidates}.")
        if self.lr <= 0 or min(self.pixel_weight, self.perceptual_weight, self.prior_weight) < 0:
            raise ValueError("The learning rate must be positive and the loss weights 0 or more.")
        if self.pixel_weight == 0 and self.perceptual_weight == 0:
            raise ValueError("At least one of the pixel and perceptual weights must be above 0.")
        if not 0.0 < self.narrow_after <= 1.0:
            raise ValueError(f"narrow_after must lie in (0, 1], got {self.narrow_after}.")
        if self.cpu_threads is not None and self.cpu_threads < 1:
            raise ValueError(f"cpu_threads must be at least 1 (or None: torch's setting), got {self.cpu_threads}.")
        if self.report_every < 1:
            raise ValueError(f"report_every must be at least 1, got {self.report_every}.")


@dataclass(frozen=True)
class ProjectionProgress:
    """One report: the best start's latent and losses so far; `done` on the last one."""

    step: int
    steps: int
    z: torch.Tensor  # (1, nz) on the CPU: the best start's latent at this step
    loss: float
    pixel: float  # mean squared error, pixels in 0..1
    perceptual: float  # normalised VGG feature distance (0 = same features)
    elapsed_s: float
    done: bool = False
    stopped: bool = False  # ended by the stop event before `steps`


def prepare_target(image: Image.Image, size: int, channels: int) -> torch.Tensor:
    """A photo -> (1, channels, size, size) in 0..1: upright (EXIF), transparency on white,
    centre-cropped square, resized."""
    if image.width * image.height > MAX_INPUT_PIXELS:
        raise ValueError(f"The picture has {image.width}x{image.height} pixels; at most "
                         f"{MAX_INPUT_PIXELS // 1_000_000} megapixels are accepted.")
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA", "P") or "transparency" in image.info:
        # Transparent pixels on white, as gan.ingest composites training images (emoji, logos).
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    image = image.convert("L" if channels == 1 else "RGB")
    square = ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    data = torch.frombuffer(bytearray(square.tobytes()), dtype=torch.uint8)
    return data.view(size, size, channels).permute(2, 0, 1).float().div(255).unsqueeze(0)


class ReconstructionLoss(nn.Module):
    """Per-sample pixel + perceptual distance to one target picture, both in 0..1."""

    def __init__(self, target: torch.Tensor, backbone: VGGFeatures, config: ProjectionConfig) -> None:
        super().__init__()
        self.config = config
        self.features = FeatureExtractor(backbone, config.layers)
        self.register_buffer("target", target)
        with torch.no_grad():
            wanted = self.features(self.rgb(target))
        self.wanted = {name: value.detach() for name, value in wanted.items()}
        self.scale = {name: float(value.pow(2).mean().clamp_min(1e-8)) for name, value in wanted.items()}

    @staticmethod
    def rgb(images: torch.Tensor) -> torch.Tensor:
        """VGG wants 3 channels: a grey picture is repeated."""
        return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images

    def forward(self, images: torch.Tensor,
                features: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(pixel, perceptual), each of shape (N,), for images (N, C, S, S) in 0..1 (and their
        features, when the caller computed them once for several targets)."""
        pixel = (images - self.target).pow(2).mean(dim=(1, 2, 3))
        if self.config.perceptual_weight == 0:
            return pixel, torch.zeros_like(pixel)
        got = features if features is not None else self.features(self.rgb(images))
        perceptual = sum((got[n] - self.wanted[n]).pow(2).mean(dim=(1, 2, 3)) / self.scale[n] for n in self.wanted)
        return pixel, perceptual / len(self.wanted)

    def total(self, pixel: torch.Tensor, perceptual: torch.Tensor) -> torch.Tensor:
        """The weighted sum the optimisation minimises (without the prior)."""
        return self.config.pixel_weight * pixel + self.config.perceptual_weight * perceptual


def images_of(G: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """G's pictures in 0..1 (differentiable)."""
    return (G(z).float() + 1.0) * 0.5


@torch.no_grad()
def pick_starts(G: nn.Module, loss: ReconstructionLoss, config: ProjectionConfig,
                device: torch.device) -> torch.Tensor:
    """The `starts` best of `candidates` seeded random latents, (starts, nz), best first."""
    z = torch.randn(config.candidates, G.cfg.nz, generator=torch.Generator("cpu").manual_seed(config.seed))
    scores = torch.cat([loss.total(*loss(images_of(G, chunk.to(device)))) for chunk in z.split(64)])
    return z[scores.cpu().argsort()[: config.starts]].to(device)


def prior_penalty(z: torch.Tensor) -> torch.Tensor:
    """(|z|^2 / nz - 1)^2 per row: 0 on the shell where N(0, I) latents concentrate."""
    return (z.pow(2).mean(dim=1) - 1.0).pow(2)


def project(G: nn.Module, image: Image.Image, config: ProjectionConfig = ProjectionConfig(),
            stop: threading.Event | None = None, backbone: VGGFeatures | None = None) -> Iterator[ProjectionProgress]:
    """Invert G for a photo; yields progress records, the last one with done=True (see module doc)."""
    device = next(G.parameters()).device
    started = time.perf_counter()
    target = prepare_target(image, G.cfg.image_size, G.cfg.nc).to(device)
    backbone = backbone or load_backbone(config.backbone, device)
    loss = ReconstructionLoss(target, backbone, config).to(device)
    G.requires_grad_(False)
    # Per block, not around the loop: a generator may resume on another thread, and the setting is per thread.
    threads = config.cpu_threads if device.type == "cpu" else None
    with intra_op_threads(threads):
        z = pick_starts(G, loss, config, device).clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=config.lr)
    narrow_at = max(1, round(config.narrow_after * config.steps))
    step, stopped = 0, False
    while step < config.steps:
        with intra_op_threads(threads):
            total, best = _step(G, loss, z, optimiser, config)
        step += 1
        if step == narrow_at and z.shape[0] > 1:
            z, optimiser = keep_one_start(z, optimiser, int(total.argmin()), config.lr)
        stopped = stop is not None and stop.is_set()
        if stopped or step == config.steps:
            break
        if step % config.report_every == 0:
            yield _record(best, step, config.steps, started)
    with intra_op_threads(threads):
        final = _final(G, loss, z, config, step, started, stopped)
    yield final


def _step(G: nn.Module, loss: ReconstructionLoss, z: torch.Tensor, optimiser: torch.optim.Optimizer,
          config: ProjectionConfig) -> tuple[torch.Tensor, tuple]:
    """One Adam step on every start; (each start's loss before the step, the best start's record)."""
    pixel, perceptual = loss(images_of(G, z))
    total = loss.total(pixel, perceptual)
    optimiser.zero_grad(set_to_none=True)
    (total + config.prior_weight * prior_penalty(z)).sum().backward()
    best = _best(z, pixel, perceptual, total)
    optimiser.step()
    with torch.no_grad():
        z.clamp_(-MAX_LATENT, MAX_LATENT)  # a recipe holds |z_i| <= MAX_LATENT
    return total.detach(), best


def keep_one_start(z: torch.Tensor, optimiser: torch.optim.Adam, index: int,
              lr: float) -> tuple[torch.Tensor, torch.optim.Adam]:
    """Go on with start `index` only, with its Adam moments (the rows are independent)."""
    state = optimiser.state[z]
    kept = z.detach()[index: index + 1].clone().requires_grad_(True)
    narrowed = torch.optim.Adam([kept], lr=lr)
    narrowed.state[kept] = {"step": state["step"].clone(), "exp_avg": state["exp_avg"][index: index + 1].clone(),
                            "exp_avg_sq": state["exp_avg_sq"][index: index + 1].clone()}
    return kept, narrowed


def _best(z: torch.Tensor, pixel: torch.Tensor, perceptual: torch.Tensor, total: torch.Tensor) -> tuple:
    """The lowest-loss start of this step: (z (1, nz) on the CPU, total, pixel, perceptual)."""
    i = int(total.argmin())
    total, pixel, perceptual = total.detach(), pixel.detach(), perceptual.detach()
    return z[i: i + 1].detach().cpu().clone(), float(total[i]), float(pixel[i]), float(perceptual[i])


def _record(best: tuple, step: int, steps: int, started: float) -> ProjectionProgress:
    z, total, pixel, perceptual = best
    return ProjectionProgress(step=step, steps=steps, z=z, loss=total, pixel=pixel, perceptual=perceptual,
                              elapsed_s=time.perf_counter() - started)


@torch.no_grad()
def _final(G: nn.Module, loss: ReconstructionLoss, z: torch.Tensor, config: ProjectionConfig,
           step: int, started: float, stopped: bool) -> ProjectionProgress:
    """Score the starts after the last step and report the best one."""
    pixel, perceptual = loss(images_of(G, z.detach()))
    best = _best(z, pixel, perceptual, loss.total(pixel, perceptual))
    record = _record(best, step, config.steps, started)
    log.info("projection: %d steps, %d starts, pixel %.4f, perceptual %.3f, %.1f s%s", step, config.starts,
             record.pixel, record.perceptual, record.elapsed_s, " (stopped)" if stopped else "")
    return replace(record, done=True, stopped=stopped)


def run(G: nn.Module, image: Image.Image, config: ProjectionConfig = ProjectionConfig(),
        stop: threading.Event | None = None, backbone: VGGFeatures | None = None) -> ProjectionProgress:
    """Run `project` to the end; the final record."""
    *_, last = project(G, image, config, stop, backbone)
    return last


def distance(G: nn.Module, z: torch.Tensor, image: Image.Image, config: ProjectionConfig = ProjectionConfig(),
             backbone: VGGFeatures | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(pixel, perceptual) distances of G(z) (N latents) to the prepared photo, as the loss measures them."""
    device = next(G.parameters()).device
    target = prepare_target(image, G.cfg.image_size, G.cfg.nc).to(device)
    loss = ReconstructionLoss(target, backbone or load_backbone(config.backbone, device), config).to(device)
    with torch.no_grad():
        parts = [loss(images_of(G, chunk.to(device))) for chunk in z.split(64)]
    return torch.cat([p for p, _ in parts]).cpu(), torch.cat([q for _, q in parts]).cpu()


def nearest_seeds(G: nn.Module, images: list[Image.Image], seeds: int, config: ProjectionConfig = ProjectionConfig(),
                  backbone: VGGFeatures | None = None) -> list[tuple[int, float, float]]:
    """For each photo, the seed among 0..seeds-1 whose picture is closest by the same loss:
    (seed, pixel, perceptual). The seeds' pictures and features are computed once for all photos."""
    from gan.explorer.latent import sample_z

    device = next(G.parameters()).device
    backbone = backbone or load_backbone(config.backbone, device)
    losses = [ReconstructionLoss(prepare_target(im, G.cfg.image_size, G.cfg.nc).to(device), backbone, config).to(device)
              for im in images]
    parts: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in images]
    with torch.no_grad():
        for chunk in sample_z(list(range(seeds)), G.cfg.nz).split(64):
            pictures = images_of(G, chunk.to(device))
            features = losses[0].features(ReconstructionLoss.rgb(pictures))
            for loss, found in zip(losses, parts, strict=True):
                found.append(tuple(t.cpu() for t in loss(pictures, features)))
    best = []
    for loss, found in zip(losses, parts, strict=True):
        pixel, perceptual = torch.cat([p for p, _ in found]), torch.cat([q for _, q in found])
        i = int(loss.total(pixel, perceptual).argmin())
        best.append((i, float(pixel[i]), float(perceptual[i])))
    return best


def nearest_seed(G: nn.Module, image: Image.Image, seeds: int, config: ProjectionConfig = ProjectionConfig(),
                 backbone: VGGFeatures | None = None) -> tuple[int, float, float]:
    """The seed among 0..seeds-1 whose picture is closest to one photo: (seed, pixel, perceptual)."""
    return nearest_seeds(G, [image], seeds, config, backbone)[0]
