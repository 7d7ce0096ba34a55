"""Style tab: paint a photo in the style of one to three paintings (Gatys neural style transfer), live.

Widgets <-> `StyleConfig` / `StyleStep` only; the engine (style/) does the work. Weights are
log-scale: Gradio has no log slider, so the sliders hold exponents ("style weight = 10^x").
Stop sets a per-session event that the engine checks every iteration, so a stopped run still
returns its current image at full size (a `cancels=` would kill the generator before that).
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd
import torch
from PIL import Image

from common.device import describe
from common.zerogpu import StopFlag, call_device, gpu
from common.backbones import BACKBONES, RANDOM_BACKBONES, BackboneUnavailable
from style.transfer import INITS, OPTIMISERS, StyleConfig, estimate_seconds, stylize
from ui import files
from ui.context import AppContext

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[1] / "assets"
STYLE_SLOTS = 3
UI_BACKBONES = [b for b in BACKBONES if b not in RANDOM_BACKBONES]  # random nets: tests and benchmarks
DEFAULTS = StyleConfig()
# Seconds per megapixel-iteration of the default settings (vgg16-hed, conv1_1..conv5_1): on the CPU
# measured on the 2-core development machine (4.0-4.5 at 256 and 384 px, 27 Nov 2026); on GPUs a
# guess, as no GPU has run here yet. A finished run replaces its device's value with what it measured.
MEASURED_COST = {"cpu": 4.5, "cuda": 0.15, "mps": 2.0}
MIN_WORK = 1.0  # megapixel-iterations a run must do to update the estimate (the default 256 px run does 3.9)
COST_BASIS = {"cpu": "measured on a 2-core CPU", "cuda": "a guess until the first run", "mps": "a guess until the first run"}
_cost_lock = threading.Lock()
EXAMPLE_RESULT = ASSETS / "results" / "astronaut_great_wave.jpg"


@dataclass
class StyleWidgets:
    """The tab's input widgets, in the order the handler takes them."""

    inputs: list[gr.components.Component]
    run: gr.Button
    stop: gr.Button
    estimate: gr.Markdown


def exponent_slider(label: str, value: float, info: str, low: float = -3, high: float = 3) -> gr.Slider:
    """A slider over log10 of a weight (Gradio has no log slider)."""
    exponent = math.log10(value) if value > 0 else low
    return gr.Slider(low, high, value=round(exponent, 2), step=0.05, label=label, info=info)


def seconds_per_mpx(device_type: str) -> float:
    """The current estimate of seconds per megapixel-iteration on this device type."""
    with _cost_lock:
        return MEASURED_COST.get(device_type, MEASURED_COST["cpu"])


def on_estimate(iterations: float, size: float, ctx_device: str) -> str:
    """An honest time estimate for the chosen iterations and size on this machine."""
    try:  # NaN / inf can only come through the API (sliders clamp): refuse them like any bad value
        config = StyleConfig(iterations=int(iterations), size=int(size))
    except (ValueError, OverflowError, TypeError) as err:
        raise gr.Error(f"Cannot estimate: {err}") from err
    seconds = estimate_seconds(config, seconds_per_mpx(ctx_device))
    scales = " → ".join(str(s) for s in config.scales())
    basis = COST_BASIS.get(ctx_device, "a guess")
    return (f"≈ **{seconds:.0f} s** on {ctx_device.upper()} for {int(iterations)} iterations over scales "
            f"{scales} px (square image; {seconds_per_mpx(ctx_device):.2f} s per megapixel-iteration, {basis}; "
            f"a busy machine is slower).")


def build_config(cw_exp, sw_exp, tv_exp, iterations, size, optimiser, init, preserve, style_scale,
                 backbone) -> StyleConfig:
    """Widget values -> StyleConfig (raises ValueError with a user-facing sentence)."""
    return StyleConfig(content_weight=10 ** float(cw_exp), style_weight=10 ** float(sw_exp),
                       tv_weight=10 ** float(tv_exp), iterations=int(iterations), size=int(size),
                       optimiser=optimiser, init=init, preserve_colours=bool(preserve),
                       style_scale=float(style_scale), backbone=backbone)


