"""Progressive growing (Karras et al. 2018, "Progressive Growing of GANs") for the DCGAN pair.

Training starts at a low resolution (`grow_from`, e.g. 16 px) and doubles it until `image_size`:
each resolution trains for `grow_phase_steps` steps, then the next layer fades in over
`grow_fade_steps` steps, its weight `alpha` going from 0 to 1. Low-resolution steps cost a
fraction of a full-size step, and the coarse structure is settled before the details are learnt.

The growing networks hold the *plain* `Generator` / `Discriminator` layers under the same keys
(`main.*`), plus small side layers for the lower resolutions:
- G: `rgb.<R>`, a ConvTranspose2d(ch, nc, 4, 2, 1) + Tanh that turns the features of blocks 0..j
  (R/2 px) into an R px image, exactly what the plain network's last layer does at full size. While
  R fades in, G's output is `alpha * new + (1 - alpha) * nearest_upsample(old)`.
- D: `from_rgb.<R>`, a Conv2d(nc, ch, 4, 2, 1) + LeakyReLU that reads an R px image into the
  features the plain D has at R/2 px. While R fades in, D blends the features of the new path with
  those of the old one read from the 2x average-pooled image. Real images are downscaled to R (average
  pooling) and, during a fade, blended the same way as the fakes (the paper's choice).
Where we differ from the paper: DCGAN's layers (transposed 4x4 convolutions, batch norm) instead of
upsample + 3x3 convs with pixel norm; the DCGAN head both upsamples and maps to RGB; no minibatch
stddev, no equalised learning rate. At full size with alpha = 1 only the plain layers are used, so
the exported generator is the plain `Generator`; a run stopped earlier exports the plain `Generator`
of the resolution it has reached (same blocks, its side layer as the last layer, ngf scaled so that
the channel counts match).
The stage of a step is a pure function of the step number: a checkpoint resumes mid-fade exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gan.explorer.model import SUPPORTED_SIZES, DCGANConfig, Discriminator, Generator

MIN_RESOLUTION = 8  # the smallest stage: one up-sampling block of G after its 4x4 start


@dataclass(frozen=True)
class Stage:
    """What one training step runs at: the resolution and the newest layer's fade-in weight."""

    resolution: int
    alpha: float = 1.0  # < 1 while the layer of `resolution` fades in over the one of resolution / 2

    @property
    def fading(self) -> bool:
        """Whether the newest layer is still being blended in."""
        return self.alpha < 1.0


def start_resolutions(image_size: int) -> tuple[int, ...]:
    """The resolutions a run of `image_size` px may grow from (8 px up to half the size)."""
    return tuple(2 ** k for k in range(int(math.log2(MIN_RESOLUTION)), int(math.log2(image_size))))


