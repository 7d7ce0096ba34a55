"""Explore through its public API (gradio_client) and in headless Chromium."""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from gan.explorer import latent as L
from gan.explorer import zoo
from gan.explorer.model import Generator
from tests.conftest import save_readme_screenshot

NEUTRAL = dict(model="dcgan-faces-64", seed=7, truncation=1.0, upscale="nearest", size="256", raw_page=0)
FLAT = ["dcgan-faces-64", 7, 1.0, *[0.0] * 8, "nearest", "256", 0, *[0.0] * 8, "{}", ""]  # the recipe form, in order


def generate(client, **edits):
    return client.predict(**{**NEUTRAL, **edits}, api_name="/generate")


@pytest.mark.integration
@pytest.mark.weights
def test_generate_matches_the_engine_byte_for_byte(client):
    image, recipe_json, *_ = generate(client, direction_1=1.5)
    recipe = L.Recipe.from_json(recipe_json)
    assert recipe.seed == 7 and recipe.directions[0] == 1.5
    loaded = zoo.load(zoo.resolve("dcgan-faces-64"), "cpu")
    assert Path(image).read_bytes() == L.recipe_png(loaded.G, recipe, loaded.directions)
    plain, _, *_ = generate(client)
    assert Path(plain).read_bytes() != Path(image).read_bytes()


@pytest.mark.integration
@pytest.mark.weights
def test_every_explore_endpoint(client, tmp_path):
    start = client.predict(api_name="/explore_start")  # internal steps are called positionally
    assert Path(start[-2]).is_file() and json.loads(start[-1])["seed"] == 0
    seed = client.predict(api_name="/dice")
    assert 0 <= seed <= 99_999
    after_dice = client.predict(*FLAT, api_name="/generate_after_dice")
    assert Path(after_dice[0]).is_file()
    assert len(client.predict(8, '{"9": 1.5}', "dcgan-faces-64", api_name="/raw_page")) == 8
    out = client.predict("dcgan-faces-64", 3, "bicubic", "512", api_name="/reset")
    assert Image.open(out[-2]).size == (512, 512) and json.loads(out[-1])["upscale"] == "bicubic"
    recipe = L.Recipe(seed=11, truncation=0.8, directions=(0.5, -1.0), raw=((12, 1.0),))
    loaded_img, loaded_recipe = client.predict(recipe=recipe.to_json(), api_name="/load_recipe")[-2:]
    assert L.Recipe.from_json(loaded_recipe) == recipe
    recipe_file = tmp_path / "recipe.json"
    recipe_file.write_text(recipe.to_json())
    from gradio_client import handle_file

    again = client.predict(recipe_file=handle_file(str(recipe_file)), api_name="/load_recipe_file")
    assert Path(again[-2]).read_bytes() == Path(loaded_img).read_bytes()
    gallery, seeds = client.predict(**NEUTRAL, api_name="/grid")
    assert len(gallery) == 16 and gallery[0]["caption"] == "seed 7"
    assert seeds == [{"seed": s, "z": None} for s in range(7, 23)]  # a cell near a projection carries its z
    after_pick = client.predict(*FLAT, api_name="/generate_after_pick")
    assert Path(after_pick[0]).is_file()
    gif, strip, files = client.predict(**NEUTRAL, end_seed=3, frames=5, fps=10, api_name="/interpolate")
    assert Image.open(gif).n_frames == 8 and Image.open(strip).size == (5 * 96, 96)
    assert sorted(Path(f).suffix for f in files) == [".gif", ".png", ".webp"]


@pytest.mark.integration
def test_hub_offline_and_model_upload(client, tmp_path, tiny_config):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="offline"):
        client.predict(repo_id="someone/some-dcgan", api_name="/load_hub")
    folder = tmp_path / "tiny"
    Generator(tiny_config).save_pretrained(folder)
    archive = shutil.make_archive(str(tmp_path / "tiny"), "zip", folder)
    update = client.predict(files=[handle_file(archive)], api_name="/upload_model")
    label = update["value"]  # the picker gets the new choice and selects it
    assert label == "upload:tiny" and ["upload:tiny", "upload:tiny"] in update["choices"]
    out = client.predict(label, 1, "nearest", "256", api_name="/select_model")
    assert Image.open(out[-2]).size == (256, 256) and json.loads(out[-1])["model"] == label
    back = client.predict("dcgan-faces-64", 1, "nearest", "256", api_name="/select_model")
    assert json.loads(back[-1])["model"] == "dcgan-faces-64"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("model.safetensors", b"")
        zf.writestr("pytorch_model.bin", b"pickle")
    with pytest.raises(AppError, match="pickled"):
        client.predict(files=[handle_file(str(evil))], api_name="/upload_model")


def image_bytes(page) -> bytes:
    """Bytes of the picture the browser currently shows."""
    src = page.locator("#explore-picture img").first.get_attribute("src")
    return page.request.get(src).body()


@pytest.mark.browser
@pytest.mark.weights
def test_direction_slider_changes_the_picture(page, artifacts_dir):
    page.locator("#explore-picture img").first.wait_for(timeout=60_000)
    before = image_bytes(page)
    slider = page.locator("#explore-direction-1 input[type=range]")
    slider.focus()
    for _ in range(30):  # 30 steps of 0.05: +1.5 standard deviations
        slider.press("ArrowRight")
    deadline = time.monotonic() + 30
    while image_bytes(page) == before and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    after = image_bytes(page)
    assert after != before
    assert Image.open(io.BytesIO(after)).size == (512, 512)
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts_dir / "explore.png"), full_page=True)
    shot = page.screenshot(clip={"x": 0, "y": 0, "width": 1280, "height": 900})
    save_readme_screenshot(shot, "screenshot-explore.png", colors=192, width=960)
    page.get_by_role("button", name="Show 16 seeds from the current one").click()
    page.locator("#explore-grid img").nth(15).wait_for(timeout=30_000)
    page.locator("#explore-grid img").nth(3).click()  # grid seeds are current seed (0) + 0..15
    seed = page.locator("#explore-seed input")
    deadline = time.monotonic() + 30
    while seed.input_value() != "3" and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert seed.input_value() == "3"
