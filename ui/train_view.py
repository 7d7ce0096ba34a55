"""Train's widgets (forms and panels) and how a job's state and a config are shown in them.

The settings form's field names are `TrainConfig`'s, and its ranges, choices and defaults are
`gan.train.LIMITS`, the engine's tuples of choices and `TrainConfig()`'s (tests/test_slider_ranges.py checks
every one): the form and the config convert into each other by name (`config_of`, `show_config`). The live
panel shows the losses, D's outputs, the KID and coverage measurements (gan/train/kid.py) and, while a run
grows progressively, its current resolution and fade-in weight. Nothing here handles an event.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from gan.explorer.model import SUPPORTED_SIZES
from gan.train import LIMITS, TrainConfig
from gan.train.card import grid_to_pil
from gan.train.config import DEFAULT_POLICY, LOSSES
from gan.train.metrics import COVERAGE_KEYS, D_OUTPUT_KEYS, LOSS_KEYS, METRIC_LABELS, latest_quality
from gan.train.progressive import start_resolutions
from gan.train.variants import D_ARCHS, D_NORMS, G_ARCHS
from ui.files import publish_image
from ui.forms import Form, Values
from ui.train_jobs import JobView

DEFAULTS = TrainConfig()
MAX_POINTS = 400  # points per plotted series: the browser stays quick on long runs
CHANNELS = {"colour": 3, "grey": 1}
GROW_STARTS = (0, *start_resolutions(max(SUPPORTED_SIZES)))  # 0 = off; TrainConfig refuses one >= the image size
INTEGERS = ("steps", "batch_size", "ngf", "ndf", "nz", "seed", "grow_from", "grow_phase_steps", "grow_fade_steps",
            "kid_every")
KID_NOTE = (
    "**KID x 1000** (kernel inception distance; lower is better) compares 128 samples with your images in the "
    "features of a pretrained network (VGG16, five layers), every `kid_every` steps, in at most 5 % of the "
    "training time. Near 0, the network cannot tell the two apart; but a generator that copies your images scores "
    "near 0 too, and differences within its ± spread are noise. It ranks runs and checkpoints **on the same "
    "images**: it is **not** comparable with published FID or KID values, nor across data sets. **Coverage**: "
    "the share of your images that have a sample among their nearest neighbours in those features; half of your "
    "images cover the other half this much (the grey line). Far below it means mode collapse: the samples are "
    "variations of a few pictures, and a warning says so.")


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
    grow_from: gr.Dropdown  # progressive growing's first resolution, 0 = off
    grow_phase_steps: gr.Number
    grow_fade_steps: gr.Number
    g_arch: gr.Radio  # the "Advanced" accordion: the small-data variants and the quality measurement
    d_arch: gr.Radio
    d_norm: gr.Radio
    kid_every: gr.Number


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
    kid_plot: gr.LinePlot
    coverage_plot: gr.LinePlot
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
        for name in INTEGERS:
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


def frames(history: list[dict]) -> dict[str, pd.DataFrame]:
    """Long-format frames (step, value, series) for the plots: losses and D's outputs thinned to MAX_POINTS
    steps; KID and coverage from every measured step (one per `kid_every` steps: few)."""
    stride = max(1, -(-len(history) // MAX_POINTS))
    rows = history[::stride] + (history[-1:] if history and (len(history) - 1) % stride else [])
    measured = [r for r in history if "kid" in r]

    def melt(lines: list[dict], keys: tuple[str, ...]) -> pd.DataFrame:
        frame = pd.DataFrame([{"step": r["step"], "value": r[k], "series": METRIC_LABELS[k]} for r in lines
                              for k in keys], columns=["step", "value", "series"])
        return frame.astype({"step": "int64", "value": "float64"})  # numeric axes even before step 1

    return {"loss": melt(rows, LOSS_KEYS), "d": melt(rows, D_OUTPUT_KEYS), "kid": melt(measured, ("kid",)),
            "coverage": melt(measured, COVERAGE_KEYS)}


def growth_text(rec) -> str:
    """Progressive growing, live: the resolution G and D train at, and the newest layer's fade-in weight."""
    if not rec.growing:
        return ""
    fading = f", fading in: {rec.fade_in:.2f}" if rec.fade_in < 1 else ""
    return f" &middot; growing: {rec.resolution} px{fading}"


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
            f"{rec.images_per_s:.0f} images/s &middot; {eta}{growth_text(rec)}</div></div>")


