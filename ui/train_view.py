"""Train's widgets (forms and panels) and how a job's state and a config are shown in them.

The settings form's field names are `TrainConfig`'s, and its ranges and defaults are `gan.train.LIMITS`
and `TrainConfig()`'s (tests/test_slider_ranges.py checks every one): the form and the config convert
into each other by name (`config_of`, `show_config`). Nothing here handles an event.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from gan.explorer.model import SUPPORTED_SIZES
from gan.train import LIMITS, TrainConfig
from gan.train.card import grid_to_pil
from gan.train.config import DEFAULT_POLICY, LOSSES
from ui.files import publish_image
from ui.forms import Form, Values
from ui.train_jobs import JobView

DEFAULTS = TrainConfig()
MAX_POINTS = 400  # points per plotted series: the browser stays quick on long runs
CHANNELS = {"colour": 3, "grey": 1}


@dataclass(kw_only=True)
class DataForm(Form):
    """What the images become (`IngestConfig`'s image_size and channels)."""

    image_size: gr.Radio
    channels: gr.Radio


@dataclass(kw_only=True)
class SettingsForm(Form):
    """The training settings the page exposes; every field name is a `TrainConfig` field."""

    steps: gr.Number
    batch_size: gr.Slider
    lr_g: gr.Number
    lr_d: gr.Number
    loss: gr.Radio
    ngf: gr.Slider
    ndf: gr.Slider
    nz: gr.Slider
    seed: gr.Number
    label_smoothing: gr.Slider
    d_skip_threshold: gr.Slider
    diffaugment: gr.Checkbox  # on = DEFAULT_POLICY
    ema_decay: gr.Slider


@dataclass
class DataPanel:
    """Uploads, format, and what ingest made of them."""

    folder: gr.File
    files: gr.File
    form: DataForm
    report: gr.Markdown
    preview: gr.Image


@dataclass
class LivePanel:
    """The run's buttons and what the page shows while it trains."""

    start: gr.Button
    stop: gr.Button
    resume: gr.Button
    resume_last: gr.Button
    retry: gr.Button
    status: gr.Markdown
    progress: gr.HTML
    loss_plot: gr.LinePlot
    d_plot: gr.LinePlot
    samples: gr.Image


@dataclass
class AfterPanel:
    """After training: open in Explore, download, push to the Hub."""

    group: gr.Group
    label: gr.Textbox
    open_button: gr.Button
    zip_button: gr.Button
    zip_file: gr.File
    repo: gr.Textbox
    token: gr.Textbox  # for a local run; a Space with OAuth signs in instead
    login: gr.LoginButton | None
    push_button: gr.Button
    push_status: gr.Markdown


@dataclass
class SlotBoxes:
    """Hidden boxes that carry this tab's resume slot between the browser's storage and the server
    (ui/train_resume.py); app.py renders them outside the tabs, where they mount at page load."""

    tab_token: gr.Textbox
    browser_runs: gr.Textbox
    forget: gr.Textbox


@dataclass
class TrainView:
    """Every Train widget, by panel."""

    data: DataPanel
    estimate: gr.Markdown  # the measured time per step, above the settings
    settings: SettingsForm
    live: LivePanel
    after: AfterPanel
    slot: SlotBoxes


def config_of(data: Values, settings: Values) -> TrainConfig:
    """The forms' values -> TrainConfig (a gr.Error with the config's own sentence if invalid)."""
    raw = vars(settings).copy()
    raw["diffaugment"] = DEFAULT_POLICY if raw["diffaugment"] else ""
    try:
        for name in ("steps", "batch_size", "ngf", "ndf", "nz", "seed"):
            raw[name] = int(raw[name])
        return TrainConfig(image_size=int(data.image_size), nc=CHANNELS.get(data.channels, 0), **raw)
    except (ValueError, TypeError, OverflowError) as err:
        raise gr.Error(str(err)) from err


def settings_values(config: TrainConfig) -> dict:
    """The settings form's values (by field name) for a config."""
    values = {name: getattr(config, name) for name in SettingsForm.__dataclass_fields__}
    values["diffaugment"] = bool(config.diffaugment)
    return values


def show_config(view: TrainView, config: TrainConfig) -> dict:
    """Updates that make both forms show `config` (after a resume: what trains is what the page shows)."""
    channels = next(name for name, nc in CHANNELS.items() if nc == config.nc)
    return {**view.settings.set(**settings_values(config)),
            **view.data.form.set(image_size=config.image_size, channels=channels)}


def frames(history: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long-format frames (step, value, series) for the two plots, thinned to MAX_POINTS steps."""
    stride = max(1, -(-len(history) // MAX_POINTS))
    rows = history[::stride] + (history[-1:] if history and (len(history) - 1) % stride else [])

    def melt(keys: dict[str, str]) -> pd.DataFrame:
        frame = pd.DataFrame([{"step": r["step"], "value": r[k], "series": name} for r in rows
                              for k, name in keys.items()], columns=["step", "value", "series"])
        return frame.astype({"step": "int64", "value": "float64"})  # numeric axes even before step 1

    return melt({"loss_d": "loss D", "loss_g": "loss G"}), melt({"d_x": "D(x)", "d_g_z": "D(G(z))"})


def progress_html(view: JobView) -> str:
    """A progress bar with step, speed and ETA (or the queue position while waiting)."""
    rec = view.latest
    if rec is None:
        text = (f"Waiting for a free slot: position {view.queue_position} in the queue" if view.queue_position
                else "Starting...")
        return f"<div class='train-progress'>{text}</div>"
    pct = 100 * rec.step / max(rec.total_steps, 1)
    eta = f"{rec.eta_s / 60:.1f} min" if rec.eta_s >= 90 else f"{rec.eta_s:.0f} s"
    eta = view.state if view.finished else f"ETA {eta}"  # done, stopped, nan or error
    return (f"<div class='train-progress'><progress value='{rec.step}' max='{rec.total_steps}' style='width:100%'>"
            f"</progress><div>step {rec.step:,} / {rec.total_steps:,} ({pct:.0f}%) &middot; "
            f"{rec.images_per_s:.0f} images/s &middot; {eta}</div></div>")


def status_md(view: JobView) -> str:
    """State, latest losses, error and the last warnings."""
    rec = view.latest
    head = {"queued": "Queued", "running": "Training", "done": "Done", "stopped": "Stopped",
            "nan": "Stopped: the losses blew up", "error": "Failed", "oom": "Out of memory"}[view.state]
    lines = [f"**{head}**"]
    if rec is not None and rec.loss_d == rec.loss_d:
        lines.append(f"loss D {rec.loss_d:.3f} · loss G {rec.loss_g:.3f} · D(x) {rec.d_x:.2f} · "
                     f"D(G(z)) {rec.d_g_z:.2f}")
    if view.error:
        lines.append(view.error)
    lines += [f"⚠️ {w}" for w in view.warnings[-3:]]
    return "\n\n".join(lines)


def show_job(view: TrainView, job: JobView, shown_sample: int) -> dict:
    """A job's state in the live panel (the sample grid only when a newer one exists)."""
    live = view.live
    updates = {live.status: status_md(job), live.progress: progress_html(job),
               view.after.group: gr.update(visible=job.finished), live.retry: gr.update(visible=job.state == "oom")}
    if job.history:
        updates[live.loss_plot], updates[live.d_plot] = frames(job.history)
    if job.samples is not None and job.sample_step != shown_sample:
        updates[live.samples] = publish_image(enlarged(grid_to_pil(job.samples)), f"samples-step{job.sample_step}.webp")
    return updates


def enlarged(image, target: int = 520):
    """Small grids (32 px images) are shown at a whole multiple of their size, pixels kept sharp."""
    factor = max(1, target // image.width)
    return image.resize((image.width * factor, image.height * factor), 0) if factor > 1 else image  # 0 = NEAREST


def build_data() -> DataPanel:
    """Uploads, format radios, ingest report and preview."""
    with gr.Row():
        with gr.Column():
            folder = gr.File(file_count="directory", label="A folder of images", height=140)
            files = gr.File(file_count="multiple", label="…or image files / a .zip", height=140)
            with gr.Row():
                image_size = gr.Radio(list(SUPPORTED_SIZES), value=DEFAULTS.image_size, label="Image size (px)")
                channels = gr.Radio(list(CHANNELS), value="colour" if DEFAULTS.nc == 3 else "grey", label="Channels")
            report = gr.Markdown(label="Data report", elem_id="train-report")
        preview = gr.Image(label="What the GAN will see", interactive=False, height=360)
    return DataPanel(folder, files, DataForm(image_size=image_size, channels=channels), report, preview)


def build_settings() -> SettingsForm:
    """The settings' widgets; ranges from gan.train.LIMITS, defaults from TrainConfig()."""
    d, lim = DEFAULTS, LIMITS
    with gr.Row():
        steps = gr.Number(value=d.steps, minimum=lim["steps"][0], maximum=lim["steps"][1], precision=0, step=100,
                          label="Steps")
        batch = gr.Slider(*lim["batch_size"], value=d.batch_size, step=1, label="Batch size")
        lr_g = gr.Number(value=d.lr_g, minimum=lim["lr_g"][0], maximum=lim["lr_g"][1], label="Learning rate G")
        lr_d = gr.Number(value=d.lr_d, minimum=lim["lr_d"][0], maximum=lim["lr_d"][1], label="Learning rate D")
        loss = gr.Radio(list(LOSSES), value=d.loss, label="Loss")
    with gr.Row():
        ngf = gr.Slider(*lim["ngf"], value=d.ngf, step=4, label="ngf (G width)")
        ndf = gr.Slider(*lim["ndf"], value=d.ndf, step=4, label="ndf (D width)")
        nz = gr.Slider(*lim["nz"], value=d.nz, step=1, label="nz (latent size)")
        seed = gr.Number(value=d.seed, precision=0, minimum=0, label="Seed")
    with gr.Row():
        smooth = gr.Slider(*lim["label_smoothing"], value=d.label_smoothing, step=0.05,
                           label="One-sided label smoothing")
        skip = gr.Slider(*lim["d_skip_threshold"], value=d.d_skip_threshold, step=0.05,
                         label="Skip D's step while its loss < (0 = off)")
        diffaug = gr.Checkbox(value=bool(d.diffaugment), label="DiffAugment (colour, translation, cutout)")
        ema = gr.Slider(*lim["ema_decay"], value=d.ema_decay, step=0.0001, label="EMA decay of G")
    return SettingsForm(steps=steps, batch_size=batch, lr_g=lr_g, lr_d=lr_d, loss=loss, ngf=ngf, ndf=ndf, nz=nz,
                        seed=seed, label_smoothing=smooth, d_skip_threshold=skip, diffaugment=diffaug,
                        ema_decay=ema)


def build_live() -> LivePanel:
    """Buttons, status, progress, the two plots and the sample grid."""
    with gr.Column(elem_id="train-live"):
        with gr.Row():
            start = gr.Button("Start", variant="primary")
            stop = gr.Button("Stop", variant="stop")
            resume = gr.Button("Resume")
            resume_last = gr.Button("Resume your last run", visible=False, variant="primary")
            retry = gr.Button("Retry at half the batch size", visible=False)
        status = gr.Markdown(label="Status", elem_id="train-status")
        progress = gr.HTML(label="Progress")
        with gr.Row():
            # fixed colour maps: the series are known before the first point arrives
            loss_plot = gr.LinePlot(x="step", y="value", color="series", title="Losses", label="Losses", height=260,
                                    color_map={"loss D": "#d62728", "loss G": "#1f77b4"}, elem_id="loss-plot")
            d_plot = gr.LinePlot(x="step", y="value", color="series", title="D(x) and D(G(z))",
                                 label="D(x) and D(G(z))", height=260, y_lim=[0, 1], elem_id="d-plot",
                                 color_map={"D(x)": "#2ca02c", "D(G(z))": "#ff7f0e"})
        samples = gr.Image(label="Samples from fixed noise (EMA generator)", interactive=False, height=380,
                           elem_id="train-samples")
    return LivePanel(start, stop, resume, resume_last, retry, status, progress, loss_plot, d_plot, samples)


def build_after(sign_in: bool) -> AfterPanel:
    """Open / download / push; `sign_in` (a Space with OAuth): Sign in with Hugging Face, no token box."""
    with gr.Group(visible=False) as group:
        with gr.Row():
            label = gr.Textbox(value="My DCGAN", label="Model name")
            open_button = gr.Button("Open in Explore")
            zip_button = gr.Button("Download as .zip")
        zip_file = gr.File(label="Model (.zip)", interactive=False, visible=False, height=80)
        with gr.Row():
            repo = gr.Textbox(label="Hub repo id", placeholder="your-name/my-dcgan")
            token = gr.Textbox(label="Hub token (write)", type="password", visible=not sign_in)
            login = gr.LoginButton() if sign_in else None
            push_button = gr.Button("Push to Hub")
        push_status = gr.Markdown(label="Push status")
    return AfterPanel(group, label, open_button, zip_button, zip_file, repo, token, login, push_button, push_status)


def build_view(sign_in: bool) -> TrainView:
    """Lay out the whole tab in the current gr.Tab; nothing is wired yet."""
    gr.Markdown("Train a DCGAN on your own images, watch it learn, then explore or share the result. "
                "Small sets (a few hundred similar images) train best; DiffAugment helps them most.")
    data = build_data()
    with gr.Accordion("Settings", open=True):
        estimate = gr.Markdown(label="Time estimate")
        settings = build_settings()
    slot = SlotBoxes(*(gr.Textbox(visible=False, render=False, label=label)
                       for label in ("This tab's run token", "This browser's run tokens", "Tokens to forget")))
    return TrainView(data, estimate, settings, build_live(), build_after(sign_in), slot)
