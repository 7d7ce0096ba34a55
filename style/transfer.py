"""The optimisation loop of neural style transfer (Gatys et al.), coarse to fine, yielding records.

`stylize(content, styles, weights, config, device)` optimises an image so that its VGG activations
match the content image's (content loss) and its Gram matrices match the styles' (style loss),
with a total-variation term. It starts at `min_size` px and grows by sqrt(2) to `size` (as in
crowsonkb/style-transfer-pytorch, not Gatys et al. 2016's two-scale scheme), spending fewer
iterations at the top. It yields a `StyleStep` every iteration; the last one carries the result.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from PIL import Image

from common.backbones import BACKBONES, POOLINGS, FeatureExtractor, load_backbone, resolve_backbone
from common.device import configure_backend
from style import instant, losses
from style.colour import luminance, merge_luminance, pil_to_tensor, tensor_to_pil

log = logging.getLogger(__name__)

GATYS_STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
OPTIMISERS, INITS, STYLE_LOSSES = ("lbfgs", "adam"), ("content", "noise", "grey", "instant"), ("gram", "w2")


# (low, high) of the numeric settings a visitor picks: validation and the UI's sliders read these.
LIMITS = {"iterations": (1, 10_000), "size": (32, 4096), "style_scale": (0.1, 4.0)}


def _within(name: str, value: float, what: str, unit: str = "") -> tuple[bool, str]:
    """(value within LIMITS[name], the sentence that says the range)."""
    low, high = LIMITS[name]
    return low <= value <= high, f"{what} must be between {low:g} and {high:g}{unit}."


@dataclass(frozen=True)
class StyleConfig:
    """Every knob of a style-transfer run, with defaults; validated on construction."""

    content_weight: float = 1.0
    # Losses are normalised (style/losses.py), hence not 1e6. 0.5 (was 2): from the instant picture,
    # which already carries the painting, a lighter style term keeps its palette and layout and adds
    # fewer of vgg16-hed's edge "worms" (docs/style.md, the settings grid).
    style_weight: float = 0.5
    tv_weight: float = 0.1
    iterations: int = 120  # in all, over every scale
    size: int = 256  # longest side of the result, px
    min_size: int = 128  # first scale of the coarse-to-fine schedule
    multiscale: bool = True
    top_share: float = 0.5  # the top scale gets this multiple of a lower scale's iterations
    optimiser: str = "lbfgs"
    adam_lr: float = 0.02
    init: str = "instant"  # the feed-forward painter's picture (style/instant.py); or content, noise, grey
    instant_strength: float = 1.0  # the instant start's strength (InstantConfig.strength): the picture the tab shows
    preserve_colours: bool = False
    style_scale: float = 1.0  # style image size relative to the output
    backbone: str = "auto"
    pooling: str = "avg"  # Gatys et al.: average pooling gives slightly smoother results
    style_loss: str = "gram"
    content_layers: tuple[str, ...] = ("conv4_2",)
    style_layers: tuple[tuple[str, float], ...] = tuple((n, 1.0) for n in GATYS_STYLE_LAYERS)
    preview_every: int = 5
    seed: int = 0
    bf16_on_gpu: bool = True  # CUDA only: VGG's forward under bfloat16 autocast; Grams and losses stay fp32

    def __post_init__(self) -> None:
        checks = [
            (self.content_weight >= 0, "Content weight must be 0 or more."),
            (self.style_weight >= 0, "Style weight must be 0 or more."),
            (self.tv_weight >= 0, "Variation weight must be 0 or more."),
            _within("iterations", self.iterations, "Iterations"),
            _within("size", self.size, "Output size", " px"),
            (32 <= self.min_size, "The smallest scale must be at least 32 px."),
            (0 < self.top_share <= 100, "top_share must be in (0, 100]."),
            (self.optimiser in OPTIMISERS, f"Optimiser must be one of {OPTIMISERS}."),
            (self.adam_lr > 0, "Adam's step size must be positive."),
            (self.init in INITS, f"Init must be one of {INITS}."),
            (0 <= self.instant_strength <= instant.InstantConfig.max_strength,
             f"The instant start's strength must be between 0 and {instant.InstantConfig.max_strength}."),
            _within("style_scale", self.style_scale, "Style scale"),
            (self.backbone in BACKBONES, f"Backbone must be one of {BACKBONES}."),
            (self.pooling in POOLINGS, f"Pooling must be one of {POOLINGS}."),
            (self.style_loss in STYLE_LOSSES, f"Style loss must be one of {STYLE_LOSSES}."),
            (len(self.content_layers) > 0, "At least one content layer is needed."),
            (len(self.style_layers) > 0 and all(w >= 0 for _, w in self.style_layers),
             "At least one style layer is needed, with weights of 0 or more."),
            (self.preview_every >= 1, "Preview interval must be at least 1 iteration."),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def scales(self) -> list[int]:
        """Longest sides of the schedule: from min_size up by sqrt(2), ending exactly at size."""
        if not self.multiscale or self.size <= self.min_size:
            return [self.size]
        sizes, i = [], 0
        while round(self.size / 2 ** (i / 2)) >= self.min_size:
            sizes.append(round(self.size / 2 ** (i / 2)))
            i += 1
        return sorted(set(sizes))

    def iteration_plan(self) -> list[int]:
        """Iterations per scale: equal shares below, `top_share` of one at the top; sums to iterations."""
        n = len(self.scales())
        share = self.iterations / (n - 1 + self.top_share)
        plan = [max(1, round(share)) for _ in range(n - 1)] + [0]
        plan[-1] = max(1, self.iterations - sum(plan[:-1]))
        return plan


@dataclass
class StyleStep:
    """One iteration's record; `result` (full size) is set only on the last one."""

    iteration: int
    total: int
    scale: tuple[int, int]  # (width, height) being optimised
    losses: dict[str, float]
    elapsed: float
    eta: float
    backbone: str
    preview: Image.Image | None = None
    result: Image.Image | None = None
    image: torch.Tensor | None = None  # the current image (1, 3, H, W), no copy: valid until the next step
    stopped: bool = False

    @property
    def done(self) -> bool:
        """True on the last record."""
        return self.result is not None


