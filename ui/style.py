"""Style tab: paint a photo in the style of one to three paintings (Gatys neural style transfer), live.

Widgets <-> `StyleConfig` / `StyleStep` only; the engine (style/) does the work; the widgets are in
ui/style_view.py. Stop sets a per-session flag that the engine checks every iteration, so a stopped run
still returns its current image at full size (a `cancels=` would kill the generator before that).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import gradio as gr
import pandas as pd
import torch
from PIL import Image

from common.backbones import BackboneUnavailable
from common.device import describe
from common.zerogpu import StopFlag, call_device, gpu
from style.transfer import StyleConfig, estimate_seconds, stylize
from ui.context import AppContext
from ui.files import publish_image
from ui.forms import on
from ui.style_view import DEFAULTS, StyleView, build_view, config_of
from weights.fetch import WeightsUnavailable

log = logging.getLogger(__name__)

# Seconds per megapixel-iteration of the default settings (vgg16-hed, conv1_1..conv5_1): on the CPU
# measured on the 2-core development machine (4.0-4.5 at 256 and 384 px, 27 Nov 2026); on GPUs a
# guess, as no GPU has run here yet. A finished run replaces its device's value with what it measured.
MEASURED_COST = {"cpu": 4.5, "cuda": 0.15, "mps": 2.0}
MIN_WORK = 1.0  # megapixel-iterations a run must do to update the estimate (the default 256 px run does 3.9)
COST_BASIS = {"cpu": "measured on a 2-core CPU", "cuda": "a guess until the first run",
              "mps": "a guess until the first run"}
_cost_lock = threading.Lock()


def seconds_per_mpx(device_type: str) -> float:
    """The current estimate of seconds per megapixel-iteration on this device type."""
    with _cost_lock:
        return MEASURED_COST.get(device_type, MEASURED_COST["cpu"])


def estimate_md(iterations: float, size: float, device_type: str) -> str:
    """An honest time estimate for the chosen iterations and size on this machine."""
    try:  # NaN / inf can only come through the API (sliders clamp): refuse them like any bad value
        config = StyleConfig(iterations=int(iterations), size=int(size))
    except (ValueError, OverflowError, TypeError) as err:
        raise gr.Error(f"Cannot estimate: {err}") from err
    seconds = estimate_seconds(config, seconds_per_mpx(device_type))
    scales = " → ".join(str(s) for s in config.scales())
    basis = COST_BASIS.get(device_type, "a guess")
    return (f"≈ **{seconds:.0f} s** on {device_type.upper()} for {int(iterations)} iterations over scales "
            f"{scales} px (square image; {seconds_per_mpx(device_type):.2f} s per megapixel-iteration, {basis}; "
            f"a busy machine is slower).")


def collect_styles(images: list, blends: list) -> tuple[list[Image.Image], list[float]]:
    """The filled style slots and their blend weights."""
    picked = [(image if isinstance(image, Image.Image) else Image.open(image), float(weight))
              for image, weight in zip(images, blends, strict=True) if image is not None and float(weight) > 0]
    if not picked:
        raise gr.Error("Add at least one style image with a blend weight above 0.")
    return [image for image, _ in picked], [weight for _, weight in picked]


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


def gpu_seconds(*_injected: Any, iterations: float = DEFAULTS.iterations, size: float = DEFAULTS.size,
                **_values: Any) -> int:
    """The GPU time a ZeroGPU call asks for (spaces.GPU's duration, given the handler's arguments):
    a generous bound for the chosen work, since a short request queues first and spends less of
    the visitor's daily quota. ~0.1 s per iteration at 512 px on a large GPU, 4x that at 1024 px."""
    per_iteration = 0.1 * (float(size) / 512) ** 2
    return int(min(300, max(30, 20 + 2 * float(iterations) * per_iteration)))


