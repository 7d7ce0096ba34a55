"""Instant style: Magenta's feed-forward painter (Ghiasi et al. 2017) and Dumoulin et al.'s 26 presets.

One forward pass instead of an optimisation: the style predictor turns a painting into a
100-number style vector, the painter paints the photo with it. What this engine adds to the
original (which ran at a fixed 384x384 and scaled the result up):

- the photo is painted at its own resolution (up to `InstantConfig.max_side` for the device);
- strength moves the style vector from the photo's own (0) to the painting's (1) and beyond (1.5);
- several paintings mix by weights of their vectors; the 26 presets mix by weights of their norms;
- colour preservation keeps the photo's chroma under the painted luminance (YIQ, style/colour.py);
- `paint_frames` paints a whole animation with one style, in batches.

Models load lazily (fetched on first use, like every weight here) and are cached per model id and
device; style vectors are cached per picture, so moving a slider repaints without re-reading paintings.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from style.colour import merge_luminance, pil_to_tensor, tensor_to_pil

log = logging.getLogger(__name__)

PREDICTOR_ID, PAINTER_ID, PRESETS_ID = "magenta-style-predictor", "magenta-style-painter", "magenta-26-styles"
NUM_PRESETS = 26


@dataclass(frozen=True)
class InstantConfig:
    """Every default and limit of instant painting; validated on construction."""

    strength: float = 1.0  # 0: the photo's own style vector; 1: the painting's; up to max_strength
    max_strength: float = 1.5
    preserve_colours: bool = False
    size: int | None = None  # longest side of the result, px; None: the photo's own, capped by max_side
    min_size: int = 64
    max_side_cpu: int = 1024
    max_side_gpu: int = 2048
    style_size: int = 256  # the predictor's input: the painting's centre square at this size (as trained)
    fake_quant: bool = False  # reproduce the int8 graph's rounding (same look, slower, stepped strength)
    batch: int = 4  # frames per forward pass in paint_frames
    # Intra-op threads for one picture on a CPU (the caller applies it with common.device.intra_op_threads,
    # as Explore does): ~60 small operations a picture, each a barrier for a thread team; on the shared
    # 2-core machine two threads were 3-5x slower than one under load (bench.style_instant shows both).
    cpu_threads: int = 1

    def __post_init__(self) -> None:
        checks = [
            (0 <= self.strength <= self.max_strength, f"Strength must be between 0 and {self.max_strength}."),
            (self.size is None or self.min_size <= self.size <= self.max_side_gpu,
             f"Size must be between {self.min_size} and {self.max_side_gpu} px."),
            (32 <= self.min_size <= self.max_side_cpu <= self.max_side_gpu, "Size limits are inconsistent."),
            (self.style_size >= 64, "The painting must be read at 64 px or more."),
            (self.batch >= 1, "Batch must be at least 1."),
            (self.cpu_threads >= 1, "CPU threads must be at least 1."),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def max_side(self, device: torch.device | str) -> int:
        """The largest longest side painted on this kind of device."""
        return self.max_side_gpu if torch.device(device).type in ("cuda", "mps") else self.max_side_cpu

    def output_size(self, width: int, height: int, device: torch.device | str) -> tuple[int, int]:
        """(w, h) of the result: the photo's own size (or `size`), longest side within the device's limit."""
        limit = self.max_side(device)
        if self.size is not None and self.size > limit:
            raise ValueError(f"Size {self.size} px is more than this device paints ({limit} px on "
                             f"{torch.device(device).type}).")
        longest = min(self.size or max(width, height), limit)
        ratio = longest / max(width, height)
        return max(16, round(width * ratio)), max(16, round(height * ratio))


# --- models --------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=6)
def load_model(model_id: str, device: str = "cpu", fake_quant: bool = False) -> torch.nn.Module:
    """One of the three networks on `device` (fetched and converted on first use); shared, do not modify."""
    from weights.fetch import ensure

    folder = ensure(model_id)
    if model_id == PREDICTOR_ID:
        from style.predictor import load_predictor
        model = load_predictor(folder, fake_quant)
    elif model_id == PAINTER_ID:
        from style.painter import load_painter
        model = load_painter(folder, fake_quant)
    elif model_id == PRESETS_ID:
        from style.presets import load_presets
        model = load_presets(folder)
    else:
        raise KeyError(f"Unknown instant-style model {model_id!r}.")
    log.info("loaded %s on %s%s", model_id, device, " (fake-quantised)" if fake_quant else "")
    return model.to(device)


def models(config: InstantConfig, device: torch.device | str):
    """(predictor, painter) for this config and device."""
    key = str(torch.device(device))
    return load_model(PREDICTOR_ID, key, config.fake_quant), load_model(PAINTER_ID, key, config.fake_quant)


# --- style vectors -------------------------------------------------------------------------------

class VectorCache:
    """A small thread-safe LRU of style vectors keyed by the picture's pixels."""

    def __init__(self, capacity: int = 64) -> None:
        self.capacity, self.items, self.lock = capacity, OrderedDict(), threading.Lock()

    def get(self, key: tuple):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
            return None

    def put(self, key: tuple, value: torch.Tensor) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.capacity:
                self.items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()