@dataclass
class Targets:
    """What the image must match at one scale."""

    content: dict[str, torch.Tensor]
    style: dict[str, object] = field(default_factory=dict)  # Gram matrix or MomentTarget per layer


def fit_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """(w, h) scaled so that the longest side is `longest` (aspect kept, at least 16 px)."""
    ratio = longest / max(width, height)
    return max(16, round(width * ratio)), max(16, round(height * ratio))


def prepare(image: Image.Image, size: tuple[int, int], grey: bool, device) -> torch.Tensor:
    """PIL -> (1, 3, H, W) in 0..1 at `size`; grey = luminance repeated on 3 channels."""
    x = pil_to_tensor(image.convert("RGB").resize(size, Image.LANCZOS)).to(device)
    return luminance(x).expand(-1, 3, -1, -1).contiguous() if grey else x


def blend_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """Style blend weights normalised to sum 1 (equal when not given)."""
    if not n:
        raise ValueError("Give at least one style image.")
    weights = list(weights) if weights else [1.0] * n
    if len(weights) != n or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("Style blend weights must be one non-negative number per style, not all zero.")
    return [w / sum(weights) for w in weights]


def use_bf16(config: StyleConfig, device: torch.device) -> bool:
    """bf16 autocast for VGG's forward: on CUDA GPUs with bf16 tensor cores (Ampere and newer) only.
    Older cards (T4, V100) would emulate it, slower than fp32; CPUs here have no bf16 units."""
    return (config.bf16_on_gpu and device.type == "cuda" and torch.cuda.is_available()
            and torch.cuda.get_device_capability(device)[0] >= 8)


def _features(extract: FeatureExtractor, image: torch.Tensor, config: StyleConfig) -> dict[str, torch.Tensor]:
    """VGG activations, under bf16 autocast where use_bf16 says so (targets and iterate alike, so
    that the content loss starts at zero and the style loss compares like with like)."""
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16(config, image.device)):
        return extract(image)


@torch.inference_mode()
def _statistics(extract: FeatureExtractor, config: StyleConfig, content: torch.Tensor,
                styles: list[torch.Tensor], blend: list[float]) -> tuple[dict, dict]:
    """Content activations and blended style statistics (Gram, or W2 moments) without autograd."""
    content_feats = _features(extract, content, config)
    content_t = {n: content_feats[n].float() for n in config.content_layers}
    style_t: dict[str, object] = {}
    for image, weight in zip(styles, blend):
        feats = _features(extract, image, config)
        for name, _ in config.style_layers:
            old = style_t.get(name)
            if config.style_loss == "gram":
                style_t[name] = losses.gram(feats[name]) * weight + (0 if old is None else old)
            else:  # mean and second raw moment blend linearly (Crowson)
                stat = losses.moments(feats[name])
                style_t[name] = tuple(s * weight + o for s, o in zip(stat, old or (0, 0)))
    if config.style_loss == "w2":
        style_t = {n: losses.moment_target(*m) for n, m in style_t.items()}
    return content_t, style_t


