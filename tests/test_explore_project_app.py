"""/project through gradio_client: progress streams, the result is a recipe holding the projected z,
and loading that recipe renders it byte for byte as the engine does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from gan.explorer import latent as L
from gan.explorer import zoo

pytestmark = [pytest.mark.integration, pytest.mark.weights, pytest.mark.slow]


def test_project_streams_progress_and_returns_a_recipe(client, tmp_path):
    from gradio_client import handle_file

    photo = tmp_path / "face.png"
    emoji = sorted(Path("/work/data/emoji-faces").glob("*.png"))
    source = Image.open(emoji[0]) if emoji else Image.new("RGB", (80, 60), (250, 200, 40))
    source.convert("RGB").resize((96, 72)).save(photo)  # not square: the engine crops the centre
    job = client.submit(image=handle_file(str(photo)), model="dcgan-emoji-64", steps=20, api_name="/project")
    outputs = list(job)
    statuses = [out[1] for out in outputs]
    assert any(s.startswith("Step 5/20") for s in statuses) and statuses[-1].startswith("Done 20/20")
    picture, _, recipe_json = job.result()
    recipe = L.Recipe.from_json(recipe_json)
    assert recipe.model == "dcgan-emoji-64" and len(recipe.z) == 100 and Image.open(picture).size == (256, 256)
    *_, image, loaded_json = client.predict(recipe_json, api_name="/load_recipe")
    assert json.loads(loaded_json)["z"] == list(recipe.z)
    model = zoo.load(zoo.resolve("dcgan-emoji-64"), "cpu")
    assert Path(image).read_bytes() == L.recipe_png(model.G, recipe, model.directions)
    assert client.predict(api_name="/stop_projection").startswith("Stopping")


def test_project_without_a_photo_says_so(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Upload a photo first"):
        client.predict(image=None, model="dcgan-emoji-64", steps=10, api_name="/project")