class Style:
    """The tab's handlers, bound to the app context and the tab's widgets."""

    def __init__(self, ctx: AppContext, view: StyleView) -> None:
        self.ctx, self.v = ctx, view
        self.device_type = call_device(ctx.device).type  # where runs happen (the GPU on ZeroGPU)
        ctx.sessions.on_close(lambda _key, state: state.extras.get("style_stop", threading.Event()).set())

    def stop_flag(self, request: gr.Request | None) -> StopFlag:
        """This session's stop flag (also a file: on ZeroGPU the run is in a forked worker)."""
        state = self.ctx.sessions.get(request.session_hash if request else None)
        return state.extras.setdefault("style_stop", StopFlag(state.directory / "style.stop"))

    def estimate(self, iterations: float, size: float) -> dict:
        """The time estimate for these iterations and size."""
        return {self.v.estimate: estimate_md(iterations, size, self.device_type)}

    def stylize(self, request: gr.Request, progress=gr.Progress(), style_2: Any = None, style_3: Any = None,
                **given: Any) -> Iterator[dict]:
        """Run a style transfer, streaming the preview, loss plot and status; then the result at full size."""
        f = self.v.form.read(given, style_2=style_2, style_3=style_3)
        if f.content is None:
            raise gr.Error("Add a content image (a photo) first.")
        styles, weights = collect_styles(f.styles, f.blends)
        try:
            config = config_of(f)
        except (ValueError, OverflowError, TypeError) as err:
            raise gr.Error(str(err)) from err
        flag = self.stop_flag(request)
        flag.clear()
        history: list[dict] = []
        device = call_device(self.ctx.device)  # the GPU inside a ZeroGPU call, else the app's device
        try:
            for step in stylize(f.content, styles, weights, config, device, stop_event=flag):
                history += [{"iteration": step.iteration, "loss": step.losses[k], "term": k}
                            for k in ("total", "content", "style", "tv")]
                progress((step.iteration, step.total), desc=f"ETA {step.eta:.0f} s")
                if step.done:
                    yield self.finish(f.content, step, history)
                    remember_cost(self.device_type, step, config, f.content.width / f.content.height)
                    return
                yield self.preview(step, history)
        except (BackboneUnavailable, WeightsUnavailable) as err:  # the instant start fetches its weights
            raise gr.Error(str(err)) from err
        except torch.OutOfMemoryError as err:
            raise gr.Error(out_of_memory_message(device, config.size)) from err

    def preview(self, step, history: list[dict]) -> dict:
        """One streamed update: the status line; the preview and the plot when a preview is due."""
        updates: dict = {self.v.status: status_line(step)}
        if step.preview is not None:
            updates[self.v.preview] = publish_image(step.preview, "preview.webp")
            updates[self.v.plot] = loss_frame(history)
        return updates

    def finish(self, content: Image.Image, step, history: list[dict]) -> dict:
        """Final widget values: result, before/after, plot, status, PNG file at full size."""
        path = publish_image(step.result, f"stylized-{step.iteration}.png")
        before = publish_image(content.convert("RGB").resize(step.result.size, Image.LANCZOS), "before.webp")
        verb = "Stopped" if step.stopped else "Done"
        status = f"{verb}: {status_line(step)}. Result {step.result.width}×{step.result.height} px."
        v = self.v
        return {v.preview: path, v.before_after: (before, path), v.plot: loss_frame(history), v.status: status,
                v.download: path}

    def stop(self, request: gr.Request) -> dict:
        """Ask the running transfer to stop after its current iteration."""
        self.stop_flag(request).set()
        return {self.v.status: "Stopping after this iteration…"}


STYLIZE_DOC = ("Paint `content` in the style of style_1 … style_3 (mixed by blend_1 …): Gatys et al.'s neural style "
               "transfer. Weights are powers of ten (log10_style_weight = 0.3 means 2). Streams previews; returns the "
               "result, before/after, losses, status and the full-size PNG.")


def wire(s: Style) -> None:
    """Connect the tab's events (ui/forms.py's `on`: inputs by name, one api_name each)."""
    v, f = s.v, s.v.form
    sizes = {"iterations": f.iterations, "size": f.size}
    on([f.iterations.change, f.size.change], s.estimate, inputs=sizes, outputs=[v.estimate], api_name="style_estimate",
       doc="Seconds a /stylize run of these iterations and output size should take on this server.",
       show_progress="hidden")
    run = on(v.run.click, gpu(duration=gpu_seconds)(s.stylize), inputs=f,  # ZeroGPU on Spaces; unchanged elsewhere
             outputs=[v.preview, v.before_after, v.plot, v.status, v.download], api_name="stylize", doc=STYLIZE_DOC,
             tool=True, concurrency_limit=1)
    on(run, s.estimate, inputs=sizes, outputs=[v.estimate], api_name="style_estimate_after_run")
    on(v.stop.click, s.stop, outputs=[v.status], api_name="stop_stylize", concurrency_limit=None,
       doc="Stop this session's style transfer after its current iteration (it still returns its image).")


def build_style_tab(ctx: AppContext) -> Style:
    """Build and wire the Style tab inside the current gr.Tab."""
    run_device = call_device(ctx.device)  # the app's device, or a ZeroGPU call's GPU
    where = "a ZeroGPU GPU, attached per run" if run_device != ctx.device else describe(ctx.device)
    view = build_view(where, estimate_md(DEFAULTS.iterations, DEFAULTS.size, run_device.type))
    style = Style(ctx, view)
    wire(style)
    return style
