"""Latent space of a DCGAN generator: seeded sampling, truncation, interpolation, GANSpace directions.

- A seed gives z through a CPU `torch.Generator`, so the same seed is the same z (byte for byte)
  on every machine and run; z is moved to the device afterwards.
- Truncation shrinks z towards the prior's mean (0): z' = psi * z. We chose shrinking over
  resampling beyond a threshold because it is continuous in psi, so the slider morphs smoothly.
- Directions follow GANSpace (Harkonen et al. 2020, arXiv:2004.02546): PCA of an early layer's
  activations of G over many sampled z, then each principal component is mapped back to z by
  least-squares regression (z ~ coefficients @ U). Rows of U are unit directions in z; a slider
  value s moves z by s along one of them (1 unit = one standard deviation of the prior along it).
- A `Recipe` (model, seed, truncation, direction values, raw-z deltas, upscale) reproduces an
  image exactly; `render` turns one into an image tensor and `recipe_png` into PNG bytes. A recipe
  may carry its own latent `z` (a projected photo, see `projection`) instead of the seed's: each
  float32 component is written as the decimal of its exact value, so JSON round-trips it bit for bit.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

UPSCALE_MODES = ("nearest", "bicubic")
DISPLAY_SIZES = (64, 128, 256, 512)
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class ExploreLimits:
    """Ranges and defaults of the Explore controls (the UI's sliders read them from here)."""

    n_direction_sliders: int = 8
    direction_max: float = 3.0  # in prior std units along a unit direction
    raw_per_page: int = 8  # raw-z sliders shown at once
    raw_max: float = 3.0
    truncation_min: float = 0.0
    truncation_max: float = 1.5
    truncation_default: float = 1.0
    step: float = 0.05
    grid_size: int = 16
    frames_min: int = 2
    frames_default: int = 24
    frames_max: int = 120
    fps_min: int = 1
    fps_default: int = 12
    fps_max: int = 50  # GIF frame delays are in 1/100 s; browsers slow anything faster
    display_sizes: tuple[int, ...] = (256, 512)  # what the picker offers (Recipe accepts DISPLAY_SIZES)
    size_default: int = 512
    cpu_threads: int = 1  # intra-op threads for one slider render on CPU (see common.device.intra_op_threads)

    def __post_init__(self) -> None:
        if self.n_direction_sliders < 1 or self.raw_per_page < 1 or self.grid_size < 1:
            raise ValueError("Explore needs at least one direction slider, raw-z slider and grid cell.")


def raw_pages(nz: int, per_page: int) -> list[tuple[str, int]]:
    """(label, first index) of each page of raw-z sliders, e.g. ('z[0]-z[7]', 0)."""
    return [(f"z[{i}]-z[{min(i + per_page, nz) - 1}]", i) for i in range(0, nz, per_page)]


def raw_edits_for_page(edits: dict[int, float], first: int, per_page: int) -> list[float]:
    """The deltas of one page's components (0 where untouched)."""
    return [float(edits.get(first + j, 0.0)) for j in range(per_page)]


def merge_raw_edits(edits: dict[int, float], first: int, values: list[float], nz: int) -> dict[int, float]:
    """A copy of edits with one page's slider values written in (zeros removed, indices < nz)."""
    merged = {int(i): float(v) for i, v in edits.items()}
    for j, value in enumerate(values):
        if first + j < nz:
            merged.pop(first + j, None)
            if value:
                merged[first + j] = float(value)
    return merged


MAX_EDIT = 10.0  # largest |value| of a direction or raw-z edit, in prior std units
MAX_LATENT = 8.0  # largest |component| of a recipe's own z (N(0, 1) draws beyond 6 are ~1e-9 rare)
MAX_NZ = 1024  # DCGANConfig's largest latent size


@dataclass(frozen=True)
class Recipe:
    """Everything that determines one Explore image; JSON round-trips exactly."""

    model: str = "dcgan-faces-64"
    seed: int = 0
    truncation: float = 1.0  # psi: 1 = the plain sample, smaller = closer to the average face
    directions: tuple[float, ...] = ()  # value per GANSpace direction, in prior std units
    raw: tuple[tuple[int, float], ...] = ()  # (z index, delta) edits of individual components
    upscale: str = "nearest"
    size: int = 256  # displayed / exported size in pixels
    z: tuple[float, ...] = ()  # the recipe's own latent (a projection); empty: the seed's z

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"The seed must be a whole number from 0 to {MAX_SEED}, got {self.seed!r}.")
        if not 0.0 <= self.truncation <= 2.0:
            raise ValueError(f"Truncation must lie between 0 and 2, got {self.truncation}.")
        if self.upscale not in UPSCALE_MODES:
            raise ValueError(f"Upscale must be one of {UPSCALE_MODES}, got {self.upscale!r}.")
        if self.size not in DISPLAY_SIZES:
            raise ValueError(f"Size must be one of {DISPLAY_SIZES} pixels, got {self.size}.")
        # NaN passes Gradio's slider range check (every comparison with NaN is False): check here.
        if any(not math.isfinite(v) or abs(v) > MAX_EDIT for v in self.directions):
            raise ValueError(f"Direction values must be finite numbers between -{MAX_EDIT} and {MAX_EDIT}.")
        if any(not math.isfinite(d) or abs(d) > MAX_EDIT for _, d in self.raw):
            raise ValueError(f"Raw z edits must be finite numbers between -{MAX_EDIT} and {MAX_EDIT}.")
        if len(self.z) > MAX_NZ or any(not math.isfinite(v) or abs(v) > MAX_LATENT for v in self.z):
            raise ValueError(f"A recipe's z holds at most {MAX_NZ} finite numbers between "
                             f"-{MAX_LATENT} and {MAX_LATENT}.")
        object.__setattr__(self, "directions", tuple(float(v) for v in self.directions))
        object.__setattr__(self, "z", tuple(float(v) for v in self.z))
        object.__setattr__(self, "raw", tuple(sorted((int(i), float(d)) for i, d in self.raw if d != 0)))

    def to_json(self) -> str:
        """Compact, stable JSON (sorted keys)."""
        data = asdict(self)
        data["raw"] = {str(i): d for i, d in self.raw}
        if not self.z:
            del data["z"]  # recipes of seeds read exactly as before projected latents existed
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        """Parse `to_json`'s output; a clear ValueError for anything else."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"The recipe is not valid JSON ({err.msg} at line {err.lineno}).") from err
        if not isinstance(data, dict):
            raise ValueError("A recipe is a JSON object with fields model, seed, truncation, ...")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"The recipe has unknown fields: {', '.join(sorted(unknown))}.")
        raw = data.get("raw") or {}
        data["raw"] = tuple((int(i), float(d)) for i, d in (raw.items() if isinstance(raw, dict) else raw))
        data["directions"] = tuple(data.get("directions") or ())
        data["z"] = tuple(data.get("z") or ())
        return cls(**data)


def sample_z(seeds: int | list[int], nz: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, nz) standard normal latents, one per seed, identical on every machine."""
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    rows = [torch.randn(nz, generator=torch.Generator("cpu").manual_seed(int(s))) for s in seeds]
    return torch.stack(rows).to(device)