def _plain(value):
    """Clone inference-mode tensors (also inside a MomentTarget) so autograd may save them."""
    if torch.is_tensor(value):
        return value.clone()
    return losses.MomentTarget(*(v.clone() for v in (value.mean, value.cov, value.cov_sqrt, value.scale)))


def compute_targets(extract: FeatureExtractor, config: StyleConfig, content: torch.Tensor,
                    styles: list[torch.Tensor], blend: list[float]) -> Targets:
    """The targets of one scale (computed once per scale, under inference_mode)."""
    content_t, style_t = _statistics(extract, config, content, styles, blend)
    return Targets({k: _plain(v) for k, v in content_t.items()}, {k: _plain(v) for k, v in style_t.items()})


def objective(extract: FeatureExtractor, image: torch.Tensor, targets: Targets,
              config: StyleConfig) -> dict[str, torch.Tensor]:
    """Weighted content, style and TV losses of `image` (3 channels, 0..1) and their total."""
    # bf16 halves the convolutions' cost on tensor-core GPUs; losses.gram and the MSEs cast to fp32,
    # where the sums over many activations need the mantissa.
    feats = _features(extract, image, config)
    content = sum(losses.content_loss(feats[n], t) for n, t in targets.content.items()) / len(targets.content)
    style_fn = losses.gram_style_loss if config.style_loss == "gram" else losses.w2_style_loss
    layer_weights = dict(config.style_layers)
    norm = sum(layer_weights.values()) or 1.0
    style = sum(style_fn(feats[n], t) * layer_weights[n] for n, t in targets.style.items()) / norm
    parts = {"content": config.content_weight * content, "style": config.style_weight * style,
             "tv": config.tv_weight * losses.tv_loss(image) * 100.0}  # x100: TV of a photo is ~1e-2
    parts["total"] = parts["content"] + parts["style"] + parts["tv"]
    return parts


def initial_image(content: torch.Tensor, config: StyleConfig, channels: int,
                  start_picture: Image.Image | None = None) -> torch.Tensor:
    """The starting image at the first scale: the content, noise, flat grey, or the instant picture."""
    if config.init == "instant":
        if start_picture is None:
            raise ValueError("init='instant' needs the instant picture.")
        picture = prepare(start_picture, (content.shape[-1], content.shape[-2]), False, content.device)
        start = luminance(picture) if channels == 1 else picture
    elif config.init == "content":
        start = luminance(content) if channels == 1 else content.clone()
    else:
        generator = torch.Generator().manual_seed(config.seed)
        shape = (1, channels, *content.shape[-2:])
        noise = torch.rand(shape, generator=generator).to(content.device)
        start = noise if config.init == "noise" else 0.5 + (noise - 0.5) / 255
    return start.contiguous()


def instant_picture(content: Image.Image, styles: Sequence[Image.Image], blend: list[float],
                    config: StyleConfig, device) -> Image.Image:
    """The feed-forward painter's picture at the run's full size (`instant_strength`, the same blend): the
    refinement's starting point, shrunk to each scale's size (strokes painted at the final scale)."""
    limits = instant.InstantConfig()
    side = min(max(limits.min_size, config.size), limits.max_side(device))  # prepare() resizes from there
    return instant.paint(content, styles, blend, instant.InstantConfig(size=side, strength=config.instant_strength),
                         device)


def make_optimiser(image: torch.Tensor, config: StyleConfig) -> torch.optim.Optimizer:
    """L-BFGS doing one function evaluation per step (so we can yield every iteration), or Adam."""
    if config.optimiser == "lbfgs":
        return torch.optim.LBFGS([image], lr=1.0, max_iter=1, history_size=50)
    return torch.optim.Adam([image], lr=config.adam_lr)


class _Clock:
    """Elapsed time and an ETA from cost per megapixel-iteration measured so far."""

    def __init__(self, plan: list[int], sizes: list[tuple[int, int]]) -> None:
        self.start, self.work_done, self.plan, self.sizes = time.perf_counter(), 0.0, plan, sizes

    def tick(self, scale_index: int, done_in_scale: int) -> tuple[float, float]:
        """Record one iteration at `scale_index`; return (elapsed, eta) in seconds."""
        w, h = self.sizes[scale_index]
        self.work_done += w * h / 1e6
        elapsed = time.perf_counter() - self.start
        left = (self.plan[scale_index] - done_in_scale) * w * h / 1e6
        left += sum(n * sw * sh / 1e6 for n, (sw, sh) in zip(self.plan[scale_index + 1:], self.sizes[scale_index + 1:]))
        return elapsed, elapsed / self.work_done * left