VECTORS = VectorCache()


def picture_key(image: Image.Image) -> str:
    """A digest of a picture's pixels (two uploads of the same file share their style vector)."""
    rgb = image.convert("RGB")
    return hashlib.blake2b(rgb.tobytes() + repr(rgb.size).encode(), digest_size=16).hexdigest()


def style_crop(image: Image.Image, side: int) -> Image.Image:
    """The centre square of a picture at `side` px (Lanczos), as the predictor was trained to read it."""
    rgb = image.convert("RGB")
    edge = min(rgb.size)
    left, top = (rgb.width - edge) // 2, (rgb.height - edge) // 2
    return rgb.crop((left, top, left + edge, top + edge)).resize((side, side), Image.LANCZOS)


@torch.inference_mode()
def style_vector(painting: Image.Image, config: InstantConfig | None = None,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """The 100-number style vector (1, 100) of any picture (cached by its pixels)."""
    config = config or InstantConfig()
    key = (picture_key(painting), config.style_size, str(torch.device(device)), config.fake_quant)
    cached = VECTORS.get(key)
    if cached is None:
        predictor, _ = models(config, device)
        cached = predictor(pil_to_tensor(style_crop(painting, config.style_size)).to(device))
        VECTORS.put(key, cached)
    return cached


def normalised(weights: Sequence[float] | None, n: int, what: str = "painting") -> list[float]:
    """Blend weights summing to 1 (equal when not given)."""
    if n == 0:
        raise ValueError(f"Give at least one {what}.")
    weights = list(weights) if weights is not None else [1.0] * n
    if len(weights) != n or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"Give one weight of 0 or more per {what}, not all zero.")
    return [w / sum(weights) for w in weights]


def mix_vectors(vectors: Sequence[torch.Tensor], weights: Sequence[float] | None = None) -> torch.Tensor:
    """The weighted mean of style vectors (Ghiasi et al.: style vectors blend linearly)."""
    return sum(v * w for v, w in zip(vectors, normalised(weights, len(vectors))))


def target_vector(photo_vector: torch.Tensor, paintings_vector: torch.Tensor, strength: float) -> torch.Tensor:
    """own + strength * (painting - own): 0 keeps the photo's style, 1 the painting's, above 1 exaggerates."""
    return photo_vector + strength * (paintings_vector - photo_vector)


# --- painting ------------------------------------------------------------------------------------

def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad (B, C, H, W) at the bottom and right to sides that are multiples of `multiple`."""
    pad_h, pad_w = -x.shape[-2] % multiple, -x.shape[-1] % multiple
    if not (pad_h or pad_w):
        return x
    if min(x.shape[-2:]) <= max(pad_h, pad_w):  # reflection needs more pixels than it pads
        return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")


def prepare_photo(photo: Image.Image, config: InstantConfig, device) -> torch.Tensor:
    """The photo as (1, 3, H, W) in 0..1 on `device`, at the size the config asks for."""
    rgb = photo.convert("RGB")
    size = config.output_size(*rgb.size, device)
    if size != rgb.size:
        rgb = rgb.resize(size, Image.LANCZOS)
    return pil_to_tensor(rgb).to(device)


@torch.inference_mode()
def run_painter(painter, images: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """Paint (B, 3, H, W) images with one style vector (1, 100); any H, W (padded, then cropped)."""
    params = painter.style_params(vector)
    height, width = images.shape[-2:]
    padded = pad_to_multiple(images, painter.multiple)
    return painter(padded, params)[..., :height, :width]


def finish(painted: torch.Tensor, photo: torch.Tensor, config: InstantConfig) -> torch.Tensor:
    """Colour preservation: the painted luminance under the photo's chroma (YIQ)."""
    return merge_luminance(painted, photo) if config.preserve_colours else painted


def paintings_vector(paintings: Sequence[Image.Image], weights: Sequence[float] | None,
                     config: InstantConfig, device) -> torch.Tensor:
    """The mixed style vector of one or more paintings."""
    return mix_vectors([style_vector(p, config, device) for p in paintings], weights)


def paint(photo: Image.Image, paintings: Sequence[Image.Image], weights: Sequence[float] | None = None,
          config: InstantConfig | None = None, device: torch.device | str = "cpu") -> Image.Image:
    """The photo painted in the (mixed) style of `paintings`, at the photo's own resolution."""
    config = config or InstantConfig()
    _, painter = models(config, device)
    target = paintings_vector(paintings, weights, config, device)
    if config.strength != 1.0:
        target = target_vector(style_vector(photo, config, device), target, config.strength)
    image = prepare_photo(photo, config, device)
    return tensor_to_pil(finish(run_painter(painter, image, target), image, config))