def growth_end(image_size: int, grow_from: int, phase_steps: int, fade_steps: int) -> int:
    """The step count after which the run trains at full size only (0 when not growing)."""
    if not grow_from:
        return 0
    return int(math.log2(image_size // grow_from)) * (phase_steps + fade_steps)


class Growth:
    """The schedule of one run: which stage each step is in, and the data / sample resizing."""

    def __init__(self, image_size: int, grow_from: int, phase_steps: int, fade_steps: int) -> None:
        self.size, self.start, self.phase, self.fade = image_size, grow_from, phase_steps, fade_steps
        self.doublings = int(math.log2(image_size // grow_from))
        self.end = growth_end(image_size, grow_from, phase_steps, fade_steps)

    def stage_at(self, step: int) -> Stage:
        """The stage of the step with 0-based index `step`: [phase][fade][phase][fade]... then full size."""
        n, r = divmod(step, self.phase + self.fade)
        if n >= self.doublings:
            return Stage(self.size)
        if r < self.phase:
            return Stage(self.start * 2 ** n)
        return Stage(self.start * 2 ** (n + 1), (r - self.phase + 1) / self.fade)

    def since_fade(self, step: int) -> int:
        """Steps since the latest fade began (or since the start): the EMA's warm-up restarts there."""
        n, r = divmod(step, self.phase + self.fade)
        if n >= self.doublings:
            return step - (self.doublings - 1) * (self.phase + self.fade) - self.phase
        return r - self.phase if r >= self.phase else (r + self.fade if n else step)

    def segments(self) -> list[tuple[int, int, Stage]]:
        """(first step, end step, a stage) of each stretch of the schedule; fades stand as alpha 0.5."""
        spans, at = [], 0
        for n in range(self.doublings):
            spans += [(at, at + self.phase, Stage(self.start * 2 ** n)),
                      (at + self.phase, at + self.phase + self.fade, Stage(self.start * 2 ** (n + 1), 0.5))]
            at += self.phase + self.fade
        return [*spans, (at, 2 ** 62, Stage(self.size))]

    def work(self, first: int, end: int, costs: dict[Stage, float]) -> float:
        """The summed cost of steps first..end-1, each step costing `costs[its segment's stage]`."""
        return sum(max(0, min(end, b) - max(first, a)) * costs[stage] for a, b, stage in self.segments())

    def real_at(self, real: torch.Tensor, stage: Stage) -> torch.Tensor:
        """Full-size real images (N, C, S, S) as D sees them at `stage`: pooled, blended while fading."""
        if stage.resolution < real.shape[-1]:
            real = F.avg_pool2d(real, real.shape[-1] // stage.resolution)
        if stage.fading:
            coarse = F.interpolate(F.avg_pool2d(real, 2), scale_factor=2, mode="nearest")
            real = torch.lerp(coarse, real, stage.alpha)
        return real

    def upscale(self, images: torch.Tensor) -> torch.Tensor:
        """Images of a lower stage, nearest-neighbour upscaled to the full size (for sample grids)."""
        if images.shape[-1] == self.size:
            return images
        return F.interpolate(images, size=(self.size, self.size), mode="nearest")


def stage_costs(G: GrowingGenerator, D: GrowingDiscriminator, growth: Growth) -> dict[Stage, float]:
    """Each segment's multiply-adds of one G + D forward (batch 1), relative to the full-size stage:
    how much a step costs there (for the ETA and the time estimate)."""
    macs = [0]

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        spatial = inputs[0].shape[-2:] if isinstance(module, nn.ConvTranspose2d) else output.shape[-2:]
        macs[0] += module.weight.numel() * spatial.numel()

    hooks = [m.register_forward_hook(count) for net in (G, D) for m in net.modules()
             if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    saved, modes, costs = (G.stage, D.stage), (G.training, D.training), {}
    G.eval(), D.eval()  # no batch-norm statistics change
    try:
        with torch.no_grad():
            for _, _, stage in growth.segments():
                G.set_stage(stage)
                D.set_stage(stage)
                macs[0] = 0
                D(G(torch.zeros(1, G.cfg.nz, device=next(G.parameters()).device)))
                costs[stage] = float(macs[0])
    finally:
        for hook in hooks:
            hook.remove()
        G.set_stage(saved[0])
        D.set_stage(saved[1])
        G.train(modes[0]), D.train(modes[1])
    full = costs[Stage(growth.size)]
    return {stage: cost / full for stage, cost in costs.items()}


def _head(cin: int, nc: int) -> nn.Sequential:
    """G's side layer for a lower resolution: the plain G's last layer, on earlier features."""
    return nn.Sequential(nn.ConvTranspose2d(cin, nc, 4, 2, 1, bias=False), nn.Tanh())


def _from_rgb(nc: int, cout: int) -> nn.Sequential:
    """D's side layer for a lower resolution: the plain D's first layer, into later features."""
    return nn.Sequential(nn.Conv2d(nc, cout, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True))


class GrowingGenerator(nn.Module):
    """The plain Generator's layers (same keys) plus `rgb.<R>` heads; runs at the stage set by `set_stage`."""

    def __init__(self, config: DCGANConfig, grow_from: int) -> None:
        super().__init__()
        self.cfg = config
        self.main = Generator(config).main
        n_up = config.n_up
        # block j (main[3j:3j+3]) outputs 4 * 2**j px with ngf * 2**(n_up - 1 - j) channels
        self.rgb = nn.ModuleDict({str(8 * 2 ** j): _head(config.ngf * 2 ** (n_up - 1 - j), config.nc)
                                  for j in range(n_up - 1) if 8 * 2 ** j >= grow_from})
        self.stage = Stage(config.image_size)

    def set_stage(self, stage: Stage) -> None:
        """The resolution and fade-in weight of the next forwards."""
        self.stage = stage

    def _head(self, resolution: int) -> nn.Module:
        return self.main[-2:] if resolution == self.cfg.image_size else self.rgb[str(resolution)]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        j = int(math.log2(self.stage.resolution)) - 3  # blocks 0..j feed the head of this resolution
        h = self.main[: 3 * j](z)
        new = self._head(self.stage.resolution)(self.main[3 * j: 3 * j + 3](h))
        if not self.stage.fading:
            return new
        old = F.interpolate(self._head(self.stage.resolution // 2)(h), scale_factor=2, mode="nearest")
        return torch.lerp(old, new, self.stage.alpha)

    def plain(self, resolution: int) -> Generator:
        """The plain Generator of `resolution` px with these weights (full size: the same layers)."""
        if resolution not in SUPPORTED_SIZES:
            raise ValueError(f"A generator of {resolution} px cannot be exported (sizes: {SUPPORTED_SIZES}).")
        c, scale = self.cfg, self.cfg.image_size // resolution
        plain = Generator(DCGANConfig(image_size=resolution, nc=c.nc, nz=c.nz, ngf=c.ngf * scale, ndf=c.ndf))
        j = int(math.log2(resolution)) - 3
        state = {k: v for k, v in self.main.state_dict().items() if int(k.split(".")[0]) < 3 * j + 3}
        head = self._head(resolution)[0].state_dict()
        state.update({f"{3 * j + 3}.{k}": v for k, v in head.items()})
        plain.main.load_state_dict(state, strict=True)
        return plain


class GrowingDiscriminator(nn.Module):
    """The plain Discriminator's layers (same keys) plus `from_rgb.<R>` inputs; staged like G."""

    def __init__(self, config: DCGANConfig, grow_from: int) -> None:
        super().__init__()
        self.cfg = config
        self.main = Discriminator(config).main
        n_up, size = config.n_up, config.image_size
        # at R = size / 2**s the input layer must give the features of block s: ndf * 2**s channels
        self.from_rgb = nn.ModuleDict({str(size // 2 ** s): _from_rgb(config.nc, config.ndf * 2 ** s)
                                       for s in range(1, n_up) if size // 2 ** s >= grow_from})
        self.stage = Stage(size)

    def set_stage(self, stage: Stage) -> None:
        """The resolution and fade-in weight of the next forwards."""
        self.stage = stage

    def _input(self, resolution: int) -> nn.Module:
        return self.main[:2] if resolution == self.cfg.image_size else self.from_rgb[str(resolution)]

    def _block(self, s: int) -> nn.Module:
        """Block s (1 <= s < n_up) maps size / 2**s px features to size / 2**(s + 1) px."""
        return self.main[3 * s - 1: 3 * s + 2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = int(math.log2(self.cfg.image_size // self.stage.resolution))
        h = self._input(self.stage.resolution)(x)
        if self.stage.fading:
            new = self._block(s + 1)(h)  # features at R / 4, as the old input layer gives them
            old = self._input(self.stage.resolution // 2)(F.avg_pool2d(x, 2))
            h, s = torch.lerp(old, new, self.stage.alpha), s + 1
        for b in range(s + 1, self.cfg.n_up):
            h = self._block(b)(h)
        return self.main[-1](h).flatten()


def build_networks(config: DCGANConfig, grow_from: int = 0) -> tuple[nn.Module, nn.Module]:
    """(G, D): the plain pair, or the growing pair when `grow_from` is a start resolution."""
    if not grow_from:
        return Generator(config), Discriminator(config)
    return GrowingGenerator(config, grow_from), GrowingDiscriminator(config, grow_from)
