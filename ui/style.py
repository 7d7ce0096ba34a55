"""Style tab: the instant picture under live sliders, and the lesson's optimisation (Gatys) refining it.

Widgets <-> `StyleConfig` / `StyleStep` and `style.instant` only; the engines (style/) do the work; the
widgets are in ui/style_view.py, the instant picture's handlers in ui/style_instant.py. Stop sets a
per-session flag that the engine checks every iteration, so a stopped run still returns its current image
at full size (a `cancels=` would kill the generator before that).
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
from style.instant import picture_key
from style.transfer import StyleConfig, estimate_seconds, stylize
from ui.context import AppContext
from ui.files import publish_image
from ui.forms import on
from ui.style_instant import InstantPainter, fit, publish_jpeg
from ui.style_view import COMPARISONS, DEFAULTS, StyleView, build_view, config_of
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
    """The tab's handlers, bound to the app context and the tab's widgets (the instant ones in `.instant`)."""

    def __init__(self, ctx: AppContext, view: StyleView) -> None:
        self.ctx, self.v = ctx, view
        self.instant = InstantPainter(ctx, view)
        self.device_type = call_device(ctx.device).type  # where runs happen (the GPU on ZeroGPU)
        ctx.sessions.on_close(lambda _key, state: state.extras.get("style_stop", threading.Event()).set())

    def stop_flag(self, request: gr.Request | None) -> StopFlag:
        """This session's stop flag (also a file: on ZeroGPU the run is in a forked worker)."""
        state = self.ctx.sessions.get(request.session_hash if request else None)
        return state.extras.setdefault("style_stop", StopFlag(state.directory / "style.stop"))

    def estimate(self, iterations: float, size: float) -> dict:
        """The time estimate for these iterations and size."""
        return {self.v.refine.estimate: estimate_md(iterations, size, self.device_type)}

    def stylize(self, request: gr.Request, progress=gr.Progress(), style_2: Any = None, style_3: Any = None,
                **given: Any) -> Iterator[dict]:
        """Run the optimisation (from the instant picture at `strength`), streaming the preview, loss plot and
        status; then the result at full size."""
        f = self.v.form.read(given, style_2=style_2, style_3=style_3)
        if f.content is None:
            raise gr.Error("Add a content image (a photo) first.")
        styles, weights = collect_styles(f.styles, f.blends)
        try:
            config = config_of(f, given["strength"])
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
                    yield self.finish(request, f.content, step, history)
                    remember_cost(self.device_type, step, config, f.content.width / f.content.height)
                    return
                yield self.preview(step, history)
        except (BackboneUnavailable, WeightsUnavailable) as err:  # the instant start fetches its weights
            raise gr.Error(str(err)) from err
        except torch.OutOfMemoryError as err:
            raise gr.Error(out_of_memory_message(device, config.size)) from err

    def preview(self, step, history: list[dict]) -> dict:
        """One streamed update: the status line; the preview and the plot when a preview is due."""
        r = self.v.refine
        updates: dict = {r.status: status_line(step)}
        if step.preview is not None:
            updates[r.preview] = publish_image(step.preview, "preview.webp")
            updates[r.plot] = loss_frame(history)
        return updates

    def finish(self, request: gr.Request | None, content: Image.Image, step, history: list[dict]) -> dict:
        """Final widget values: result, before / after (instant | refined when the session has the instant
        picture of this photo, else photo | refined), plot, status, PNG file at full size."""
        path = publish_image(step.result, f"stylized-{step.iteration}.png")
        store = self.instant.pictures(request)
        store["refined"] = step.result
        before = store.get("instant") if store.get("photo_key") == picture_key(content) else None
        before_path = publish_jpeg(fit(before if before is not None else content, step.result.size), "before.jpg")
        verb = "Stopped" if step.stopped else "Done"
        status = f"{verb}: {status_line(step)}. Result {step.result.width}×{step.result.height} px."
        r = self.v.refine
        return {r.preview: path, self.v.before_after: (before_path, path), r.plot: loss_frame(history),
                r.status: status, r.download: path}

    def compared(self, request: gr.Request) -> dict:
        """After a run: the comparison the before / after slider now shows."""
        store = self.instant.pictures(request)
        if store.get("refined") is None:
            return gr.skip()
        return {self.v.compare: COMPARISONS[1] if store.get("instant") is not None else COMPARISONS[2]}

    def compare(self, request: gr.Request, compare: str) -> Any:
        """Show two of photo, instant and refined on the before / after slider (at the second one's size)."""
        store = self.instant.pictures(request)
        names = [name.strip() for name in str(compare).split("|")]
        if compare not in COMPARISONS:
            raise gr.Error(f"compare must be one of {COMPARISONS}.")
        if any(store.get(name) is None for name in names):
            gr.Warning(f"There is no {' or '.join(n for n in names if store.get(n) is None)} picture yet.")
            return gr.skip()
        first, second = (store[name] for name in names)
        return {self.v.before_after: (publish_jpeg(fit(first, second.size), f"{names[0]}.jpg"),
                                      publish_jpeg(second, f"{names[1]}.jpg"))}

    def stop(self, request: gr.Request) -> dict:
        """Ask the running transfer to stop after its current iteration."""
        self.stop_flag(request).set()
        return {self.v.refine.status: "Stopping after this iteration…"}