def paint_frames(frames: Sequence[Image.Image], paintings: Sequence[Image.Image],
                 weights: Sequence[float] | None = None, config: InstantConfig | None = None,
                 device: torch.device | str = "cpu") -> list[Image.Image]:
    """Every frame painted with one style (the vectors computed once), `config.batch` frames a pass.

    With strength below 1 the 'own' vector is the mean of the frames' vectors, so that the whole
    animation shares one style and does not flicker from frame to frame.
    """
    config = config or InstantConfig()
    if not frames:
        return []
    _, painter = models(config, device)
    target = paintings_vector(paintings, weights, config, device)
    if config.strength != 1.0:
        own = torch.cat([style_vector(f, config, device) for f in frames]).mean(0, keepdim=True)
        target = target_vector(own, target, config.strength)
    return in_batches(frames, config, device, lambda images: run_painter(painter, images, target))


def in_batches(frames: Sequence[Image.Image], config: InstantConfig, device, paint_fn) -> list[Image.Image]:
    """Frames (one size) -> paint_fn on `config.batch` of them at a time -> pictures."""
    images = [prepare_photo(f, config, device) for f in frames]
    if len({tuple(i.shape) for i in images}) > 1:
        raise ValueError("All frames must have the same size.")
    stacked, out = torch.cat(images), []
    for start in range(0, len(images), config.batch):
        chunk = stacked[start: start + config.batch]
        out += [tensor_to_pil(p[None]) for p in finish(paint_fn(chunk), chunk, config)]
    return out


# --- the 26 presets (Dumoulin et al. 2017) -------------------------------------------------------

def preset_labels() -> list[str]:
    """Honest labels: the styles came with no names or source paintings, so they are numbered 0-25."""
    return [f"Preset {i}" for i in range(NUM_PRESETS)]


def preset_weights(weights: dict[int, float] | Sequence[float] | int) -> torch.Tensor:
    """A preset index, {index: weight}, or 26 weights -> 26 weights summing to 1."""
    if isinstance(weights, int):
        weights = {weights: 1.0}
    if isinstance(weights, dict):
        if any(not 0 <= int(i) < NUM_PRESETS for i in weights):
            raise ValueError(f"Preset numbers go from 0 to {NUM_PRESETS - 1}.")
        dense = [0.0] * NUM_PRESETS
        for i, w in weights.items():
            dense[int(i)] += float(w)
        weights = dense
    return torch.tensor(normalised(weights, NUM_PRESETS, "preset"), dtype=torch.float32)


@torch.inference_mode()
def run_presets(presets, images: torch.Tensor, weights: torch.Tensor, strength: float) -> torch.Tensor:
    """(B, 3, H, W) painted with mixed presets. Strength blends pixels here (the presets have no style
    vector to move along): 0 is the photo, 1 the preset, above 1 exaggerates the change."""
    height, width = images.shape[-2:]
    painted = presets(pad_to_multiple(images, presets.multiple), weights)[..., :height, :width]
    return (images + strength * (painted - images)).clamp(0, 1)


def paint_preset(photo: Image.Image, weights: dict[int, float] | Sequence[float] | int = 0,
                 config: InstantConfig | None = None, device: torch.device | str = "cpu") -> Image.Image:
    """The photo painted with one preset (an index) or a mix ({index: weight} or 26 weights)."""
    config = config or InstantConfig()
    presets = load_model(PRESETS_ID, str(torch.device(device)))
    image = prepare_photo(photo, config, device)
    painted = run_presets(presets, image, preset_weights(weights).to(device), config.strength)
    return tensor_to_pil(finish(painted, image, config))


def paint_preset_frames(frames: Sequence[Image.Image], weights: dict[int, float] | Sequence[float] | int = 0,
                        config: InstantConfig | None = None, device: torch.device | str = "cpu") -> list[Image.Image]:
    """Every frame painted with the same preset mix, `config.batch` frames a pass."""
    config = config or InstantConfig()
    presets = load_model(PRESETS_ID, str(torch.device(device)))
    mix = preset_weights(weights).to(device)
    return in_batches(frames, config, device, lambda images: run_presets(presets, images, mix, config.strength))


@functools.lru_cache(maxsize=4)
def preset_thumbnails(side: int = 96, device: str = "cpu") -> tuple[Image.Image, ...]:
    """Each preset painted on the same photo (the network's own picture of its style), cached."""
    from pathlib import Path

    photo = Image.open(Path(__file__).resolve().parent.parent / "assets" / "content" / "chelsea.jpg")
    square = style_crop(photo, 256)  # painted at 256 px, then shrunk: strokes at a thumbnail's scale
    return tuple(paint_preset(square, i, InstantConfig(size=256), device).resize((side, side), Image.LANCZOS)
                 for i in range(NUM_PRESETS))
