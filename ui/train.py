"""Train tab: upload images, pick settings, watch a DCGAN learn live, then use, download or push the model.

Widgets <-> `IngestConfig` / `TrainConfig` and `TrainStep` records only; the engine is gan/train/trainer.py,
the background job and the per-device queue are ui/train_jobs.py. Every per-user thing lives in the
session's `extras["train"]` (data set, job, run folder), keyed by `gr.Request.session_hash`.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import gradio as gr
import pandas as pd

from common.device import describe
from gan.train.card import grid_to_pil
from gan.train.checkpoint import read_config
from gan.ingest.data import ImageDataset, IngestConfig, IngestError, ingest
from gan.train import LIMITS, TrainConfig, Trainer, TrainError, measure_step_seconds, suggest_config
from ui import files
from ui import train_resume as resume
from ui.context import AppContext, SessionState
from ui.explore import ExploreHandles
from ui.train_hub import push_folder
from ui.train_jobs import JobSlots, JobView, TrainJob

log = logging.getLogger(__name__)
POLL_S = 1.0  # page refresh while training (the issue asks for at least every 2 s)
MAX_POINTS = 400  # points per plotted series: the browser stays quick on long runs
DEFAULTS = TrainConfig()
# Settings the page exposes, in the order of the widgets (and of the handlers' parameters).
FIELDS = ("steps", "batch_size", "lr_g", "lr_d", "loss", "ngf", "ndf", "nz", "label_smoothing",
          "d_skip_threshold", "diffaugment", "ema_decay", "seed")


@dataclass
class TrainSession:
    """One browser session's training belongings."""

    dataset: ImageDataset | None = None
    job: TrainJob | None = None
    step_seconds: float = 0.0  # measured at the suggested settings, for the estimate
    exported: Path | None = None
    exported_step: int = -1


def _state(ctx: AppContext, request: gr.Request) -> tuple[SessionState, TrainSession]:
    session = ctx.sessions.get(request.session_hash)
    return session, session.extras.setdefault("train", TrainSession())


def _estimate(seconds_per_step: float, steps: int, device: str) -> str:
    total = seconds_per_step * steps
    when = f"{total / 60:.0f} min" if total >= 90 else f"{total:.0f} s"
    return (f"Measured on {device}: **{seconds_per_step:.2f} s per step** at the suggested settings, so "
            f"{steps:,} steps take about **{when}** (larger batches or networks take longer).")