def status_md(view: JobView) -> str:
    """State, latest losses, error and the last warnings."""
    rec = view.latest
    head = {"queued": "Queued", "running": "Training", "done": "Done", "stopped": "Stopped",
            "nan": "Stopped: the losses blew up", "error": "Failed", "oom": "Out of memory"}[view.state]
    lines = [f"**{head}**"]
    if rec is not None and rec.loss_d == rec.loss_d:
        lines.append(f"loss D {rec.loss_d:.3f} · loss G {rec.loss_g:.3f} · D(x) {rec.d_x:.2f} · "
                     f"D(G(z)) {rec.d_g_z:.2f}")
    quality = latest_quality(view.history)
    if quality:
        lines.append(f"KID x 1000 {quality['kid']:.0f} (± {quality['kid_std']:.0f}) at step {quality['step']:,} · "
                     f"coverage {quality['coverage']:.2f} (your images' own: {quality['real_coverage']:.2f})")
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
        plots = frames(job.history)
        updates.update({live.loss_plot: plots["loss"], live.d_plot: plots["d"], live.kid_plot: plots["kid"],
                        live.coverage_plot: plots["coverage"]})
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
    with gr.Row():
        grow_from = gr.Dropdown(list(GROW_STARTS), value=d.grow_from,
                                label="Progressive growing: start at (px, 0 = off)")
        phase = gr.Number(value=d.grow_phase_steps, minimum=lim["grow_phase_steps"][0], precision=0,
                          maximum=lim["grow_phase_steps"][1], label="Growing: steps per resolution")
        fade = gr.Number(value=d.grow_fade_steps, minimum=lim["grow_fade_steps"][0], precision=0,
                         maximum=lim["grow_fade_steps"][1], label="Growing: fade-in steps per new layer")
    with gr.Accordion("Advanced: network variants and the quality measurement", open=False):
        with gr.Row():
            g_arch = gr.Radio(list(G_ARCHS), value=d.g_arch, label="Generator (sle: + skip-layer excitation)")
            d_arch = gr.Radio(list(D_ARCHS), value=d.d_arch,
                              label="Discriminator (projected: on frozen VGG16 features)")
            d_norm = gr.Radio(list(D_NORMS), value=d.d_norm, label="D's normalisation")
            kid_every = gr.Number(value=d.kid_every, minimum=lim["kid_every"][0], maximum=lim["kid_every"][1],
                                  precision=0, label="Measure KID every (steps, 0 = never)")
    return SettingsForm(steps=steps, batch_size=batch, lr_g=lr_g, lr_d=lr_d, loss=loss, ngf=ngf, ndf=ndf, nz=nz,
                        seed=seed, label_smoothing=smooth, d_skip_threshold=skip, diffaugment=diffaug,
                        ema_decay=ema, grow_from=grow_from, grow_phase_steps=phase, grow_fade_steps=fade,
                        g_arch=g_arch, d_arch=d_arch, d_norm=d_norm, kid_every=kid_every)


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
        with gr.Row():
            kid_plot = gr.LinePlot(x="step", y="value", color="series", title="KID x 1000 (lower is better)",
                                   label="KID x 1000", height=220, elem_id="kid-plot",
                                   color_map={METRIC_LABELS["kid"]: "#7b3fa9"})
            coverage_plot = gr.LinePlot(x="step", y="value", color="series", title="Coverage of your images",
                                        label="Coverage", height=220, y_lim=[0, 1], elem_id="coverage-plot",
                                        color_map={METRIC_LABELS["coverage"]: "#138c96",
                                                   METRIC_LABELS["real_coverage"]: "#969696"})
        gr.Markdown(KID_NOTE, elem_id="kid-note")
        samples = gr.Image(label="Samples from fixed noise (EMA generator)", interactive=False, height=380,
                           elem_id="train-samples")
    return LivePanel(start, stop, resume, resume_last, retry, status, progress, loss_plot, d_plot, kid_plot,
                     coverage_plot, samples)


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