def collect_styles(slots: list) -> tuple[list[Image.Image], list[float]]:
    """The filled style slots and their blend weights."""
    images, weights = [], []
    for image, weight in zip(slots[0::2], slots[1::2]):
        if image is not None and float(weight) > 0:
            images.append(image if isinstance(image, Image.Image) else Image.open(image))
            weights.append(float(weight))
    if not images:
        raise gr.Error("Add at least one style image with a blend weight above 0.")
    return images, weights


def loss_frame(history: list[dict]) -> pd.DataFrame:
    """Loss history in long form for the LinePlot."""
    return pd.DataFrame(history, columns=["iteration", "loss", "term"])


def status_line(step) -> str:
    """One line of progress text."""
    w, h = step.scale
    return (f"iteration {step.iteration}/{step.total} · {w}×{h} px · total loss {step.losses['total']:.4f} · "
            f"{step.elapsed:.0f} s elapsed · ETA {step.eta:.0f} s · backbone {step.backbone}")


def remember_cost(device_type: str, step, config: StyleConfig, aspect: float) -> None:
    """Update the time estimate with what this run measured (only full runs of some size count: in a
    tiny run, per-iteration overheads dominate and would make every later estimate 3x too long)."""
    work = estimate_seconds(config, 1.0, aspect)
    if step.stopped or step.elapsed <= 0 or work < MIN_WORK:
        return
    with _cost_lock:
        MEASURED_COST[device_type] = step.elapsed / work
        COST_BASIS[device_type] = "measured by this server's last run"


def out_of_memory_message(device: torch.device, size: int) -> str:
    """Free the allocator's cache; the message offers a retry at half the size."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    smaller = max(32, size // 2)
    return (f"The {device.type} device ran out of memory at {size} px. Retry at {smaller} px (Output size), "
            "or with fewer style images.")


def make_handlers(ctx: AppContext):
    """The tab's event handlers, closed over the app context."""
    device_type = call_device(ctx.device).type  # where runs happen (the GPU on ZeroGPU)

    def stop_event(request: gr.Request | None) -> StopFlag:
        # Also a file: on ZeroGPU the run is in a forked worker that sees no main-process memory.
        state = ctx.sessions.get(request.session_hash if request else None)
        return state.extras.setdefault("style_stop", StopFlag(state.directory / "style.stop"))

    def on_stylize(content, style1, weight1, style2, weight2, style3, weight3, cw_exp, sw_exp, tv_exp,
                   iterations, size, optimiser, init, preserve, style_scale, backbone,
                   request: gr.Request, progress=gr.Progress()):
        """Run a style transfer, streaming preview, before/after, loss plot, status and the PNG."""
        slots = [style1, weight1, style2, weight2, style3, weight3]
        options = (cw_exp, sw_exp, tv_exp, iterations, size, optimiser, init, preserve, style_scale, backbone)
        if content is None:
            raise gr.Error("Add a content image (a photo) first.")
        styles, weights = collect_styles(slots)
        try:
            config = build_config(*options)
        except ValueError as err:
            raise gr.Error(str(err)) from err
        event = stop_event(request)
        event.clear()
        history: list[dict] = []
        device = call_device(ctx.device)  # the GPU inside a ZeroGPU call, else the app's device
        try:
            for step in stylize(content, styles, weights, config, device, stop_event=event):
                history += [{"iteration": step.iteration, "loss": step.losses[k], "term": k}
                            for k in ("total", "content", "style", "tv")]
                progress((step.iteration, step.total), desc=f"ETA {step.eta:.0f} s")
                if step.done:
                    yield finish_outputs(content, step, history)
                    remember_cost(device_type, step, config, content.width / content.height)
                    return
                yield (files.publish_image(step.preview, "preview.webp") if step.preview is not None else gr.skip(),
                       gr.skip(),
                       loss_frame(history) if step.preview is not None else gr.skip(),
                       status_line(step), gr.skip())
        except BackboneUnavailable as err:
            raise gr.Error(str(err)) from err
        except torch.OutOfMemoryError as err:
            raise gr.Error(out_of_memory_message(device, config.size)) from err

    def on_stop(request: gr.Request) -> str:
        """Ask the running transfer to stop after its current iteration."""
        stop_event(request).set()
        return "Stopping after this iteration…"

    return gpu(duration=gpu_seconds)(on_stylize), on_stop  # ZeroGPU on Spaces; unchanged elsewhere