def _frames(history: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long-format frames (step, value, series) for the two plots, thinned to MAX_POINTS steps."""
    stride = max(1, -(-len(history) // MAX_POINTS))
    rows = history[::stride] + (history[-1:] if history and (len(history) - 1) % stride else [])
    def melt(keys: dict[str, str]) -> pd.DataFrame:
        frame = pd.DataFrame([{"step": r["step"], "value": r[k], "series": name} for r in rows
                              for k, name in keys.items()], columns=["step", "value", "series"])
        return frame.astype({"step": "int64", "value": "float64"})  # numeric axes even before step 1
    return melt({"loss_d": "loss D", "loss_g": "loss G"}), melt({"d_x": "D(x)", "d_g_z": "D(G(z))"})


def _progress_html(view: JobView) -> str:
    rec = view.latest
    if rec is None:
        text = f"Waiting for a free slot: position {view.queue_position} in the queue" if view.queue_position \
            else "Starting..."
        return f"<div class='train-progress'>{text}</div>"
    pct = 100 * rec.step / max(rec.total_steps, 1)
    eta = f"{rec.eta_s / 60:.1f} min" if rec.eta_s >= 90 else f"{rec.eta_s:.0f} s"
    eta = view.state if view.finished else f"ETA {eta}"  # done, stopped, nan or error
    return (f"<div class='train-progress'><progress value='{rec.step}' max='{rec.total_steps}' style='width:100%'>"
            f"</progress><div>step {rec.step:,} / {rec.total_steps:,} ({pct:.0f}%) &middot; "
            f"{rec.images_per_s:.0f} images/s &middot; {eta}</div></div>")


def _status_md(view: JobView) -> str:
    rec = view.latest
    head = {"queued": "Queued", "running": "Training", "done": "Done", "stopped": "Stopped",
            "nan": "Stopped: the losses blew up", "error": "Failed", "oom": "Out of memory"}[view.state]
    lines = [f"**{head}**"]
    if rec is not None and rec.loss_d == rec.loss_d:
        lines.append(f"loss D {rec.loss_d:.3f} · loss G {rec.loss_g:.3f} · D(x) {rec.d_x:.2f} · D(G(z)) {rec.d_g_z:.2f}")
    if view.error:
        lines.append(view.error)
    lines += [f"⚠️ {w}" for w in view.warnings[-3:]]
    return "\n\n".join(lines)


def _outputs(view: JobView, shown_sample: int) -> list:
    """[status, progress, loss plot, D plot, samples, after-training group, retry-at-half-batch button]."""
    losses, outputs = _frames(view.history) if view.history else (gr.skip(), gr.skip())
    samples = files.publish_image(_enlarged(grid_to_pil(view.samples)), f"samples-step{view.sample_step}.webp") \
        if view.samples is not None and view.sample_step != shown_sample else gr.skip()
    return [_status_md(view), _progress_html(view), losses, outputs, samples, gr.update(visible=view.finished),
            gr.update(visible=view.state == "oom")]


def _enlarged(image, target: int = 520):
    """Small grids (32 px images) are shown at a whole multiple of their size, pixels kept sharp."""
    factor = max(1, target // image.width)
    return image.resize((image.width * factor, image.height * factor), 0) if factor > 1 else image  # 0 = NEAREST


def _follow(job: TrainJob):
    """Yield page updates every POLL_S until the job ends; health warnings also pop up as toasts."""
    shown_sample, warned = -1, 0
    while True:
        view = job.view()
        for warning in view.warnings[warned:]:
            gr.Warning(warning)
        warned = len(view.warnings)
        yield _outputs(view, shown_sample)
        shown_sample = view.sample_step
        if job.finished:
            return
        time.sleep(POLL_S)


def _config(size: int, colour: str, values: tuple) -> TrainConfig:
    raw = dict(zip(FIELDS, values))
    raw["diffaugment"] = "color,translation,cutout" if raw["diffaugment"] else ""
    for name in ("steps", "batch_size", "ngf", "ndf", "nz", "seed"):
        raw[name] = int(raw[name])
    try:
        return TrainConfig(image_size=int(size), nc=1 if colour == "grey" else 3, **raw)
    except ValueError as err:
        raise gr.Error(str(err)) from err


@dataclass
class TrainHandles:
    """What app.py wires to the page's load event: offer 'Resume your last run'."""

    on_load: Callable
    load_inputs: list
    load_outputs: list
    browser_state: gr.BrowserState  # to render outside the tabs


def build_train_tab(ctx: AppContext, explore: ExploreHandles, tabs: gr.Tabs) -> TrainHandles:
    """Build the Train tab and wire its events (each with an api_name)."""
    slots = JobSlots(1 if ctx.device.type == "cpu" else 2)
    ctx.sessions.on_close(lambda session_hash, state: _on_close(ctx, state))
    gr.Markdown("Train a DCGAN on your own images, watch it learn, then explore or share the result. "
                "Small sets (a few hundred similar images) train best; DiffAugment helps them most.")
    w = {**_data_widgets(), **_live_widgets(), **_after_widgets()}
    _wire_data(ctx, w)
    _wire_run(ctx, slots, w)
    _wire_after(ctx, explore, tabs, w)
    # render=False: app.py renders it outside the tabs, where it mounts at page load (a tab's content
    # mounts only when the tab is first shown, too late for the load event to read the stored token)
    token = gr.BrowserState("", storage_key=resume.STORAGE_KEY, secret=resume.browser_secret(ctx), render=False)

    def on_load(stored, request: gr.Request):
        session = ctx.sessions.get(request.session_hash)
        offer = resume.adopt(ctx, session, stored)
        return resume.token(session), gr.update(visible=offer)

    return TrainHandles(on_load, [token], [token, w["resume_last"]], token)


def _data_widgets() -> dict:
    with gr.Row():
        with gr.Column():
            folder = gr.File(file_count="directory", label="A folder of images", height=140)
            files = gr.File(file_count="multiple", label="…or image files / a .zip", height=140)
            with gr.Row():
                size = gr.Radio([32, 64, 128], value=64, label="Image size (px)")
                colour = gr.Radio(["colour", "grey"], value="colour", label="Channels")
            report = gr.Markdown(elem_id="train-report")
        preview = gr.Image(label="What the GAN will see", interactive=False, height=360)
    with gr.Accordion("Settings", open=True):
        estimate = gr.Markdown()
        settings = _settings_widgets()
    return dict(folder=folder, files=files, size=size, colour=colour, report=report, preview=preview,
                estimate=estimate, settings=settings)


def _live_widgets() -> dict:
    with gr.Column(elem_id="train-live"):
        with gr.Row():
            start = gr.Button("Start", variant="primary")
            stop = gr.Button("Stop", variant="stop")
            resume_btn = gr.Button("Resume")
            resume_last = gr.Button("Resume your last run", visible=False, variant="primary")
            retry = gr.Button("Retry at half the batch size", visible=False)
        status = gr.Markdown(elem_id="train-status")
        progress = gr.HTML()
        with gr.Row():
            # fixed colour maps: the series are known before the first point arrives
            loss_plot = gr.LinePlot(x="step", y="value", color="series", title="Losses", height=260,
                                    color_map={"loss D": "#d62728", "loss G": "#1f77b4"}, elem_id="loss-plot")
            d_plot = gr.LinePlot(x="step", y="value", color="series", title="D(x) and D(G(z))", height=260,
                                 color_map={"D(x)": "#2ca02c", "D(G(z))": "#ff7f0e"}, y_lim=[0, 1],
                                 elem_id="d-plot")
        samples = gr.Image(label="Samples from fixed noise (EMA generator)", interactive=False, height=380,
                           elem_id="train-samples")
    return dict(start=start, stop=stop, resume=resume_btn, resume_last=resume_last, retry=retry, status=status, progress=progress, loss_plot=loss_plot,
                d_plot=d_plot, samples=samples)


def _after_widgets() -> dict:
    with gr.Group(visible=False) as after:
        with gr.Row():
            label = gr.Textbox(value="My DCGAN", label="Model name")
            open_btn = gr.Button("Open in Explore")
            zip_btn = gr.Button("Download as .zip")
        zip_file = gr.File(label="Model (.zip)", interactive=False, visible=False, height=80)
        with gr.Row():
            repo = gr.Textbox(label="Hub repo id", placeholder="your-name/my-dcgan")
            token = gr.Textbox(label="Hub token (write)", type="password")
            push_btn = gr.Button("Push to Hub")
        push_status = gr.Markdown()
    return dict(after=after, label=label, open_btn=open_btn, zip_btn=zip_btn, zip_file=zip_file, repo=repo,
                token=token, push_btn=push_btn, push_status=push_status)


def _wire_data(ctx: AppContext, w: dict) -> None:
    def on_upload(folder_files, more_files, size_value, colour_value, request: gr.Request):
        return _on_upload(ctx, folder_files, more_files, size_value, colour_value, request)

    inputs = [w["folder"], w["files"], w["size"], w["colour"]]
    outputs = [w["report"], w["preview"], w["estimate"], *w["settings"]]
    w["folder"].upload(on_upload, inputs, outputs, api_name="upload_folder")
    w["files"].upload(on_upload, inputs, outputs, api_name="upload")
    w["size"].change(on_upload, inputs, outputs, api_name="resize")
    w["colour"].change(on_upload, inputs, outputs, api_name="channels")


def _wire_run(ctx: AppContext, slots: JobSlots, w: dict) -> None:
    # Explicit parameters (one per widget in FIELDS order): gradio injects `request` by position.
    def on_start(size_value, colour_value, steps, batch_size, lr_g, lr_d, loss, ngf, ndf, nz, label_smoothing,
                 d_skip_threshold, diffaugment, ema_decay, seed, request: gr.Request):
        values = (steps, batch_size, lr_g, lr_d, loss, ngf, ndf, nz, label_smoothing, d_skip_threshold,
                  diffaugment, ema_decay, seed)
        yield from _on_start(ctx, slots, size_value, colour_value, values, request)

    def on_resume(size_value, colour_value, steps, batch_size, lr_g, lr_d, loss, ngf, ndf, nz, label_smoothing,
                  d_skip_threshold, diffaugment, ema_decay, seed, request: gr.Request):
        values = (steps, batch_size, lr_g, lr_d, loss, ngf, ndf, nz, label_smoothing, d_skip_threshold,
                  diffaugment, ema_decay, seed)
        yield from _on_resume(ctx, slots, size_value, colour_value, values, request)

    def on_stop(request: gr.Request):
        return _on_stop(ctx, request)

    def on_resume_last(request: gr.Request):
        yield from _on_resume_last(ctx, slots, request)

    def on_kept_settings(request: gr.Request):
        return _kept_settings(ctx, request)

    # Never under ZeroGPU's spaces.GPU: a run's thread and job must outlive any one call (a decorated
    # call runs in a worker process that ends with it), and its minutes exceed a visitor's daily GPU
    # quota. On a ZeroGPU Space, training runs on the CPU (common/zerogpu.main_device).

    def on_half_batch(batch_size):
        return max(8, int(batch_size) // 16 * 8)  # half, on the slider's step of 8

    live = [w[k] for k in ("status", "progress", "loss_plot", "d_plot", "samples", "after", "retry")]
    run_in = [w["size"], w["colour"], *w["settings"]]
    # the pollers only sleep and read: they need no worker slot (JobSlots limits the real work)
    start_evt = w["start"].click(on_start, run_in, live, api_name="start", concurrency_limit=None)
    resume_evt = w["resume"].click(on_resume, run_in, live, api_name="resume", concurrency_limit=None)
    # first the kept run's settings into the widgets (so the page shows what trains), then the run
    last_evt = w["resume_last"].click(on_kept_settings, None, run_in, api_name="resume_last_settings").then(
        on_resume_last, None, live, api_name="resume_last", concurrency_limit=None)
    batch = w["settings"][FIELDS.index("batch_size")]
    retry_evt = w["retry"].click(on_half_batch, batch, batch, api_name="halve_batch").then(
        on_start, run_in, live, api_name="retry_start", concurrency_limit=None)
    w["stop"].click(on_stop, None, live, api_name="stop", cancels=[start_evt, resume_evt, last_evt, retry_evt])


def _wire_after(ctx: AppContext, explore: ExploreHandles, tabs: gr.Tabs, w: dict) -> None:
    def on_open(name, request: gr.Request):
        folder_path = _export(ctx, request)
        ctx.sessions.add_model(request.session_hash, name, folder_path)
        choices = explore.choices(request.session_hash)
        value = name if name in choices else explore.model.value
        return gr.update(choices=choices, value=value), gr.Tabs(selected="explore")

    def on_zip(request: gr.Request):
        folder_path = _export(ctx, request)
        return gr.File(value=files.publish_zip(folder_path, f"{folder_path.name}.zip"), visible=True)

    def on_push(repo_id, hub_token, request: gr.Request):
        return push_folder(_export(ctx, request), repo_id, hub_token)

    w["open_btn"].click(on_open, [w["label"]], [explore.model, tabs], api_name="export")
    w["zip_btn"].click(on_zip, None, [w["zip_file"]], api_name="download")
    w["push_btn"].click(on_push, [w["repo"], w["token"]], [w["push_status"]], api_name="push")


def _settings_widgets() -> list:
    """The settings' widgets in FIELDS order; defaults and ranges come from TrainConfig / LIMITS."""
    d = DEFAULTS
    with gr.Row():
        steps = gr.Slider(10, 20000, value=d.steps, step=10, label="Steps")
        batch = gr.Slider(8, 256, value=d.batch_size, step=8, label="Batch size")
        lr_g = gr.Number(value=d.lr_g, minimum=LIMITS["lr_g"][0], maximum=LIMITS["lr_g"][1], label="Learning rate G")
        lr_d = gr.Number(value=d.lr_d, minimum=LIMITS["lr_d"][0], maximum=LIMITS["lr_d"][1], label="Learning rate D")
        loss = gr.Radio(["bce", "hinge"], value=d.loss, label="Loss")
    with gr.Row():
        ngf = gr.Slider(8, 128, value=d.ngf, step=8, label="ngf (G width)")
        ndf = gr.Slider(8, 128, value=d.ndf, step=8, label="ndf (D width)")
        nz = gr.Slider(16, 256, value=d.nz, step=4, label="nz (latent size)")
        seed = gr.Number(value=d.seed, precision=0, label="Seed")
    with gr.Row():
        smooth = gr.Slider(0, 0.3, value=d.label_smoothing, step=0.05, label="One-sided label smoothing")
        skip = gr.Slider(0, 1, value=d.d_skip_threshold, step=0.05, label="Skip D's step while its loss < (0 = off)")
        diffaug = gr.Checkbox(value=bool(d.diffaugment), label="DiffAugment (colour, translation, cutout)")
        ema = gr.Slider(0.9, 0.9999, value=d.ema_decay, step=0.0001, label="EMA decay of G")
    return [steps, batch, lr_g, lr_d, loss, ngf, ndf, nz, smooth, skip, diffaug, ema, seed]


def _on_upload(ctx: AppContext, folder_files, more_files, size: int, colour: str, request: gr.Request) -> list:
    """Ingest into the session folder; report, preview, time estimate and suggested settings."""
    session, train = _state(ctx, request)
    sources = [Path(p) for p in (folder_files or []) + (more_files or [])]
    if not sources:
        return [gr.skip()] * (3 + len(FIELDS))
    if train.job and not train.job.finished:
        raise gr.Error("Stop the running training before changing the images.")
    config = IngestConfig(image_size=int(size), channels=1 if colour == "grey" else 3)
    try:
        train.dataset = ingest(sources, session.directory / "data", config)
    except IngestError as err:
        train.dataset = None
        return [str(err), None, "", *[gr.skip()] * len(FIELDS)]
    suggested = suggest_config(len(train.dataset), ctx.device, config.image_size, config.channels)
    train.step_seconds = measure_step_seconds(suggested, ctx.device)
    values = [getattr(suggested, f) for f in FIELDS]
    values[FIELDS.index("diffaugment")] = bool(suggested.diffaugment)
    return [train.dataset.report.summary(), files.publish_image(train.dataset.preview_grid(64), "preview.webp"),
            _estimate(train.step_seconds, suggested.steps, describe(ctx.device)), *values]


def _on_start(ctx: AppContext, slots: JobSlots, size, colour, values: tuple, request: gr.Request):
    session, train = _state(ctx, request)
    if train.dataset is None:
        raise gr.Error("Upload some images first.")
    if train.job and not train.job.finished:
        raise gr.Error("This session is already training; stop it first (one job per session).")
    config = _config(size, colour, values)
    run_dir = resume.run_dir(ctx, session)
    shutil.rmtree(run_dir, ignore_errors=True)  # a new run: the old checkpoint and metrics go
    resume.save_images(run_dir, _images(train, config))
    train.job = TrainJob(Trainer(config, ctx.device, out_dir=run_dir), _images(train, config), slots).start()
    yield from _follow(train.job)


def _on_resume(ctx: AppContext, slots: JobSlots, size, colour, values: tuple, request: gr.Request):
    session, train = _state(ctx, request)
    if train.job is None or not train.job.finished or train.dataset is None:
        raise gr.Error("Nothing to resume: start a run and stop it first.")
    wanted, before = _config(size, colour, values), train.job.trainer.config
    done = train.job.trainer.step
    if wanted.steps <= done:
        raise gr.Error(f"The run already did {done} steps: raise Steps above {done} to continue.")
    changes = {f: getattr(wanted, f) for f in ("image_size", "nc", *FIELDS) if getattr(wanted, f) != getattr(before, f)}
    try:
        trainer = Trainer.resume(resume.run_dir(ctx, session), ctx.device, changes=changes)
    except TrainError as err:
        raise gr.Error(str(err)) from err
    tuned = [f"{f} {getattr(before, f)} → {v}" for f, v in changes.items() if f != "steps"]
    if tuned:  # the lesson's experiment: change how it learns mid-run and watch the curves respond
        gr.Info(f"Resuming at step {done} with " + ", ".join(tuned) + ".")
    train.job = TrainJob(trainer, _images(train, trainer.config), slots).start()
    yield from _follow(train.job)


def _on_resume_last(ctx: AppContext, slots: JobSlots, request: gr.Request):
    """Continue the run this browser left (a closed tab or a server restart) from its last checkpoint."""
    session, train = _state(ctx, request)
    folder = resume.run_dir(ctx, session)
    if not resume.resumable(folder):
        raise gr.Error("There is no earlier run to resume in this browser (kept runs expire after a few hours).")
    if train.job and not train.job.finished:
        raise gr.Error("This session is already training; stop it first (one job per session).")
    train.dataset = resume.kept_dataset(folder)
    trainer = Trainer.resume(folder, ctx.device)
    train.job = TrainJob(trainer, _images(train, trainer.config), slots).start()
    yield from _follow(train.job)


def _kept_settings(ctx: AppContext, request: gr.Request) -> list:
    """The kept run's own settings into the widgets, so that what the page shows is what trains."""
    session, _ = _state(ctx, request)
    folder = resume.run_dir(ctx, session)
    if not resume.resumable(folder):
        return [gr.skip()] * (2 + len(FIELDS))
    config = TrainConfig.from_dict(read_config(folder))
    values = [getattr(config, f) for f in FIELDS]
    values[FIELDS.index("diffaugment")] = bool(config.diffaugment)
    return [config.image_size, "grey" if config.nc == 1 else "colour", *values]


def _images(train: TrainSession, config: TrainConfig):
    images = train.dataset.images
    if tuple(images.shape[1:]) != (config.nc, config.image_size, config.image_size):
        raise gr.Error("The images were prepared at another size or channel count; upload them again.")
    return images


def _on_stop(ctx: AppContext, request: gr.Request) -> list:
    _, train = _state(ctx, request)
    if train.job is None:
        raise gr.Error("Nothing is training.")
    train.job.stop_and_wait()
    return _outputs(train.job.view(), -1)


def _export(ctx: AppContext, request: gr.Request) -> Path:
    """The EMA generator of the session's last run in mixin format (exported once per step count)."""
    session, train = _state(ctx, request)
    if train.job is None or not train.job.finished:
        raise gr.Error("Finish or stop the training first.")
    trainer = train.job.trainer
    if train.exported is None or train.exported_step != trainer.step:
        folder = session.directory / "models" / f"dcgan-step{trainer.step}"
        train.exported, train.exported_step = trainer.export(folder), trainer.step
    return train.exported


def _on_close(ctx: AppContext, state: SessionState) -> None:
    """The tab closed: stop its job and let the engine write its last checkpoint (kept for resuming)."""
    train = state.extras.get("train")
    if isinstance(train, TrainSession) and train.job is not None:
        train.job.stop_and_wait()
    resume.forget_unshared(ctx, state)

