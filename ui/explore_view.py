"""Explore's widgets: the recipe and interpolation forms and the panels that lay them out.

Ranges and defaults come from `gan.explorer.latent.ExploreLimits` (and `Recipe` / `Interpolation`);
tests/test_slider_ranges.py checks every slider against them. Nothing here handles an event.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from gan.explorer import latent as L
from gan.explorer import zoo
from ui import explore_page, explore_project
from ui.forms import Form, each

LIMITS = L.ExploreLimits()


@dataclass(kw_only=True)
class RecipeForm(Form):
    """What makes one picture (a `Recipe`); the field names are the API's parameter names."""

    model: gr.Dropdown
    seed: gr.Number
    truncation: gr.Slider
    directions: list[gr.Slider] = each("direction")
    upscale: gr.Radio
    size: gr.Radio
    raw_page: gr.Dropdown  # first z index of the raw-z sliders shown
    raw: list[gr.Slider] = each("raw")  # deltas of z[raw_page] ... z[raw_page + 7]
    raw_edits: gr.Textbox  # hidden: JSON {z index: delta} of every page (the sliders show one page)
    z: gr.Textbox  # hidden: JSON list, the picture's own latent (a projection); empty for the seed's


@dataclass(kw_only=True)
class InterpolationForm(Form):
    """An animation from the current picture (or `start_seed`) to `end_seed`."""

    end_seed: gr.Number
    start_seed: gr.Number
    frames: gr.Slider
    fps: gr.Slider
    method: gr.Radio
    keep_edits: gr.Checkbox


@dataclass
class Controls:
    """Left column: model, seed, truncation, direction and raw-z sliders."""

    model: gr.Dropdown
    seed: gr.Number
    dice: gr.Button
    truncation: gr.Slider
    directions: list[gr.Slider]
    raw_page: gr.Dropdown
    raw: list[gr.Slider]


@dataclass
class Picture:
    """Right column: the picture, display options, reset and the recipe."""

    image: gr.Image
    upscale: gr.Radio
    size: gr.Radio
    reset: gr.Button
    recipe: gr.Code
    load_recipe: gr.Button
    recipe_file: gr.UploadButton


@dataclass
class ModelsBox:
    """Add a model: from the Hub by repo id, or an uploaded zip / folder files."""

    hub_repo: gr.Textbox
    hub_button: gr.Button
    upload: gr.File


@dataclass
class GridPanel:
    """The 16-seed grid; clicking a face makes its seed current."""

    button: gr.Button
    gallery: gr.Gallery
    seeds: gr.JSON  # hidden: the seed of each cell


@dataclass
class InterpolationPanel:
    """The interpolation form, its button and its results."""

    form: InterpolationForm
    button: gr.Button
    animation: gr.Image
    strip: gr.Image
    files: gr.File
    scrub: explore_page.Scrub  # the t slider along the same path, drawn live


@dataclass
class ExploreView:
    """Every Explore widget, by panel; `recipe` gathers the inputs of a picture from two panels."""

    controls: Controls
    picture: Picture
    models: ModelsBox
    grid: GridPanel
    interpolation: InterpolationPanel
    recipe: RecipeForm
    shown_model: gr.State  # the model the sliders are labelled for: tells picker changes from echoes
    page: explore_page.Carriers  # what the browser needs to draw slider moves itself
    project: explore_project.ProjectPanel  # your photo in the latent space


def direction_label(index: int, share: list[float]) -> str:
    """'Direction 3 · 4.2% of variance' (the share only when the model has that direction)."""
    pct = f" · {100 * share[index]:.1f}% of variance" if index < len(share) else ""
    return f"Direction {index + 1}{pct}"


def build_controls() -> Controls:
    """Left column (created in the current layout context)."""
    model = gr.Dropdown(choices=zoo.pretrained_ids(), value=zoo.pretrained_ids()[0], label="Model", scale=3)
    with gr.Row(equal_height=True):
        seed = gr.Number(value=L.Recipe().seed, label="Seed", precision=0, minimum=0, maximum=L.MAX_SEED,
                         scale=3, elem_id="explore-seed")
        dice = gr.Button("Random seed", scale=1, min_width=80)
    truncation = gr.Slider(LIMITS.truncation_min, LIMITS.truncation_max, value=LIMITS.truncation_default,
                           step=LIMITS.step, label="Truncation ψ (lower = more average face)",
                           elem_id="explore-truncation")
    with gr.Accordion("Directions (GANSpace)", open=True):
        directions = [gr.Slider(-LIMITS.direction_max, LIMITS.direction_max, value=0.0, step=LIMITS.step,
                                label=f"Direction {i + 1}", elem_id=f"explore-direction-{i + 1}")
                      for i in range(LIMITS.n_direction_sliders)]
    with gr.Accordion("Raw z (single latent components)", open=False):
        raw_page = gr.Dropdown(choices=L.raw_pages(100, LIMITS.raw_per_page), value=0, label="Components")
        raw = [gr.Slider(-LIMITS.raw_max, LIMITS.raw_max, value=0.0, step=LIMITS.step, label=f"z[{j}] +")
               for j in range(LIMITS.raw_per_page)]
    return Controls(model, seed, dice, truncation, directions, raw_page, raw)