def gpu_seconds(content, style1, weight1, style2, weight2, style3, weight3, cw_exp, sw_exp, tv_exp,
                iterations, size, *_rest, **_kw) -> int:
    """The GPU time a ZeroGPU call asks for (spaces.GPU's duration, given the handler's arguments):
    a generous bound for the chosen work, since a short request queues first and spends less of
    the visitor's daily quota. ~0.1 s per iteration at 512 px on a large GPU, 4x that at 1024 px."""
    per_iteration = 0.1 * (float(size) / 512) ** 2
    return int(min(300, max(30, 20 + 2 * float(iterations) * per_iteration)))


def finish_outputs(content: Image.Image, step, history):
    """Final widget values: result, before/after, plot, status, PNG file at full size."""
    png = files.publish_image(step.result, f"stylized-{step.iteration}.png")
    before = files.publish_image(content.convert("RGB").resize(step.result.size, Image.LANCZOS), "before.webp")
    verb = "Stopped" if step.stopped else "Done"
    status = f"{verb}: {status_line(step)}. Result {step.result.width}×{step.result.height} px."
    return png, (before, png), loss_frame(history), status, png


def build_style_inputs(device_type: str) -> StyleWidgets:
    """Content, style slots and option widgets (defaults from StyleConfig)."""
    content = gr.Image(type="pil", label="Content (your photo)", height=260)
    slots: list = []
    with gr.Row(equal_height=False):
        for i in range(STYLE_SLOTS):
            with gr.Column(min_width=150):
                slots.append(gr.Image(type="pil", label=f"Style {i + 1}", height=150))
                slots.append(gr.Slider(0, 1, value=1.0 if i == 0 else 0.5, step=0.05, label=f"Blend weight {i + 1}",
                                       info="Share of this style in the mix."))
    with gr.Row():
        run, stop = gr.Button("Stylize", variant="primary"), gr.Button("Stop", variant="stop")
    estimate = gr.Markdown(on_estimate(DEFAULTS.iterations, DEFAULTS.size, device_type))
    with gr.Accordion("Options", open=True):
        options = [
            exponent_slider("Content weight 10^x", DEFAULTS.content_weight,
                            "How closely the result keeps the photo's shapes (conv4_2 activations)."),
            exponent_slider("Style weight 10^x", DEFAULTS.style_weight,
                            "How strongly it takes the painting's textures and colours (Gram matrices)."),
            exponent_slider("Variation weight 10^x", DEFAULTS.tv_weight,
                            "Smoothness: higher removes speckle and noise, too high blurs.", low=-4, high=2),
            gr.Slider(10, 1000, value=DEFAULTS.iterations, step=10, label="Iterations",
                      info="In all, over every scale (coarse to fine)."),
            gr.Slider(64, 1024, value=DEFAULTS.size, step=32, label="Output size (longest side, px)",
                      info="Time grows with the square of the size: keep it small on a CPU."),
            gr.Radio(list(OPTIMISERS), value=DEFAULTS.optimiser, label="Optimiser",
                     info="L-BFGS converges in far fewer iterations; Adam is steadier."),
            gr.Radio(list(INITS), value=DEFAULTS.init, label="Start from",
                     info="The photo itself, random noise, or flat grey."),
            gr.Checkbox(value=DEFAULTS.preserve_colours, label="Preserve the photo's colours",
                        info="Transfer luminance only; the photo keeps its own colours."),
            gr.Slider(0.25, 2.0, value=DEFAULTS.style_scale, step=0.05, label="Style scale",
                      info="Size of the painting relative to the result: bigger strokes above 1."),
            gr.Dropdown(UI_BACKBONES, value=DEFAULTS.backbone, label="Backbone",
                        info="auto = torchvision VGG19 if already cached, else the offline VGG16 (HED)."),
        ]
    return StyleWidgets(inputs=[content, *slots, *options], run=run, stop=stop, estimate=estimate)


