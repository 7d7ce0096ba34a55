"""gan.explorer.latent: seeded sampling, truncation, interpolation, GANSpace directions, recipes."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
import torch
from PIL import Image

from gan.explorer import latent as L
from gan.explorer.model import load_generator
from tests.conftest import tiny_generator

SMALL = L.DirectionConfig(n_samples=256, k=4, layer=2)


@pytest.fixture(scope="module")
def tiny_G():
    return tiny_generator()


@pytest.fixture(scope="module")
def tiny_dirs(tiny_G):
    return L.compute_directions(tiny_G, SMALL)


def test_sample_z_is_seeded_and_stable():
    a, b = L.sample_z([3, 4], 100), L.sample_z([3, 4], 100)
    assert a.shape == (2, 100) and torch.equal(a, b)
    assert not torch.equal(a[0], a[1])
    # torch's CPU Philox/MT stream is fixed: these numbers are what every run and machine gets.
    expected = torch.randn(100, generator=torch.Generator("cpu").manual_seed(3))
    assert torch.equal(a[0], expected)
    assert torch.equal(L.sample_z(3, 100)[0], expected)


def test_truncation_shrinks_towards_the_mean():
    z = L.sample_z(1, 16)
    assert torch.equal(L.truncate(z, 1.0), z)
    assert torch.allclose(L.truncate(z, 0.5), z * 0.5)
    assert torch.count_nonzero(L.truncate(z, 0.0)) == 0


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_interpolation_endpoints(method):
    z0, z1 = L.sample_z(1, 32), L.sample_z(2, 32)
    fn = L.slerp if method == "slerp" else L.lerp
    assert torch.allclose(fn(z0, z1, 0.0), z0, atol=1e-5)
    assert torch.allclose(fn(z0, z1, 1.0), z1, atol=1e-5)
    path = L.interpolation_latents(z0, z1, 7, method)
    assert path.shape == (7, 32) and torch.equal(path[0], z0[0]) and torch.equal(path[-1], z1[0])


def test_slerp_keeps_the_norm_between_equal_norm_latents():
    z0 = torch.tensor([[1.0, 0.0]])
    z1 = torch.tensor([[0.0, 1.0]])
    assert torch.allclose(L.slerp(z0, z1, 0.5).norm(), torch.tensor(1.0))
    assert L.lerp(z0, z1, 0.5).norm() < 0.8


def test_directions_shapes_and_variance(tiny_G, tiny_dirs, tiny_config):
    assert tiny_dirs.vectors.shape == (SMALL.k, tiny_config.nz)
    assert torch.allclose(tiny_dirs.vectors.norm(dim=1), torch.ones(SMALL.k), atol=1e-5)
    share = tiny_dirs.variance_share
    assert (share > 0).all() and share.sum() <= 1.0 + 1e-5
    assert (share[:-1] >= share[1:] - 1e-6).all()  # sorted by explained variance
    again = L.compute_directions(tiny_G, SMALL)
    assert torch.equal(again.vectors, tiny_dirs.vectors)


def test_directions_are_cached_on_disk(tmp_path, tiny_G, tiny_dirs):
    path = tmp_path / "directions.safetensors"
    first = L.cached_directions(tiny_G, path, SMALL)
    assert path.is_file() and torch.equal(first.vectors, tiny_dirs.vectors)
    stamp = path.stat().st_mtime_ns
    second = L.cached_directions(tiny_G, path, SMALL)
    assert path.stat().st_mtime_ns == stamp and torch.equal(second.vectors, first.vectors)


def test_directions_at_zero_give_the_plain_image(tiny_G, tiny_dirs):
    plain = L.Recipe(model="tiny", seed=5, size=64)
    zeros = replace(plain, directions=(0.0,) * SMALL.k)
    moved = replace(plain, directions=(2.0,) + (0.0,) * (SMALL.k - 1))
    assert L.recipe_png(tiny_G, zeros, tiny_dirs) == L.recipe_png(tiny_G, plain, tiny_dirs)
    assert not torch.equal(L.render(tiny_G, moved, tiny_dirs), L.render(tiny_G, plain, tiny_dirs))


def test_raw_edits_move_single_components(tiny_dirs, tiny_config):
    recipe = L.Recipe(model="tiny", seed=5, raw=((2, 1.5),))
    base = L.recipe_latent(L.Recipe(model="tiny", seed=5), tiny_config.nz, tiny_dirs)
    edited = L.recipe_latent(recipe, tiny_config.nz, tiny_dirs)
    diff = (edited - base)[0]
    assert diff[2] == pytest.approx(1.5) and torch.count_nonzero(diff) == 1
    merged = L.merge_raw_edits({2: 1.5, 9: 1.0}, 8, [0.0, 0.5], nz=10)
    assert merged == {2: 1.5, 9: 0.5}
    assert L.raw_edits_for_page(merged, 8, 3) == [0.0, 0.5, 0.0]
    assert L.raw_pages(10, 8) == [("z[0]-z[7]", 0), ("z[8]-z[9]", 8)]


def test_recipe_round_trip_gives_byte_identical_png(tmp_path, tiny_G, tiny_dirs):
    recipe = L.Recipe(model="tiny", seed=42, truncation=0.7, directions=(1.0, -0.5, 0.0, 0.25),
                      raw=((3, -1.0),), upscale="bicubic", size=128)
    again = L.Recipe.from_json(recipe.to_json())
    assert again == recipe
    tiny_G.save_pretrained(tmp_path)  # a "restart": the model comes back from disk
    reloaded = load_generator(tmp_path)
    png = L.recipe_png(tiny_G, recipe, tiny_dirs)
    assert L.recipe_png(reloaded, again, tiny_dirs) == png
    assert Image.open(io.BytesIO(png)).size == (128, 128)


@pytest.mark.parametrize(("bad", "match"), [
    ('{"seed": -1}', "seed"), ('{"truncation": 5}', "Truncation"), ('{"upscale": "magic"}', "Upscale"),
    ('{"size": 300}', "Size"), ('{"colour": 1}', "unknown fields"), ("not json", "not valid JSON"),
])
def test_recipe_rejects_bad_json_with_a_clear_message(bad, match):
    with pytest.raises(ValueError, match=match):
        L.Recipe.from_json(bad)


def test_interpolation_frames_and_animations(tiny_G, tiny_dirs):
    start = L.Recipe(model="tiny", seed=1, directions=(1.0,), size=64)
    job = L.Interpolation(start=start, end_seed=9, frames=6)
    frames = L.interpolate(tiny_G, job, tiny_dirs)
    assert len(frames) == 6
    first, last = (torch.tensor(list(f.getdata()), dtype=torch.float) for f in (frames[0], frames[-1]))
    want_first = torch.tensor(list(L.to_pil(L.render(tiny_G, start, tiny_dirs), 64).getdata()), dtype=torch.float)
    end = replace(start, seed=9)
    want_last = torch.tensor(list(L.to_pil(L.render(tiny_G, end, tiny_dirs), 64).getdata()), dtype=torch.float)
    # Batched and single forward passes may round differently by one grey level.
    assert (first - want_first).abs().max() <= 1 and (last - want_last).abs().max() <= 1
    for fmt in ("gif", "webp"):
        anim = Image.open(io.BytesIO(L.animation_bytes(frames, 12, fmt)))
        assert anim.n_frames == 2 * 6 - 2 and anim.info.get("loop", 0) == 0
    assert L.frame_strip(frames, count=4, height=32).size == (128, 32)


def test_interpolation_without_edits_ends_on_the_plain_seed():
    start = L.Recipe(model="tiny", seed=1, truncation=0.8, directions=(1.0,))
    first, last = L.Interpolation(start=start, end_seed=3, keep_edits=False, start_seed=2).endpoints()
    assert first.seed == 2 and first.directions == (1.0,)
    assert last == L.Recipe(model="tiny", seed=3, truncation=0.8)
    with pytest.raises(ValueError, match="Frames"):
        L.Interpolation(start=start, end_seed=3, frames=1)


def test_a_recipe_with_its_own_z_round_trips_bit_for_bit(tiny_G, tiny_dirs):
    z = (torch.randn(1, 8, generator=torch.Generator().manual_seed(5)) * 1.7).float()
    recipe = L.Recipe(model="tiny", seed=3, truncation=0.9, directions=(0.5,), raw=((2, -0.3),), z=tuple(z[0].tolist()))
    text = recipe.to_json()
    again = L.Recipe.from_json(text)
    assert again == recipe and again.to_json() == text
    assert torch.equal(L.base_latent(again, 8), z)  # every float32 bit survives the decimal round trip
    assert L.recipe_png(tiny_G, again, tiny_dirs) == L.recipe_png(tiny_G, recipe, tiny_dirs)
    seed_only = replace(recipe, z=())
    assert L.recipe_png(tiny_G, seed_only, tiny_dirs) != L.recipe_png(tiny_G, recipe, tiny_dirs)
    assert '"z"' not in seed_only.to_json()  # recipes of seeds read as they always did


def test_a_recipe_z_is_checked():
    with pytest.raises(ValueError, match="finite numbers"):
        L.Recipe(z=(0.0, float("nan")))
    with pytest.raises(ValueError, match="between"):
        L.Recipe(z=(L.MAX_LATENT + 1,))
    with pytest.raises(ValueError, match="has 3 values; this model's latent has 8"):
        L.base_latent(L.Recipe(z=(0.0, 1.0, 2.0)), 8)


def test_a_seed_replaces_a_recipe_z_at_the_far_end_of_an_interpolation(tiny_G, tiny_dirs):
    start = L.Recipe(model="tiny", seed=1, z=tuple(float(v) for v in range(8)), size=64)
    first, last = L.Interpolation(start=start, end_seed=4).endpoints()
    assert first.z == start.z and last.z == () and last.seed == 4
    first, _ = L.Interpolation(start=start, end_seed=4, start_seed=2).endpoints()
    assert first.z == () and first.seed == 2


@pytest.mark.parametrize("method", ["slerp", "lerp"])
def test_interpolation_point_follows_the_animation_path(tiny_G, tiny_dirs, method):
    job = L.Interpolation(start=L.Recipe(seed=1, truncation=0.7, directions=(1.0,)), end_seed=9, frames=5,
                          method=method)
    first, last = job.endpoints()
    z0 = L.recipe_latent(first, 8, tiny_dirs)
    z1 = L.recipe_latent(last, 8, tiny_dirs)
    path = L.interpolation_latents(z0, z1, 5, method)
    for i in range(5):
        assert torch.allclose(L.interpolation_point(tiny_G, job, i / 4, tiny_dirs)[0], path[i], atol=1e-6)
    assert torch.equal(L.interpolation_point(tiny_G, job, 0.0, tiny_dirs), z0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        L.interpolation_point(tiny_G, job, 1.5, tiny_dirs)


def test_a_grid_around_a_recipe_z_starts_with_it_and_stays_near_it():
    plain = L.Recipe(seed=5)
    assert torch.equal(L.grid_bases(plain, 8, 4), L.sample_z([5, 6, 7, 8], 8))
    own = L.sample_z(100, 8)
    bases = L.grid_bases(replace(plain, z=tuple(own[0].tolist())), 8, 4)
    assert torch.equal(bases[0], own[0])
    for i in range(1, 4):  # 30 % of the way along the sphere to seed 5 + i
        assert torch.allclose(bases[i], L.slerp(own, L.sample_z(5 + i, 8), L.NEIGHBOUR_MIX)[0])
        assert (bases[i] - own[0]).norm() < (L.sample_z(5 + i, 8)[0] - own[0]).norm()