def truncate(z: torch.Tensor, psi: float) -> torch.Tensor:
    """Shrink z towards the prior's mean (0) by psi; psi = 1 leaves z unchanged."""
    return z if psi == 1.0 else z * psi


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """Straight-line interpolation."""
    return z0 + (z1 - z0) * t


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation (White 2016): keeps the norm typical of the Gaussian prior."""
    n0, n1 = z0 / z0.norm(dim=-1, keepdim=True), z1 / z1.norm(dim=-1, keepdim=True)
    omega = torch.acos((n0 * n1).sum(-1, keepdim=True).clamp(-1.0, 1.0))
    so = torch.sin(omega)
    if float(so.abs().min()) < 1e-6:  # (anti)parallel: slerp is undefined, lerp is the limit
        return lerp(z0, z1, t)
    return (torch.sin((1.0 - t) * omega) / so) * z0 + (torch.sin(t * omega) / so) * z1


@dataclass(frozen=True)
class DirectionConfig:
    """How GANSpace directions are computed."""

    n_samples: int = 4096  # sampled z for the PCA
    k: int = 10  # number of principal components kept
    layer: int = 2  # index in G.main whose output is analysed (2 = first block's ReLU)
    seed: int = 20200404  # fixes the samples and the randomised SVD

    def __post_init__(self) -> None:
        if self.k < 1 or self.n_samples < 2 * self.k:
            raise ValueError(f"Need k >= 1 and n_samples >= 2k, got k={self.k}, n_samples={self.n_samples}.")


@dataclass(frozen=True)
class Directions:
    """k unit directions in z (k, nz) and each one's share of the activations' variance."""

    vectors: torch.Tensor
    variance_share: torch.Tensor

    @property
    def k(self) -> int:
        """Number of directions."""
        return int(self.vectors.shape[0])

    def save(self, path: Path, config: DirectionConfig) -> None:
        """Write as safetensors, with the config in the metadata."""
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {k: str(v) for k, v in asdict(config).items()}
        tensors = {"vectors": self.vectors.contiguous().cpu(), "variance_share": self.variance_share.cpu()}
        tmp = path.with_suffix(".tmp")
        save_file(tensors, str(tmp), metadata=meta)
        tmp.replace(path)  # atomic: two sessions computing at once never read half a file

    @classmethod
    def load(cls, path: Path, device: torch.device | str = "cpu") -> Directions:
        """Read a file written by `save`."""
        data = load_file(str(path), device=str(device))
        return cls(vectors=data["vectors"], variance_share=data["variance_share"])


def _features(G: nn.Module, z: torch.Tensor, layer: int) -> torch.Tensor:
    """Flattened output of G.main[layer] for latents z: (N, C*H*W)."""
    x = z[:, :, None, None]
    for index, module in enumerate(G.main):
        x = module(x)
        if index == layer:
            return x.flatten(1)
    raise ValueError(f"The generator has no layer {layer}.")


@torch.inference_mode()
def compute_directions(G: nn.Module, config: DirectionConfig = DirectionConfig()) -> Directions:
    """GANSpace: PCA of early activations, regressed back to z; deterministic for a given G."""
    nz, device = G.cfg.nz, next(G.parameters()).device
    z = torch.randn(config.n_samples, nz, generator=torch.Generator("cpu").manual_seed(config.seed))
    feats = torch.cat([_features(G, chunk.to(device), config.layer).float().cpu()
                       for chunk in z.split(1024)])
    feats = feats - feats.mean(0, keepdim=True)
    total = feats.pow(2).sum() / (config.n_samples - 1)
    q = min(config.k + 10, *feats.shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # svd_lowrank draws a random sketch
        _, s, v = torch.svd_lowrank(feats, q=q, niter=6)
    s, v = s[: config.k], v[:, : config.k]  # (k,), (D, k)
    share = (s.pow(2) / (config.n_samples - 1)) / total
    coeff = feats @ v  # (N, k): each sample's principal coordinates
    U = torch.linalg.lstsq(coeff, z).solution  # (k, nz): z ~ coeff @ U
    U = U / U.norm(dim=1, keepdim=True)
    # PCA signs are arbitrary: make the largest entry of each direction positive (stable files).
    sign = torch.sign(U.gather(1, U.abs().argmax(1, keepdim=True)))
    return Directions(vectors=(U * sign).contiguous(), variance_share=share.contiguous())


def cached_directions(G: nn.Module, path: Path, config: DirectionConfig = DirectionConfig()) -> Directions:
    """Load directions from `path`, computing and saving them there the first time."""
    device = next(G.parameters()).device
    if path.is_file():
        found = Directions.load(path, device)
        if found.vectors.shape == (config.k, G.cfg.nz):
            return found
    directions = compute_directions(G, config)
    directions.save(path, config)
    return Directions(directions.vectors.to(device), directions.variance_share.to(device))


def edit_z(z: torch.Tensor, recipe: Recipe, directions: Directions | None) -> torch.Tensor:
    """Apply truncation, then direction values, then raw-z deltas to z (nz,) or (N, nz)."""
    z = truncate(z, recipe.truncation)
    values = [v for v in recipe.directions if v != 0.0]
    if values and directions is None:
        raise ValueError("This recipe moves directions, but the model has none computed.")
    if values:
        if len(recipe.directions) > directions.k:
            raise ValueError(f"The recipe has {len(recipe.directions)} direction values; the model has {directions.k}.")
        coef = torch.tensor(recipe.directions, dtype=z.dtype, device=z.device)
        z = z + coef @ directions.vectors[: len(recipe.directions)].to(z.dtype)
    if recipe.raw:
        nz = z.shape[-1]
        bad = [i for i, _ in recipe.raw if not 0 <= i < nz]
        if bad:
            raise ValueError(f"Raw-z index {bad[0]} is outside 0..{nz - 1}.")
        delta = torch.zeros(nz, dtype=z.dtype)
        for index, value in recipe.raw:
            delta[index] = value
        z = z + delta.to(z.device)
    return z


def base_latent(recipe: Recipe, nz: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The (1, nz) latent before edits: the recipe's own z if it has one, else its seed's."""
    if not recipe.z:
        return sample_z(recipe.seed, nz, device)
    if len(recipe.z) != nz:
        raise ValueError(f"The recipe's z has {len(recipe.z)} values; this model's latent has {nz}.")
    return torch.tensor(recipe.z, dtype=torch.float32).view(1, nz).to(device)


