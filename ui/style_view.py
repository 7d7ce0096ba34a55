"""Style's widgets: the forms (field names = API names), the instant picture, the presets, the refinement.

Defaults come from `StyleConfig()` and `InstantConfig()`, ranges from `style.limits.StyleLimits` (inside the
engines' own `style.transfer.LIMITS` and `InstantConfig` limits; tests/test_slider_ranges.py checks them).
The optimisation's weights are log-scale: Gradio has no log slider, so their sliders hold exponents
(`log10_style_weight = 0.3` is a style weight of 10^0.3 = 2). Nothing here handles an event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import torch

from common.backbones import BACKBONES, RANDOM_BACKBONES
from style.instant import InstantConfig, preset_labels
from style.limits import StyleLimits
from style.transfer import INITS, LIMITS, OPTIMISERS, StyleConfig
from ui.forms import Form, Values, each

ASSETS = Path(__file__).resolve().parents[1] / "assets"
EXAMPLE_RESULT = ASSETS / "results" / "astronaut_great_wave.jpg"
STYLE_SLOTS = 3
UI_BACKBONES = [b for b in BACKBONES if b not in RANDOM_BACKBONES]  # random nets: tests and benchmarks
DEFAULTS, INSTANT, UI = StyleConfig(), InstantConfig(), StyleLimits()
EXPONENTS = {"log10_content_weight": (-3, 3), "log10_style_weight": (-3, 3), "log10_tv_weight": (-4, 2)}
SOURCES = [("the paintings", "paintings"), ("the presets", "presets")]
COMPARISONS = ["photo | instant", "instant | refined", "photo | refined"]


@dataclass(kw_only=True)
class StyleForm(Form):
    """The optimisation (/stylize): the photo, up to three paintings with blend weights, and the options."""

    content: gr.Image
    styles: list[gr.Image] = each("style")
    blends: list[gr.Slider] = each("blend")
    log10_content_weight: gr.Slider
    log10_style_weight: gr.Slider
    log10_tv_weight: gr.Slider
    iterations: gr.Slider
    size: gr.Slider
    optimiser: gr.Radio
    init: gr.Radio
    preserve_colours: gr.Checkbox
    style_scale: gr.Slider
    backbone: gr.Dropdown


@dataclass(kw_only=True)
class PaintingsForm(Form):
    """The photo and the paintings (the same widgets as StyleForm's): what /stylize_instant paints."""

    content: gr.Image
    styles: list[gr.Image] = each("style")
    blends: list[gr.Slider] = each("blend")


@dataclass(kw_only=True)
class LookForm(Form):
    """How the instant picture is painted (InstantConfig): strength, colours, size."""

    strength: gr.Slider
    preserve_colours: gr.Checkbox
    size: gr.Slider


@dataclass(kw_only=True)
class PresetForm(Form):
    """A mix of built-in presets: which ones (0-25) and their weights."""

    presets: list[gr.Dropdown] = each("preset")
    preset_weights: list[gr.Slider] = each("preset_weight")


@dataclass
class InstantPanel:
    """The instant picture, what paints it, and its line of facts."""

    look: LookForm
    source: gr.Radio  # paint with the paintings or the presets
    picture: gr.Image
    status: gr.Markdown


@dataclass
class PresetPanel:
    """The 26 presets as a clickable gallery, and the mixer."""

    gallery: gr.Gallery
    form: PresetForm


@dataclass
class RefinePanel:
    """The lesson's optimisation: run / stop, estimate, live preview, losses, status, download."""

    run: gr.Button
    stop: gr.Button
    estimate: gr.Markdown
    preview: gr.Image
    status: gr.Markdown
    plot: gr.LinePlot
    download: gr.DownloadButton


@dataclass
class StyleView:
    """Every Style widget, by panel; `form` gathers the optimisation's inputs from several panels."""

    form: StyleForm
    paintings: PaintingsForm
    instant: InstantPanel
    presets: PresetPanel
    refine: RefinePanel
    compare: gr.Radio  # which two pictures the before / after slider shows
    before_after: gr.ImageSlider


def config_of(v: Values, strength: float = INSTANT.strength) -> StyleConfig:
    """The optimisation form's values (and the instant start's strength) -> StyleConfig (ValueError with a
    user-facing sentence)."""
    return StyleConfig(content_weight=10 ** float(v.log10_content_weight),
                       style_weight=10 ** float(v.log10_style_weight), tv_weight=10 ** float(v.log10_tv_weight),
                       iterations=int(v.iterations), size=int(v.size), optimiser=v.optimiser, init=v.init,
                       instant_strength=float(strength), preserve_colours=bool(v.preserve_colours),
                       style_scale=float(v.style_scale), backbone=v.backbone)


def exponent_slider(name: str, label: str, value: float, info: str) -> gr.Slider:
    """A slider over log10 of a weight (Gradio has no log slider)."""
    low, high = EXPONENTS[name]
    exponent = math.log10(value) if value > 0 else low
    return gr.Slider(low, high, value=round(exponent, 2), step=0.05, label=label, info=info)


def build_inputs() -> tuple[gr.Image, list[gr.Image], list[gr.Slider]]:
    """The photo, and the painting slots with their blend weights (in the current column)."""
    content = gr.Image(type="pil", label="Your photo", height=240, elem_id="style-content")
    styles, blends = [], []
    with gr.Row(equal_height=False):
        for i in range(STYLE_SLOTS):
            with gr.Column(min_width=150):
                styles.append(gr.Image(type="pil", label=f"Painting {i + 1}", height=140,
                                       elem_id=f"style-painting-{i + 1}"))
                blends.append(gr.Slider(*UI.weight_range, value=1.0 if i == 0 else 0.5, step=0.05,
                                        label=f"Blend weight {i + 1}", info="Share of this painting in the mix."))
    return content, styles, blends


def build_instant(device: torch.device) -> InstantPanel:
    """The instant picture and its controls (in the current column)."""
    picture = gr.Image(type="filepath", label="Instant picture", height=400, interactive=False,
                       buttons=["download", "fullscreen"], elem_id="style-instant")
    status = gr.Markdown("Pick a photo and a painting (or click an example): the picture appears here.",
                         label="What was painted", elem_id="style-instant-status")
    low, high, default = UI.instant_size(device)
    strength_low, strength_high, strength = UI.strength()
    look = LookForm(
        strength=gr.Slider(strength_low, strength_high, value=strength, step=UI.strength_step, label="Strength",
                           info="0 keeps the photo's own style, 1 is the painting's, above 1 exaggerates it.",
                           elem_id="style-strength"),
        preserve_colours=gr.Checkbox(value=DEFAULTS.preserve_colours, label="Preserve the photo's colours",
                                     info="Paint the light and dark only; the photo keeps its colours."),
        size=gr.Slider(low, high, value=default, step=UI.instant_size_step, label="Picture size (longest side, px)",
                       info=f"Painted at this size, up to {high} px here; {default} px follows the sliders live."))
    source = gr.Radio(SOURCES, value="paintings", label="Paint with",
                      info="Clicking a preset below switches to the presets; a new painting switches back.")
    return InstantPanel(look, source, picture, status)


def build_presets() -> PresetPanel:
    """The preset gallery (filled once the page loads) and the mixer."""
    with gr.Accordion("Presets: 26 built-in styles (Dumoulin et al. 2017): click one, or mix them", open=True):
        gallery = gr.Gallery(label="Presets (each painted on the cat photo)", columns=13, height=230,
                             allow_preview=False, object_fit="cover", elem_id="style-presets")
        choices = list(zip(preset_labels(), range(len(preset_labels())), strict=True))
        presets, weights = [], []
        with gr.Row():
            for i in range(UI.mixer_slots):
                with gr.Column(min_width=150):
                    presets.append(gr.Dropdown(choices, value=i, label=f"Preset {i + 1} of the mix"))
                    weights.append(gr.Slider(*UI.weight_range, value=1.0 if i == 0 else 0.0, step=0.05,
                                             label=f"Preset weight {i + 1}", info="Share of this preset in the mix."))
    return PresetPanel(gallery, PresetForm(presets=presets, preset_weights=weights))


def build_options(device: torch.device) -> dict:
    """The optimisation's option widgets by field name (defaults from StyleConfig, ranges from StyleLimits)."""
    d = DEFAULTS
    return dict(
        log10_content_weight=exponent_slider("log10_content_weight", "Content weight 10^x", d.content_weight,
                                             "How closely the result keeps the photo's shapes (conv4_2 activations)."),
        log10_style_weight=exponent_slider(
            "log10_style_weight", "Style weight 10^x", d.style_weight,
            "How strongly it takes the painting's textures and colours (Gram matrices)."),
        log10_tv_weight=exponent_slider("log10_tv_weight", "Variation weight 10^x", d.tv_weight,
                                        "Smoothness: higher removes speckle and noise, too high blurs."),
        iterations=gr.Slider(*UI.iterations, value=d.iterations, step=1, label="Iterations",
                             info="In all, over every scale (coarse to fine)."),
        size=gr.Slider(*UI.size(device), value=d.size, step=UI.size_step, label="Output size (longest side, px)",
                       info="Time grows with the square of the size: keep it small on a CPU."),
        optimiser=gr.Radio(list(OPTIMISERS), value=d.optimiser, label="Optimiser",
                           info="L-BFGS converges in far fewer iterations; Adam is steadier."),
        init=gr.Radio(list(INITS), value=d.init, label="Start from",
                      info="The instant picture (at this strength), the photo itself, random noise, or flat grey."),
        style_scale=gr.Slider(*LIMITS["style_scale"], value=d.style_scale, step=0.05, label="Style scale",
                              info="Size of the painting relative to the result: bigger strokes above 1."),
        backbone=gr.Dropdown(UI_BACKBONES, value=d.backbone, label="Backbone",
                             info="auto = torchvision VGG19 if already cached, else the offline VGG16 (HED)."))


def build_refine(estimate_text: str, device: torch.device) -> tuple[RefinePanel, dict]:
    """The optimisation's accordion: its options (by field name) and its panel."""
    with gr.Accordion("Refine with the lesson's optimisation (Gatys et al.: content, style and variation losses)",
                      open=True), gr.Row():
        with gr.Column(scale=1):
            with gr.Row():
                run = gr.Button("Refine with the lesson's optimisation", variant="primary", elem_id="style-refine")
                stop = gr.Button("Stop", variant="stop")
            estimate = gr.Markdown(estimate_text, label="Time estimate")
            options = build_options(device)
        with gr.Column(scale=1):
            preview = gr.Image(type="pil", label="Refinement (live)", height=320, interactive=False,
                               elem_id="style-preview")
            status = gr.Markdown("Press Refine: the optimisation starts from the instant picture.", label="Status",
                                 elem_id="style-status")
            plot = gr.LinePlot(x="iteration", y="loss", color="term", title="Losses (weighted)", label="Losses",
                               height=220)
            download = gr.DownloadButton("Download the refined PNG (full size)")
    return RefinePanel(run, stop, estimate, preview, status, plot, download), options


def build_view(where: str, estimate_text: str, device: torch.device) -> StyleView:
    """Lay out the whole tab in the current gr.Tab; nothing is wired yet."""
    gr.Markdown("Paint a photo in the style of a painting. The **instant picture** is Magenta's feed-forward "
                f"network (Ghiasi et al. 2017): one pass, live under the sliders. **Refine** runs the lesson's "
                f"optimisation (Gatys et al.) from it, and shows what its losses do. Runs on {where}.")
    with gr.Row():
        with gr.Column(scale=1):
            content, styles, blends = build_inputs()
            examples_at = gr.Column()
        with gr.Column(scale=1):
            instant = build_instant(device)
    presets = build_presets()
    refine, options = build_refine(estimate_text, device)
    with gr.Row(equal_height=False):
        compare = gr.Radio(COMPARISONS, value=COMPARISONS[0], label="Before / after: compare", scale=1)
        before_after = gr.ImageSlider(type="filepath", label="Before / after", interactive=False, scale=3,
                                      elem_id="style-compare")
    form = StyleForm(content=content, styles=styles, blends=blends,
                     preserve_colours=instant.look.preserve_colours, **options)
    view = StyleView(form, PaintingsForm(content=content, styles=styles, blends=blends), instant, presets, refine,
                     compare, before_after)
    with examples_at:
        build_examples(view)
    return view


def build_examples(view: StyleView) -> None:
    """Photos (scikit-image) and public-domain paintings (GCompris); one precomputed real result."""
    content, style_1 = view.form.content, view.form.styles[0]
    photos, paintings = ASSETS / "content", ASSETS / "styles"
    pairs = [("astronaut", "hokusai_great_wave"), ("chelsea", "van_gogh_village_street_auvers"),
             ("coffee", "kandinsky_composition_viii"), ("astronaut", "renoir_moulin_de_la_galette")]
    gr.Examples([[str(photos / f"{c}.jpg"), str(paintings / f"{s}.jpg")] for c, s in pairs],
                inputs=[content, style_1], label="Examples (photos: scikit-image; paintings: public domain)",
                api_name="style_example", elem_id="style-examples")
    if EXAMPLE_RESULT.is_file():
        gr.Examples([[str(photos / "astronaut.jpg"), str(paintings / "hokusai_great_wave.jpg"), str(EXAMPLE_RESULT)]],
                    inputs=[content, style_1, view.refine.preview],
                    label="A real optimisation result, computed beforehand (384 px, vgg16-hed, CPU): click to see it",
                    api_name="style_example_result")