def stylize(content: Image.Image, styles: Sequence[Image.Image], weights: Sequence[float] | None = None,
            config: StyleConfig | None = None, device: torch.device | str = "cpu",
            stop_event: threading.Event | None = None) -> Iterator[StyleStep]:
    """Paint `content` in the blended style of `styles`; yield a StyleStep per iteration."""
    config = config or StyleConfig()
    configure_backend(device)
    blend = blend_weights(weights, len(styles))
    backbone_id = resolve_backbone(config.backbone)
    with torch.random.fork_rng(devices=[]):  # building a backbone draws layer inits: the caller's RNG stays as it was
        backbone = load_backbone(backbone_id, device, config.pooling, allow_download=config.backbone != "auto")
    layers = list(config.content_layers) + [n for n, _ in config.style_layers]
    extract = FeatureExtractor(backbone, layers)
    sizes = [fit_size(*content.size, s) for s in config.scales()]
    plan = config.iteration_plan()
    clock, channels = _Clock(plan, sizes), (1 if config.preserve_colours else 3)
    image, iteration, total = None, 0, sum(plan)  # the only random draw, a noise init, has its own generator
    start = instant_picture(content, styles, blend, config, device) if config.init == "instant" else None
    for index, (size, its) in enumerate(zip(sizes, plan)):
        content_t = prepare(content, size, config.preserve_colours, device)
        style_ts = [prepare(s, fit_size(*s.size, round(max(size) * config.style_scale)), config.preserve_colours,
                            device) for s in styles]
        targets = compute_targets(extract, config, content_t, style_ts, blend)
        image = initial_image(content_t, config, channels, start) if image is None else resize(image, size)
        image.requires_grad_(True)
        optimiser = make_optimiser(image, config)
        for step in range(1, its + 1):
            parts = optimise_step(extract, image, targets, config, optimiser)
            iteration += 1
            elapsed, eta = clock.tick(index, step)
            last = iteration == total or (stop_event is not None and stop_event.is_set())
            record = StyleStep(iteration, total, size, parts, elapsed, eta, backbone_id, image=as_rgb(image.detach()))
            if last:
                record.result, record.stopped = finish(image, content, config, device), iteration < total
                yield record
                return
            if iteration % config.preview_every == 0 or step == its:
                record.preview = tensor_to_pil(as_rgb(image.detach()))
            yield record


def optimise_step(extract, image: torch.Tensor, targets: Targets, config: StyleConfig,
                  optimiser: torch.optim.Optimizer) -> dict[str, float]:
    """One function evaluation + update; keeps the image in 0..1; returns the losses before the step."""
    record: dict[str, float] = {}

    def closure() -> torch.Tensor:
        optimiser.zero_grad(set_to_none=True)
        parts = objective(extract, as_rgb(image), targets, config)
        parts["total"].backward()
        record.update({k: float(v.detach()) for k, v in parts.items()})
        return parts["total"]

    optimiser.step(closure)
    with torch.no_grad():
        image.clamp_(0, 1)  # box constraint, as in the PyTorch tutorial
    return record


def as_rgb(image: torch.Tensor) -> torch.Tensor:
    """A 1-channel luminance image repeated on 3 channels (VGG wants RGB); RGB unchanged."""
    return image.expand(-1, 3, -1, -1) if image.shape[1] == 1 else image


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of the current image to (w, h) for the next scale; a fresh contiguous leaf."""
    out = F.interpolate(image.detach(), size=(size[1], size[0]), mode="bicubic", align_corners=False)
    return out.clamp(0, 1).contiguous()  # L-BFGS flattens the parameter with .view: keep it contiguous


def finish(image: torch.Tensor, content: Image.Image, config: StyleConfig, device) -> Image.Image:
    """The result at full size; with preserve_colours, the content's chroma under the new luminance."""
    final = image.detach()
    if config.preserve_colours:
        size = (final.shape[-1], final.shape[-2])
        final = merge_luminance(final, prepare(content, size, False, device))
    return tensor_to_pil(final)


def estimate_seconds(config: StyleConfig, seconds_per_megapixel_iteration: float,
                     aspect: float = 1.0) -> float:
    """Rough run time of `config` given a measured cost per megapixel-iteration (for the UI)."""
    work = 0.0
    for s, n in zip(config.scales(), config.iteration_plan()):
        w, h = fit_size(round(1000 * aspect), 1000, s)
        work += n * w * h / 1e6
    return work * seconds_per_megapixel_iteration
