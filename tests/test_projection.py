"""gan.explorer.projection: photo preparation, the loss falling, best-of-starts, stopping, any generator
shape, and the projected recipe round-tripping byte for byte (tiny models, the tiny-random backbone)."""

from __future__ import annotations

import threading

import pytest
import torch
from PIL import Image

from common.backbones import load_backbone
from gan.explorer import latent as L
from gan.explorer import projection as P
from gan.explorer.model import DCGANConfig, Generator

FAST = dict(backbone="tiny-random", candidates=16, report_every=5, layers=("conv1_2", "conv2_2"))


def tiny(seed: int = 0, **config) -> Generator:
    """A tiny generator whose pictures differ from seed to seed (default init draws near-uniform grey)."""
    torch.manual_seed(seed)
    G = Generator(DCGANConfig(**{"image_size": 32, "nz": 8, "ngf": 8, "ndf": 4, **config})).eval()
    with torch.no_grad():
        for module in G.modules():
            if isinstance(module, torch.nn.ConvTranspose2d):
                module.weight *= 3
    return G


def picture_of(G: Generator, seed: int) -> Image.Image:
    """A picture G can make (so a good projection gets close to it)."""
    return L.to_pil(L.generate(G, L.sample_z(seed, G.cfg.nz))[0])


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("tiny-random", "cpu")


def test_a_photo_is_cropped_to_the_centre_and_resized():
    photo = Image.new("RGB", (300, 100), (255, 0, 0))
    photo.paste((0, 0, 255), (100, 0, 200, 100))  # the centre square is blue
    target = P.prepare_target(photo, 32, 3)
    assert target.shape == (1, 3, 32, 32) and target.min() >= 0 and target.max() <= 1
    assert torch.allclose(target[0, :, 16, 16], torch.tensor([0.0, 0.0, 1.0]))
    grey = P.prepare_target(photo, 64, 1)
    assert grey.shape == (1, 1, 64, 64)
    clear = Image.new("RGBA", (40, 40), (255, 0, 0, 0))  # transparent: white, as training images are
    assert torch.equal(P.prepare_target(clear, 32, 3), torch.ones(1, 3, 32, 32))
    with pytest.raises(ValueError, match="megapixels"):
        P.prepare_target(Image.new("L", (8000, 6000)), 32, 1)


def test_the_loss_falls_and_progress_is_reported(backbone):
    G = tiny()
    records = list(P.project(G, picture_of(G, 123), P.ProjectionConfig(steps=40, starts=2, **FAST),
                             backbone=backbone))
    assert [r.step for r in records] == [5, 10, 15, 20, 25, 30, 35, 40] and records[-1].done
    assert not any(r.done for r in records[:-1]) and not records[-1].stopped
    assert records[-1].loss < 0.5 * records[0].loss
    assert records[-1].z.shape == (1, 8) and records[-1].z.abs().max() <= L.MAX_LATENT


def test_more_starts_never_end_worse(backbone):
    G = tiny(1)
    photo = picture_of(G, 77)
    one = P.run(G, photo, P.ProjectionConfig(steps=20, starts=1, narrow_after=1.0, **FAST), backbone=backbone)
    four = P.run(G, photo, P.ProjectionConfig(steps=20, starts=4, narrow_after=1.0, **FAST), backbone=backbone)
    # The 4 starts include the single run's start, optimised identically (rows are independent).
    assert four.loss <= one.loss + 1e-5


def test_narrowing_to_one_start_goes_on_exactly_as_before():
    target = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    z = torch.zeros(4, 6, requires_grad=True)
    optimiser = torch.optim.Adam([z], lr=0.1)

    def step(z, optimiser, target):
        optimiser.zero_grad()
        (z - target).pow(2).sum().backward()  # separable, like the projection's per-start losses
        optimiser.step()

    for _ in range(5):
        step(z, optimiser, target)
    kept, narrowed = P.keep_one_start(z, optimiser, 2, 0.1)
    for _ in range(5):
        step(z, optimiser, target)
        step(kept, narrowed, target[2:3])
    assert torch.equal(kept.detach(), z.detach()[2:3])


def test_the_starts_are_the_best_candidates(backbone):
    G = tiny(2)
    config = P.ProjectionConfig(steps=10, starts=3, **FAST)
    target = P.prepare_target(picture_of(G, 5), 32, 3)
    loss = P.ReconstructionLoss(target, backbone, config)
    starts = P.pick_starts(G, loss, config, torch.device("cpu"))
    every = torch.randn(config.candidates, 8, generator=torch.Generator().manual_seed(config.seed))
    with torch.no_grad():
        scores = loss.total(*loss(P.images_of(G, every)))
        picked = loss.total(*loss(P.images_of(G, starts)))
    assert torch.allclose(picked, scores.sort().values[:3])


def test_a_stop_ends_the_run_with_the_best_so_far(backbone):
    G = tiny(3)
    stop = threading.Event()
    stop.set()
    last = P.run(G, picture_of(G, 9), P.ProjectionConfig(steps=200, **FAST), stop=stop, backbone=backbone)
    assert last.done and last.stopped and last.step == 1


@pytest.mark.parametrize("config", [dict(image_size=32, nc=1, nz=5), dict(image_size=64, nc=3, nz=20),
                                    dict(image_size=128, nc=3, nz=16, ngf=4)])
def test_any_generator_shape_projects_and_its_recipe_round_trips(backbone, config):
    G = tiny(4, **config)
    photo = Image.new("RGB", (90, 120), (200, 150, 100))
    last = P.run(G, photo, P.ProjectionConfig(steps=5, starts=2, **FAST), backbone=backbone)
    recipe = L.Recipe(model="mine", z=tuple(last.z[0].tolist()), size=256)
    again = L.Recipe.from_json(recipe.to_json())
    assert L.recipe_png(G, again, None) == L.recipe_png(G, recipe, None)
    assert torch.equal(L.recipe_latent(again, G.cfg.nz, None), last.z)
    pixel, perceptual = P.distance(G, last.z, photo, P.ProjectionConfig(**FAST), backbone)
    assert pixel.shape == perceptual.shape == (1,) and abs(float(pixel) - last.pixel) < 1e-4


def test_nearest_seed_is_the_closest_of_the_seeds(backbone):
    G = tiny(5)
    config = P.ProjectionConfig(**FAST)
    seed, pixel, perceptual = P.nearest_seed(G, picture_of(G, 7), 10, config, backbone)
    assert seed == 7 and pixel < 1e-4 and perceptual < 1e-2  # the photo is the 8-bit picture of seed 7


def test_the_config_is_checked():
    with pytest.raises(ValueError, match="Steps must be between 1 and 500"):
        P.ProjectionConfig(steps=501)
    with pytest.raises(ValueError, match="starts <= candidates"):
        P.ProjectionConfig(starts=8, candidates=4)
    with pytest.raises(ValueError, match="pixel and perceptual"):
        P.ProjectionConfig(pixel_weight=0, perceptual_weight=0)