STYLIZE_DOC = ("Paint `content` in the style of style_1 … style_3 (mixed by blend_1 …) with Gatys et al.'s "
               "neural style transfer, starting from the instant picture at `strength` (init='instant'). Weights are "
               "powers of ten (log10_style_weight = 0.3 means 2). Streams previews; returns the result, before/after, "
               "losses, status and the full-size PNG.")
INSTANT_DOC = ("Paint `content` at once in the style of style_1 … style_3 (mixed by blend_1 …), Magenta's feed-forward "
               "network: strength 0-1.5, preserve_colours, size = longest side in px. Returns the picture (JPEG).")
PRESET_DOC = ("Paint `content` at once with the 26 built-in presets (Dumoulin et al.), mixing preset_1 … by "
              "preset_weight_1 …: strength 0-1.5 (a blend with the photo), preserve_colours, size in px.")


def wire(s: Style) -> None:
    """Connect the tab's events (ui/forms.py's `on`: inputs by name, one api_name each)."""
    v, f, r = s.v, s.v.form, s.v.refine
    wire_instant(s)
    sizes = {"iterations": f.iterations, "size": f.size}
    on([f.iterations.change, f.size.change], s.estimate, inputs=sizes, outputs=[r.estimate], api_name="style_estimate",
       doc="Seconds a /stylize run of these iterations and output size should take on this server.",
       show_progress="hidden")
    run = on(r.run.click, gpu(duration=gpu_seconds)(s.stylize),  # ZeroGPU on Spaces; unchanged elsewhere
             inputs=[f, {"strength": v.instant.look.strength}],
             outputs=[r.preview, v.before_after, r.plot, r.status, r.download], api_name="stylize", doc=STYLIZE_DOC,
             tool=True, concurrency_limit=1)
    on(run, s.estimate, inputs=sizes, outputs=[r.estimate], api_name="style_estimate_after_run")
    on(run, s.compared, outputs=[v.compare], api_name="style_compare_after_run", show_progress="hidden")
    on(r.stop.click, s.stop, outputs=[r.status], api_name="stop_stylize", concurrency_limit=None,
       doc="Stop this session's style transfer after its current iteration (it still returns its image).")
    on(v.compare.input, s.compare, inputs={"compare": v.compare}, outputs=[v.before_after], api_name="style_compare",
       doc="Show two of this session's photo, instant and refined pictures on the before / after slider.",
       show_progress="hidden")


def wire_instant(s: Style) -> None:
    """The instant picture: live on every control, and the two API-only endpoints (no trigger on the page)."""
    v, i, p = s.v, s.instant, s.v.presets.form
    look, shown = v.instant.look, [v.instant.picture, v.instant.status, v.before_after]
    live_inputs = [v.paintings, p, look, {"source": v.instant.source, "compare": v.compare}]
    fast = dict(show_progress="hidden", trigger_mode="always_last", concurrency_limit=2, concurrency_id="instant")
    sliders = [w.input for w in (*v.paintings.blends, *look.widgets().values(), *p.presets, *p.preset_weights)]
    on([v.paintings.content.change, v.instant.source.input, *sliders], i.live, inputs=live_inputs, outputs=shown,
       api_name="style_live", **fast)
    styles = {f"style_{n + 1}": w for n, w in enumerate(v.paintings.styles)}
    painting = on([w.change for w in v.paintings.styles], i.use_paintings, inputs=styles, outputs=[v.instant.source],
                  api_name="style_use_paintings", show_progress="hidden")
    on(painting, i.live, inputs=live_inputs, outputs=shown, api_name="style_live_after_painting", **fast)
    pick = on(v.presets.gallery.select, i.pick_preset, inputs={"preset_weight_1": p.preset_weights[0]},
              outputs=[p.presets[0], p.preset_weights[0], v.instant.source], api_name="style_pick_preset",
              show_progress="hidden")
    on(pick, i.live, inputs=live_inputs, outputs=shown, api_name="style_live_after_preset", **fast)
    on([], i.stylize_instant, inputs=[v.paintings, look], outputs=shown[:2], api_name="stylize_instant",
       doc=INSTANT_DOC, tool=True, concurrency_limit=2, concurrency_id="instant")
    on([], i.stylize_preset, inputs=[{"content": v.paintings.content}, p, look], outputs=shown[:2],
       api_name="stylize_preset", doc=PRESET_DOC, concurrency_limit=2, concurrency_id="instant")


def build_style_tab(ctx: AppContext) -> Style:
    """Build and wire the Style tab inside the current gr.Tab; app.py wires the page load (the presets)."""
    run_device = call_device(ctx.device)  # the app's device, or a ZeroGPU call's GPU
    where = "a ZeroGPU GPU, attached per run" if run_device != ctx.device else describe(ctx.device)
    view = build_view(where, estimate_md(DEFAULTS.iterations, DEFAULTS.size, run_device.type), ctx.device)
    style = Style(ctx, view)
    wire(style)
    return style


def wire_page_load(style: Style, demo: gr.Blocks) -> None:
    """The preset gallery once the page opens (painted once per process, then only published)."""
    on(demo.load, style.instant.gallery, outputs=[style.v.presets.gallery], api_name="style_presets",
       show_progress="hidden")