def build_style_tab(ctx: AppContext) -> None:
    """Build the Style tab."""
    run_device = call_device(ctx.device)  # the app's device, or a ZeroGPU call's GPU
    where = "a ZeroGPU GPU, attached per run" if run_device != ctx.device else describe(ctx.device)
    gr.Markdown("Paint a photo in the style of a painting (Gatys et al.'s neural style transfer). "
                f"Runs on {where}.")
    on_stylize, on_stop = make_handlers(ctx)
    with gr.Row():
        with gr.Column(scale=1):
            widgets = build_style_inputs(run_device.type)
        with gr.Column(scale=1):
            preview = gr.Image(type="pil", label="Live preview", height=320, interactive=False, elem_id="style-preview")
            status = gr.Markdown("Pick a photo and a painting, then press Stylize.")
            plot = gr.LinePlot(x="iteration", y="loss", color="term", title="Losses (weighted)", height=220)
            before_after = gr.ImageSlider(type="pil", label="Before / after", interactive=False)
            download = gr.DownloadButton("Download PNG (full size)")
    build_examples(widgets, preview, before_after)
    iterations, size = widgets.inputs[1 + 2 * STYLE_SLOTS + 3], widgets.inputs[1 + 2 * STYLE_SLOTS + 4]
    device_box = gr.State(run_device.type)
    gr.on([iterations.change, size.change], on_estimate, [iterations, size, device_box], widgets.estimate,
          api_name="style_estimate", show_progress="hidden")
    widgets.run.click(on_stylize, widgets.inputs, [preview, before_after, plot, status, download],
                      api_name="stylize", concurrency_limit=1).then(
        on_estimate, [iterations, size, device_box], widgets.estimate, api_name="style_estimate_after_run")
    widgets.stop.click(on_stop, None, status, api_name="stop_stylize", concurrency_limit=None)
    ctx.sessions.on_close(lambda _key, state: state.extras.get("style_stop", threading.Event()).set())


def build_examples(widgets: StyleWidgets, preview: gr.Image, before_after: gr.ImageSlider) -> None:
    """Photos (scikit-image) and public-domain paintings (GCompris); one precomputed real result."""
    content, style1 = widgets.inputs[0], widgets.inputs[1]
    photos, paintings = ASSETS / "content", ASSETS / "styles"
    pairs = [("astronaut", "hokusai_great_wave"), ("chelsea", "van_gogh_village_street_auvers"),
             ("coffee", "kandinsky_composition_viii"), ("astronaut", "renoir_moulin_de_la_galette")]
    gr.Examples([[str(photos / f"{c}.jpg"), str(paintings / f"{s}.jpg")] for c, s in pairs],
                inputs=[content, style1], label="Examples (photos: scikit-image; paintings: public domain)",
                api_name="style_example", elem_id="style-examples")
    if EXAMPLE_RESULT.is_file():
        gr.Examples([[str(photos / "astronaut.jpg"), str(paintings / "hokusai_great_wave.jpg"), str(EXAMPLE_RESULT)]],
                    inputs=[content, style1, preview],
                    label="A real result, computed beforehand (384 px, vgg16-hed, CPU): click to see it",
                    api_name="style_example_result")
