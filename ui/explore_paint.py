"""Explore, "Paint it": the current picture, or every frame of an interpolation, through the instant painter.

Widgets <-> `gan.explorer.latent` (the frames, exactly as /generate and /interpolate make them) and
`style.instant` (the painter; the engines never import each other, this module joins them). A style is a
painting (Magenta's arbitrary-style network, Ghiasi et al. 2017) or one of the 26 presets (Dumoulin et al.
2017). An animation is painted with one style vector for every frame (`paint_frames`), so it does not
flicker. The tab's own module, hooked into Explore by one call in ui/explore.py (`build_paint_it`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import gradio as gr
from PIL import Image

from common.device import intra_op_threads
from gan.explorer import latent as L
from style import instant
from style.limits import StyleLimits
from ui.files import publish, publish_image
from ui.forms import Form, on
from weights.fetch import WeightsUnavailable

UI = StyleLimits()
TARGETS = [("the current picture", "picture"), ("every frame of the interpolation", "interpolation")]
STYLES_FROM = [("a painting", "painting"), ("a preset", "preset")]
MAX_FRAME_SIDE = 256  # as /interpolate: a 512 px GIF of 46 frames weighs megabytes
DOC = ("Paint the current picture (paint='picture', the /generate settings) or every frame of the interpolation "
       "(paint='interpolation', the /interpolate settings) with the instant painter in the style of `painting` "
       "(style_from='painting') or of preset 0-25 (style_from='preset'), at `strength` 0-1.5. Returns the painted "
       "picture (PNG), the painted animation (GIF; empty for a picture) and the files.")


@dataclass(kw_only=True)
class PaintItForm(Form):
    """What to paint and in which style; the field names are /paint_it's parameter names."""

    paint: gr.Radio
    style_from: gr.Radio
    painting: gr.Image
    preset: gr.Dropdown
    strength: gr.Slider
    preserve_colours: gr.Checkbox


@dataclass
class PaintItPanel:
    """The form, its button and what it gives."""

    form: PaintItForm
    button: gr.Button
    picture: gr.Image
    animation: gr.Image
    files: gr.File


def build_panel() -> PaintItPanel:
    """The "Paint it" accordion (in the current layout context, the end of the Explore tab)."""
    strength_low, strength_high, strength = UI.strength()
    labels = instant.preset_labels()
    with gr.Accordion("Paint it: the picture or the interpolation through the instant painter", open=False,
                      elem_id="explore-paint-it"), gr.Row():
        with gr.Column(scale=1):
            form = PaintItForm(
                paint=gr.Radio(TARGETS, value="picture", label="Paint"),
                style_from=gr.Radio(STYLES_FROM, value="preset", label="In the style of"),
                painting=gr.Image(type="pil", label="Painting", height=160, elem_id="explore-paint-painting"),
                preset=gr.Dropdown(list(zip(labels, range(len(labels)), strict=True)), value=0, label="Preset",
                                   info="The Style tab's gallery shows each one."),
                strength=gr.Slider(strength_low, strength_high, value=strength, step=UI.strength_step,
                                   label="Paint strength", info="0 keeps the face, 1 paints it fully."),
                preserve_colours=gr.Checkbox(value=instant.InstantConfig().preserve_colours,
                                             label="Keep the face's colours"))
            button = gr.Button("Paint it", variant="primary", elem_id="explore-paint-button")
        with gr.Column(scale=2), gr.Row():
            picture = gr.Image(label="Painted picture", type="filepath", format="png", interactive=False, height=300,
                               elem_id="explore-painted")
            animation = gr.Image(label="Painted animation (loops)", type="filepath", format="gif",
                                 interactive=False, height=300, elem_id="explore-painted-animation")
    files = gr.File(label="Download the painted PNG / GIF / WebP", file_count="multiple", interactive=False)
    return PaintItPanel(form, button, picture, animation, files)


