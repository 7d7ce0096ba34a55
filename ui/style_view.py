"""Style's widgets: the style form (field names = API names), the results panel and the examples.

Defaults come from `StyleConfig()`, ranges from `style.transfer.LIMITS` (tests/test_slider_ranges.py checks
them). Weights are log-scale: Gradio has no log slider, so their sliders hold exponents
(`log10_style_weight = 0.3` is a style weight of 10^0.3 = 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from common.backbones import BACKBONES, RANDOM_BACKBONES
from style.transfer import INITS, LIMITS, OPTIMISERS, StyleConfig
from ui.forms import Form, Values, each

ASSETS = Path(__file__).resolve().parents[1] / "assets"
EXAMPLE_RESULT = ASSETS / "results" / "astronaut_great_wave.jpg"
STYLE_SLOTS = 3
UI_BACKBONES = [b for b in BACKBONES if b not in RANDOM_BACKBONES]  # random nets: tests and benchmarks
DEFAULTS = StyleConfig()
EXPONENTS = {"log10_content_weight": (-3, 3), "log10_style_weight": (-3, 3), "log10_tv_weight": (-4, 2)}


@dataclass(kw_only=True)
class StyleForm(Form):
    """A style-transfer run: the photo, up to three paintings with blend weights, and the options."""

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


@dataclass
class StyleView:
    """Every Style widget."""

    form: StyleForm
    run: gr.Button
    stop: gr.Button
    estimate: gr.Markdown
    preview: gr.Image
    status: gr.Markdown
    plot: gr.LinePlot
    before_after: gr.ImageSlider
    download: gr.DownloadButton


def config_of(v: Values) -> StyleConfig:
    """The form's values -> StyleConfig (ValueError with a user-facing sentence)."""
    return StyleConfig(content_weight=10 ** float(v.log10_content_weight),
                       style_weight=10 ** float(v.log10_style_weight), tv_weight=10 ** float(v.log10_tv_weight),
                       iterations=int(v.iterations), size=int(v.size),
                       optimiser=v.optimiser, init=v.init, preserve_colours=bool(v.preserve_colours),
                       style_scale=float(v.style_scale), backbone=v.backbone)


def exponent_slider(name: str, label: str, value: float, info: str) -> gr.Slider:
    """A slider over log10 of a weight (Gradio has no log slider)."""
    low, high = EXPONENTS[name]
    exponent = math.log10(value) if value > 0 else low
    return gr.Slider(low, high, value=round(exponent, 2), step=0.05, label=label, info=info)


def build_form(estimate_text: str) -> tuple[StyleForm, gr.Button, gr.Button, gr.Markdown]:
    """Content, style slots, Run / Stop, the estimate and the options (created in the current column)."""
    content = gr.Image(type="pil", label="Content (your photo)", height=260)
    styles, blends = [], []
    with gr.Row(equal_height=False):
        for i in range(STYLE_SLOTS):
            with gr.Column(min_width=150):
                styles.append(gr.Image(type="pil", label=f"Style {i + 1}", height=150))
                blends.append(gr.Slider(0, 1, value=1.0 if i == 0 else 0.5, step=0.05, label=f"Blend weight {i + 1}",
                                        info="Share of this style in the mix."))
    with gr.Row():
        run, stop = gr.Button("Stylize", variant="primary"), gr.Button("Stop", variant="stop")
    estimate = gr.Markdown(estimate_text, label="Time estimate")
    with gr.Accordion("Options", open=True):
        form = StyleForm(content=content, styles=styles, blends=blends, **build_options())
    return form, run, stop, estimate


def build_options() -> dict:
    """The option widgets by field name (defaults from StyleConfig, ranges from LIMITS)."""
    d = DEFAULTS
    return dict(
        log10_content_weight=exponent_slider("log10_content_weight", "Content weight 10^x", d.content_weight,
                                             "How closely the result keeps the photo's shapes (conv4_2 activations)."),
        log10_style_weight=exponent_slider(
            "log10_style_weight", "Style weight 10^x", d.style_weight,
            "How strongly it takes the painting's textures and colours (Gram matrices)."),
        log10_tv_weight=exponent_slider("log10_tv_weight", "Variation weight 10^x", d.tv_weight,
                                        "Smoothness: higher removes speckle and noise, too high blurs."),
        iterations=gr.Slider(*LIMITS["iterations"], value=d.iterations, step=1, label="Iterations",
                             info="In all, over every scale (coarse to fine)."),
        size=gr.Slider(*LIMITS["size"], value=d.size, step=32, label="Output size (longest side, px)",
                       info="Time grows with the square of the size: keep it small on a CPU."),
        optimiser=gr.Radio(list(OPTIMISERS), value=d.optimiser, label="Optimiser",
                           info="L-BFGS converges in far fewer iterations; Adam is steadier."),
        init=gr.Radio(list(INITS), value=d.init, label="Start from",
                      info="The photo itself, random noise, or flat grey."),
        preserve_colours=gr.Checkbox(value=d.preserve_colours, label="Preserve the photo's colours",
                                     info="Transfer luminance only; the photo keeps its own colours."),
        style_scale=gr.Slider(*LIMITS["style_scale"], value=d.style_scale, step=0.05, label="Style scale",
                              info="Size of the painting relative to the result: bigger strokes above 1."),
        backbone=gr.Dropdown(UI_BACKBONES, value=d.backbone, label="Backbone",
                             info="auto = torchvision VGG19 if already cached, else the offline VGG16 (HED)."))


def build_view(where: str, estimate_text: str) -> StyleView:
    """Lay out the whole tab in the current gr.Tab; nothing is wired yet."""
    gr.Markdown(f"Paint a photo in the style of a painting (Gatys et al.'s neural style transfer). Runs on {where}.")
    with gr.Row():
        with gr.Column(scale=1):
            form, run, stop, estimate = build_form(estimate_text)
        with gr.Column(scale=1):
            preview = gr.Image(type="pil", label="Live preview", height=320, interactive=False, elem_id="style-preview")
            status = gr.Markdown("Pick a photo and a painting, then press Stylize.", label="Status")
            plot = gr.LinePlot(x="iteration", y="loss", color="term", title="Losses (weighted)", label="Losses",
                               height=220)
            before_after = gr.ImageSlider(type="pil", label="Before / after", interactive=False)
            download = gr.DownloadButton("Download PNG (full size)")
    view = StyleView(form, run, stop, estimate, preview, status, plot, before_after, download)
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
                    inputs=[content, style_1, view.preview],
                    label="A real result, computed beforehand (384 px, vgg16-hed, CPU): click to see it",
                    api_name="style_example_result")