def recipe_latent(recipe: Recipe, nz: int, directions: Directions | None,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """The (1, nz) latent a recipe describes."""
    return edit_z(base_latent(recipe, nz, device), recipe, directions)


NEIGHBOUR_MIX = 0.3  # a grid cell around a recipe's own z: slerp 30 % of the way towards a seed's z


def grid_bases(recipe: Recipe, nz: int, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, nz) latents before edits for a grid of n cells: the seeds recipe.seed, recipe.seed + 1, ...;
    for a recipe with its own z (a projection), that z first, then neighbours: slerp towards those seeds."""
    seeds = sample_z([recipe.seed + i for i in range(n)], nz, device)
    if not recipe.z:
        return seeds
    own = base_latent(recipe, nz, device)
    rows = [own] + [slerp(own, seeds[i: i + 1], NEIGHBOUR_MIX) for i in range(1, n)]
    return torch.cat(rows).clamp(-MAX_LATENT, MAX_LATENT)  # a picked cell becomes a recipe's z


@torch.inference_mode()  # sampling never needs autograd: no graph, no saved activations
def generate(G: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1], shape (N, nc, S, S), on the CPU."""
    return (G(z).float().cpu() + 1.0) * 0.5


def render(G: nn.Module, recipe: Recipe, directions: Directions | None) -> torch.Tensor:
    """Recipe -> image tensor (nc, S, S) in [0, 1] at the model's native size."""
    device = next(G.parameters()).device
    return generate(G, recipe_latent(recipe, G.cfg.nz, directions, device))[0]


def to_pil(image: torch.Tensor, size: int | None = None, upscale: str = "nearest") -> Image.Image:
    """(nc, S, S) in [0, 1] -> PIL image, optionally resized to size x size."""
    arr = image.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    pil = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    if size and size != pil.width:
        method = Image.Resampling.NEAREST if upscale == "nearest" else Image.Resampling.BICUBIC
        pil = pil.resize((size, size), method)
    return pil


def png_bytes(pil: Image.Image) -> bytes:
    """PNG bytes with fixed settings (fast compression, no metadata): same pixels, same bytes."""
    buf = io.BytesIO()
    pil.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def recipe_png(G: nn.Module, recipe: Recipe, directions: Directions | None) -> bytes:
    """Recipe -> PNG bytes at the recipe's display size and upscaling."""
    return png_bytes(to_pil(render(G, recipe, directions), recipe.size, recipe.upscale))


def interpolation_latents(z0: torch.Tensor, z1: torch.Tensor, frames: int, method: str = "slerp") -> torch.Tensor:
    """(frames, nz) latents from z0 to z1 inclusive: the first is z0, the last is z1."""
    if frames < 2:
        raise ValueError(f"An interpolation needs at least 2 frames, got {frames}.")
    if method not in ("slerp", "lerp"):
        raise ValueError(f"Interpolation method must be 'slerp' or 'lerp', got {method!r}.")
    fn = slerp if method == "slerp" else lerp
    rows = [fn(z0, z1, i / (frames - 1)) for i in range(frames)]
    rows[0], rows[-1] = z0, z1  # exact endpoints, no floating-point drift
    return torch.cat(rows)


@dataclass(frozen=True)
class Interpolation:
    """From recipe `start` (or seed `start_seed` with its edits) to seed `end_seed`, in `frames` steps."""

    start: Recipe
    end_seed: int
    frames: int = ExploreLimits.frames_default
    method: str = "slerp"
    keep_edits: bool = True  # True: the end seed gets start's truncation / directions / raw edits too
    fps: int = ExploreLimits.fps_default
    start_seed: int | None = None  # None: start from the recipe's own seed

    def __post_init__(self) -> None:
        lim = ExploreLimits()
        if not lim.frames_min <= self.frames <= lim.frames_max:
            raise ValueError(f"Frames must be between {lim.frames_min} and {lim.frames_max}, got {self.frames}.")
        if not lim.fps_min <= self.fps <= lim.fps_max:
            raise ValueError(f"Frames per second must be between {lim.fps_min} and {lim.fps_max}, got {self.fps}.")
        if self.method not in ("slerp", "lerp"):
            raise ValueError(f"Interpolation method must be 'slerp' or 'lerp', got {self.method!r}.")
        for seed in (self.end_seed, self.start_seed):
            if seed is not None and not 0 <= seed <= MAX_SEED:
                raise ValueError(f"Seeds must be whole numbers from 0 to {MAX_SEED}, got {seed}.")

    def endpoints(self) -> tuple[Recipe, Recipe]:
        """The recipes of the first and the last frame (a seed replaces a recipe's own z)."""
        first = self.start if self.start_seed is None else replace(self.start, seed=self.start_seed, z=())
        plain = Recipe(model=first.model, seed=self.end_seed, truncation=first.truncation,
                       upscale=first.upscale, size=first.size)
        return first, (replace(first, seed=self.end_seed, z=()) if self.keep_edits else plain)


def interpolate(G: nn.Module, job: Interpolation, directions: Directions | None) -> list[Image.Image]:
    """Frames of the interpolation as PIL images at the display size; first and last are the endpoints."""
    device = next(G.parameters()).device
    first, last = job.endpoints()
    z0 = recipe_latent(first, G.cfg.nz, directions, device)
    z1 = recipe_latent(last, G.cfg.nz, directions, device)
    images = generate(G, interpolation_latents(z0, z1, job.frames, job.method))
    return [to_pil(img, first.size, first.upscale) for img in images]


def interpolation_point(G: nn.Module, job: Interpolation, t: float,
                        directions: Directions | None) -> torch.Tensor:
    """The (1, nz) latent at fraction t (0..1) of the interpolation's path: what the scrub slider shows."""
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must lie between 0 and 1, got {t}.")
    device = next(G.parameters()).device
    first, last = job.endpoints()
    z0 = recipe_latent(first, G.cfg.nz, directions, device)
    z1 = recipe_latent(last, G.cfg.nz, directions, device)
    if t in (0.0, 1.0):  # exact endpoints, as in interpolation_latents
        return z0 if t == 0.0 else z1
    return (slerp if job.method == "slerp" else lerp)(z0, z1, t)


def animation_bytes(frames: list[Image.Image], fps: int, fmt: str) -> bytes:
    """A looping animated GIF or WebP (lossless) of the frames, played forth and back."""
    if fmt not in ("gif", "webp"):
        raise ValueError(f"Animation format must be 'gif' or 'webp', got {fmt!r}.")
    if fmt == "gif":  # palette each distinct frame once here; Pillow would redo the way back too
        frames = [f.convert("P", palette=Image.Palette.ADAPTIVE) if f.mode != "P" else f for f in frames]
    loop = frames + frames[-2:0:-1]  # ping-pong: the loop has no jump back to the start
    buf = io.BytesIO()
    extra = {"lossless": True, "quality": 80, "method": 0} if fmt == "webp" else {"optimize": False}
    loop[0].save(buf, format=fmt.upper(), save_all=True, append_images=loop[1:],
                 duration=round(1000 / fps), loop=0, **extra)
    return buf.getvalue()


def frame_strip(frames: list[Image.Image], count: int = 8, height: int = 96) -> Image.Image:
    """Up to `count` evenly spaced frames side by side (first and last included)."""
    n = len(frames)
    k = min(count, n)
    picks = sorted({round(i * (n - 1) / max(1, k - 1)) for i in range(k)})
    tiles = [frames[i].resize((height, height), Image.Resampling.BICUBIC) for i in picks]
    strip = Image.new(tiles[0].mode, (height * len(tiles), height))
    for index, tile in enumerate(tiles):
        strip.paste(tile, (index * height, 0))
    return strip