class PaintIt:
    """The handler, bound to the Explore tab (its model loader, recipe and interpolation forms)."""

    def __init__(self, explore: Any, panel: PaintItPanel) -> None:
        self.ex, self.panel = explore, panel

    def frames(self, request: gr.Request | None, given: dict, what: str) -> list[Image.Image]:
        """The current picture, or the interpolation's frames, as Explore renders them (longest side <= 256).
        The interpolation's settings are checked whatever is painted, as /interpolate checks them."""
        ex = self.ex
        r, j = ex.v.recipe.read(given), ex.v.interpolation.form.read(given)
        loaded = ex.load(r.model, request)
        recipe, _ = ex.recipe(r, loaded.G.cfg.nz)
        recipe = replace(recipe, size=min(recipe.size, MAX_FRAME_SIDE))
        try:
            job = L.Interpolation(start=recipe, end_seed=int(j.end_seed), frames=int(j.frames), method=j.method,
                                  keep_edits=bool(j.keep_edits), fps=int(j.fps),
                                  start_seed=None if j.start_seed in (None, "", -1) else int(j.start_seed))
        except (ValueError, TypeError, OverflowError) as err:
            raise gr.Error(str(err)) from err
        if what == "picture":
            return [L.to_pil(L.render(loaded.G, recipe, loaded.directions), recipe.size, recipe.upscale)]
        return L.interpolate(loaded.G, job, loaded.directions)

    def painted(self, frames: list[Image.Image], p: Any) -> list[Image.Image]:
        """The frames through the painter in p's style (gr.Error with the engine's sentence)."""
        if p.style_from == "painting" and p.painting is None:
            raise gr.Error("Add a painting, or choose 'a preset'.")
        device = self.ex.ctx.device
        try:
            config = instant.InstantConfig(strength=float(p.strength), preserve_colours=bool(p.preserve_colours))
            with intra_op_threads(config.cpu_threads if device.type == "cpu" else None):
                if p.style_from == "painting":
                    painting = p.painting if isinstance(p.painting, Image.Image) else Image.open(p.painting)
                    return instant.paint_frames(frames, [painting.convert("RGB")], None, config, device)
                return instant.paint_preset_frames(frames, int(p.preset), config, device)
        except (ValueError, TypeError, OverflowError, OSError, WeightsUnavailable) as err:
            raise gr.Error(str(err)) from err

    def paint_it(self, request: gr.Request, painting: Any = None, **given: Any) -> dict:
        """The current picture or the interpolation's frames, painted: picture, animation, files."""
        p = self.panel.form.read(given, painting=painting)
        if p.paint not in ("picture", "interpolation"):
            raise gr.Error("paint must be 'picture' or 'interpolation'.")
        if p.style_from not in ("painting", "preset"):
            raise gr.Error("style_from must be 'painting' or 'preset'.")
        frames = self.painted(self.frames(request, given, p.paint), p)
        stem = "painted" if p.paint == "picture" else "painted-interpolation"
        png = publish_image(frames[0], f"{stem}.png")
        if p.paint == "picture":
            return {self.panel.picture: png, self.panel.animation: None, self.panel.files: [png]}
        fps = int(self.ex.v.interpolation.form.read(given).fps)  # checked by frames()
        gif = publish(L.animation_bytes(frames, fps, "gif"), f"{stem}.gif")
        webp = publish(L.animation_bytes(frames, fps, "webp"), f"{stem}.webp")
        return {self.panel.picture: png, self.panel.animation: gif, self.panel.files: [gif, webp, png]}


def build_paint_it(explore: Any) -> PaintIt:
    """Lay out "Paint it" at the end of the current (Explore) tab and wire /paint_it."""
    panel = build_panel()
    painter = PaintIt(explore, panel)
    v = explore.v
    on(panel.button.click, painter.paint_it, inputs=[v.recipe, v.interpolation.form, panel.form],
       outputs=[panel.picture, panel.animation, panel.files], api_name="paint_it", doc=DOC,
       concurrency_limit=2, concurrency_id="instant")
    return painter