def build_picture() -> Picture:
    """Right column."""
    image = gr.Image(label="Picture (download: the arrow, top right)", format="png", type="filepath",
                     interactive=False, height=540, buttons=["download", "fullscreen"], elem_id="explore-picture")
    with gr.Row():
        upscale = gr.Radio(list(L.UPSCALE_MODES), value=L.Recipe().upscale, label="Upscaling")
        size = gr.Radio([str(s) for s in LIMITS.display_sizes], value=str(LIMITS.size_default), label="Size (px)")
    reset = gr.Button("Reset edits")
    recipe = gr.Code(label="Recipe (copy, download, or paste one and press Load)", language="json",
                     interactive=True, lines=3, max_lines=8, wrap_lines=True, elem_id="explore-recipe")
    with gr.Row():
        load_recipe = gr.Button("Load recipe")
        recipe_file = gr.UploadButton("Load recipe file (.json)", file_types=[".json"], type="filepath")
    return Picture(image, upscale, size, reset, recipe, load_recipe, recipe_file)


def build_models_box() -> ModelsBox:
    """The 'Add a model' accordion (safetensors only: pickles are refused)."""
    with gr.Accordion("Add a model (Hub or upload)", open=False):
        with gr.Row(equal_height=True):
            hub_repo = gr.Textbox(label="Hugging Face repo id", placeholder="user/my-dcgan", scale=3)
            hub_button = gr.Button("Load from the Hub", scale=1)
        upload = gr.File(label="Upload a model: a .zip of a save_pretrained folder, or config.json + "
                         "model.safetensors (pickles are refused)", file_count="multiple",
                         file_types=[".zip", ".json", ".safetensors"], type="filepath", elem_id="explore-upload")
    return ModelsBox(hub_repo, hub_button, upload)


def build_grid() -> GridPanel:
    """The grid accordion."""
    with gr.Accordion("Sample grid (click a face to make it current)", open=True):
        button = gr.Button(f"Show {LIMITS.grid_size} seeds from the current one")
        gallery = gr.Gallery(label="Seeds", columns=8, height=280, allow_preview=False, object_fit="contain",
                             elem_id="explore-grid")
    # Hidden widgets, not gr.State: Gradio's MCP server cannot return a tool's gr.State output (and a gr.JSON
    # input gives an invalid tool schema), so raw_edits is JSON text and the seeds a hidden gr.JSON output.
    return GridPanel(button, gallery, gr.JSON([], visible=False, label="Seeds of the grid"))


def build_interpolation() -> InterpolationPanel:
    """The interpolation accordion."""
    with gr.Accordion("Interpolation", open=True):
        with gr.Row():
            start_seed = gr.Number(value=-1, precision=0, minimum=-1, maximum=L.MAX_SEED,
                                   label="From seed (-1 = current image)")
            end_seed = gr.Number(value=1, precision=0, minimum=0, maximum=L.MAX_SEED, label="To seed")
            frames = gr.Slider(LIMITS.frames_min, LIMITS.frames_max, value=LIMITS.frames_default, step=1,
                               label="Frames")
            fps = gr.Slider(LIMITS.fps_min, LIMITS.fps_max, value=LIMITS.fps_default, step=1,
                            label="Frames per second")
        with gr.Row():
            method = gr.Radio(["slerp", "lerp"], value=L.Interpolation.method, label="Path")
            keep = gr.Checkbox(value=L.Interpolation.keep_edits, label="Apply the current edits to both ends")
            button = gr.Button("Make animation", variant="primary")
        with gr.Row():
            animation = gr.Image(label="Animation (loops)", format="gif", type="filepath", interactive=False,
                                 height=300)
            strip = gr.Image(label="Frame strip", format="png", type="filepath", interactive=False, height=300)
        files = gr.File(label="Download GIF / WebP / strip", file_count="multiple", interactive=False)
        scrub = explore_page.build_scrub()
    form = InterpolationForm(end_seed=end_seed, start_seed=start_seed, frames=frames, fps=fps, method=method,
                             keep_edits=keep)
    return InterpolationPanel(form, button, animation, strip, files, scrub)


def build_view(help_text: str) -> ExploreView:
    """Lay out the whole tab in the current gr.Tab; nothing is wired yet."""
    gr.Markdown(help_text)
    with gr.Row():
        with gr.Column(scale=5):
            controls = build_controls()
            models = build_models_box()
        with gr.Column(scale=6):
            picture = build_picture()
            page = explore_page.build_carriers()
    project = explore_project.build_panel()
    grid, interpolation = build_grid(), build_interpolation()
    c = controls
    raw_edits = gr.Textbox("{}", visible=False, label="Raw z edits of every page, JSON {index: delta}")
    z = gr.Textbox("", visible=False, label="The picture's own latent z, a JSON list (empty: the seed's)")
    recipe = RecipeForm(model=c.model, seed=c.seed, truncation=c.truncation, directions=c.directions,
                        upscale=picture.upscale, size=picture.size, raw_page=c.raw_page, raw=c.raw, raw_edits=raw_edits,
                        z=z)
    return ExploreView(controls, picture, models, grid, interpolation, recipe, gr.State(None), page, project)
