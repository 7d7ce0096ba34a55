"""Train tab: upload images, pick settings, watch a DCGAN learn live, then use, download or push the model.

Widgets <-> `IngestConfig` / `TrainConfig` and `TrainStep` records only; the engine is gan/train/trainer.py,
the background job and the per-device queue are ui/train_jobs.py, the widgets ui/train_view.py and the
resume slots ui/train_resume.py. Every per-user thing lives in the session's `extras["train"]` (data set,
job, run folder), keyed by `gr.Request.session_hash`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from common.device import describe
from gan.ingest.data import ImageDataset, IngestConfig, IngestError, ingest
from gan.train import TrainConfig, Trainer, TrainError, measure_step_seconds, suggest_config
from ui import train_resume as resume
from ui.context import AppContext, SessionState
from ui.explore import Explore
from ui.files import publish_image, publish_zip
from ui.forms import on
from ui.train_hub import push_folder
from ui.train_jobs import JobSlots, TrainJob, half_batch
from ui.train_view import CHANNELS, TrainView, build_view, config_of, settings_values, show_config, show_job

log = logging.getLogger(__name__)
STREAM_END_WAIT_S = 10.0  # how long /stop waits for the run's stream to send its last update
POLL_S = 1.0  # page refresh while training (at least every 2 s)


@dataclass
class TrainSession:
    """One browser session's training belongings."""

    dataset: ImageDataset | None = None
    job: TrainJob | None = None
    step_seconds: float = 0.0  # measured at the suggested settings, for the estimate
    exported: Path | None = None
    exported_step: int = -1
    streams: int = 0  # live streams following the job (/start, /resume, /resume_last)
    streams_changed: threading.Condition = field(default_factory=threading.Condition)


def estimate_md(seconds_per_step: float, steps: int, device: str) -> str:
    """The measured time per step, and what the suggested run takes."""
    total = seconds_per_step * steps
    when = f"{total / 60:.0f} min" if total >= 90 else f"{total:.0f} s"
    return (f"Measured on {device}: **{seconds_per_step:.2f} s per step** at the suggested settings, so "
            f"{steps:,} steps take about **{when}** (larger batches or networks take longer).")


class Train:
    """The tab's handlers, bound to the app context, the job slots and the tab's widgets."""

    def __init__(self, ctx: AppContext, view: TrainView, explore: Explore, tabs: gr.Tabs) -> None:
        self.ctx, self.v, self.explore, self.tabs = ctx, view, explore, tabs
        self.slots = JobSlots(1 if ctx.device.type == "cpu" else 2)
        ctx.sessions.on_close(lambda _key, state: self.close(state))

    def state(self, request: gr.Request | None) -> tuple[SessionState, TrainSession]:
        """This session's state and its training belongings."""
        session = self.ctx.sessions.get(request.session_hash if request else None)
        return session, session.extras.setdefault("train", TrainSession())

    def upload(self, request: gr.Request, folder: list[str] | None = None, files: list[str] | None = None,
               **given: Any) -> Any:
        """Ingest into the session folder; report, preview, time estimate and suggested settings."""
        session, train = self.state(request)
        sources = [Path(p) for p in (folder or []) + (files or [])]
        if not sources:
            return gr.skip()
        if train.job and not train.job.finished:
            raise gr.Error("Stop the running training before changing the images.")
        fmt = self.v.data.form.read(given)
        try:
            config = IngestConfig(image_size=int(fmt.image_size), channels=CHANNELS.get(fmt.channels, 0))
            train.dataset = ingest(sources, session.directory / "data", config)
        except (IngestError, ValueError, TypeError) as err:
            train.dataset = None
            return {self.v.data.report: str(err), self.v.data.preview: None, self.v.estimate: ""}
        suggested = suggest_config(len(train.dataset), self.ctx.device, config.image_size, config.channels)
        train.step_seconds = measure_step_seconds(suggested, self.ctx.device)
        preview = publish_image(train.dataset.preview_grid(64), "preview.webp")
        return {self.v.data.report: train.dataset.report.summary(), self.v.data.preview: preview,
                self.v.estimate: estimate_md(train.step_seconds, suggested.steps, describe(self.ctx.device)),
                **self.v.settings.set(**settings_values(suggested))}

    def config(self, given: dict) -> TrainConfig:
        """The page's format and settings as a TrainConfig."""
        return config_of(self.v.data.form.read(given), self.v.settings.read(given))

    def start(self, request: gr.Request, **given: Any) -> Iterator[dict]:
        """A new run on the uploaded images with the page's settings; streams the page's updates."""
        session, train = self.state(request)
        if train.dataset is None:
            raise gr.Error("Upload some images first.")
        if train.job and not train.job.finished:
            raise gr.Error("This session is already training; stop it first (one job per session).")
        config = self.config(given)
        run_dir = resume.run_dir(self.ctx, session)
        shutil.rmtree(run_dir, ignore_errors=True)  # a new run: the old checkpoint and metrics go
        resume.save_images(run_dir, self.images(train, config))
        trainer = Trainer(config, self.ctx.device, out_dir=run_dir)
        yield from self.follow(session, train, trainer)

    def resume(self, request: gr.Request, **given: Any) -> Iterator[dict]:
        """Continue the stopped run with the page's settings (how it learns may change, not its shapes)."""
        session, train = self.state(request)
        if train.job is None or not train.job.finished or train.dataset is None:
            raise gr.Error("Nothing to resume: start a run and stop it first.")
        wanted, before = self.config(given), train.job.trainer.config
        done = train.job.trainer.step
        if wanted.steps <= done:
            raise gr.Error(f"The run already did {done} steps: raise Steps above {done} to continue.")
        names = ("image_size", "nc", *self.v.settings.widgets())
        changes = {f: getattr(wanted, f) for f in names if getattr(wanted, f) != getattr(before, f)}
        try:
            trainer = Trainer.resume(resume.run_dir(self.ctx, session), self.ctx.device, changes=changes)
        except TrainError as err:
            raise gr.Error(str(err)) from err
        tuned = [f"{f} {getattr(before, f)} → {v}" for f, v in changes.items() if f != "steps"]
        if tuned:  # the lesson's experiment: change how it learns mid-run and watch the curves respond
            gr.Info(f"Resuming at step {done} with " + ", ".join(tuned) + ".")
        yield from self.follow(session, train, trainer)

    def resume_last(self, request: gr.Request) -> Iterator[dict]:
        """Continue the run this tab (or a closed tab of this browser) left, from its last checkpoint."""
        session, train = self.state(request)
        folder = resume.run_dir(self.ctx, session)
        if not resume.resumable(folder):
            raise gr.Error("There is no earlier run to resume in this browser (kept runs expire after a few hours).")
        if train.job and not train.job.finished:
            raise gr.Error("This session is already training; stop it first (one job per session).")
        train.dataset = resume.kept_dataset(folder)
        yield from self.follow(session, train, Trainer.resume(folder, self.ctx.device))

    def follow(self, session: SessionState, train: TrainSession, trainer: Trainer) -> Iterator[dict]:
        """Run `trainer` as this session's job; the first update shows its settings, then every POLL_S the
        job's state until it ends (health warnings also pop up as toasts). The last update shows the end."""
        train.job = job = TrainJob(trainer, self.images(train, trainer.config), self.slots).start()
        with train.streams_changed:
            train.streams += 1
        try:
            yield from self.watch(session, job, show_config(self.v, trainer.config))
        finally:
            with train.streams_changed:
                train.streams -= 1
                train.streams_changed.notify_all()

    def watch(self, session: SessionState, job: TrainJob, first: dict) -> Iterator[dict]:
        """Every POLL_S the job's state (warnings also as toasts), until an update shows it finished."""
        shown_sample, warned = -1, 0
        while True:
            session.touch()  # a page watching a run for hours is not idle
            view = job.view()
            for warning in view.warnings[warned:]:
                gr.Warning(warning)
            warned = len(view.warnings)
            yield {**first, **show_job(self.v, view, shown_sample)}
            first, shown_sample = {}, view.sample_step
            # The snapshot just shown decides, not the job now: a job that ended while Gradio sent that update
            # (seconds on a loaded machine) still owes the page its final state, or "Training" would stay.
            if view.finished:
                return
            time.sleep(POLL_S)

    def images(self, train: TrainSession, config: TrainConfig):
        """The session's images, if they fit the config's format."""
        images = train.dataset.images
        if tuple(images.shape[1:]) != (config.nc, config.image_size, config.image_size):
            raise gr.Error("The images were prepared at another size or channel count; upload them again.")
        return images

    def stop(self, request: gr.Request) -> dict:
        """Stop this session's run (it writes a last checkpoint) and show where it stopped."""
        _, train = self.state(request)
        if train.job is None:
            raise gr.Error("Nothing is training.")
        train.job.stop_and_wait()
        # The run's stream may still be sending an update made before the stop; replying first would let that
        # older "Training" land after this "Stopped". Gradio asks a generator for its next update only once the
        # last one is sent, so the stream's end means all its updates are out (the wait is bounded, for a
        # stream whose page is gone and is no longer iterated).
        with train.streams_changed:
            train.streams_changed.wait_for(lambda: train.streams == 0, timeout=STREAM_END_WAIT_S)
        return show_job(self.v, train.job.view(), -1)

    def half_batch(self, batch_size: float) -> dict:
        """Halve the batch size (after running out of memory)."""
        return self.v.settings.set(batch_size=half_batch(int(batch_size)))

    def export(self, request: gr.Request) -> Path:
        """The EMA generator of the session's last run in mixin format (exported once per step count)."""
        session, train = self.state(request)
        if train.job is None or not train.job.finished:
            raise gr.Error("Finish or stop the training first.")
        trainer = train.job.trainer
        if train.exported is None or train.exported_step != trainer.step:
            folder = session.directory / "models" / f"dcgan-step{trainer.step}"
            train.exported, train.exported_step = trainer.export(folder), trainer.step
        return train.exported

    def open_in_explore(self, request: gr.Request, label: str) -> dict:
        """Make the trained model one of this session's Explore models and switch to Explore."""
        self.ctx.sessions.add_model(request.session_hash, label, self.export(request))
        choices = self.explore.choices(request.session_hash)
        picker = self.explore.v.recipe.model
        return {picker: gr.update(choices=choices, value=label if label in choices else picker.value),
                self.tabs: gr.Tabs(selected="explore")}

    def download(self, request: gr.Request) -> dict:
        """The model folder as a .zip file."""
        folder = self.export(request)
        return {self.v.after.zip_file: gr.update(value=publish_zip(folder, f"{folder.name}.zip"), visible=True)}

    def push(self, request: gr.Request, oauth: gr.OAuthToken | None, repo_id: str, token: str = "") -> dict:
        """Push the model to the Hub with the signed-in visitor's token (a Space) or the typed one."""
        folder = self.export(request)
        return {self.v.after.push_status: push_folder(folder, repo_id, oauth.token if oauth else token)}

    def restore(self, request: gr.Request, tab_token: str, browser_runs: str) -> dict:
        """Page load: this tab's resume slot (see ui/train_resume.py); offer 'Resume your last run'."""
        session, _ = self.state(request)
        offer, forget = resume.claim(self.ctx, session, tab_token, resume.parse_tokens(browser_runs))
        return {self.v.slot.tab_token: resume.token(session), self.v.slot.forget: json.dumps(forget),
                self.v.live.resume_last: gr.update(visible=offer)}

    def close(self, state: SessionState) -> None:
        """The tab closed: stop its job (kept for resuming), or drop the run if no browser can resume it."""
        stop_job(state)
        resume.forget_unshared(self.ctx, state)


def stop_job(state: SessionState) -> None:
    """Stop a session's job and let the engine write its last checkpoint."""
    train = state.extras.get("train")
    if isinstance(train, TrainSession) and train.job is not None:
        train.job.stop_and_wait()


START_DOC = ("Train a DCGAN on this session's uploaded images with these settings (TrainConfig's names); streams "
             "status, progress, the loss, KID and coverage plots and the sample grid until the run ends or /stop.")


def wire(t: Train) -> None:
    """Connect the tab's events (ui/forms.py's `on`: inputs by name, one api_name each)."""
    v = t.v
    d, s, live, a = v.data, v.settings, v.live, v.after
    shown = [live.status, live.progress, live.loss_plot, live.d_plot, live.kid_plot, live.coverage_plot, live.samples,
             a.group, live.retry]
    run_out = [*shown, d.form, s]  # a run's first update shows its settings
    on([d.folder.upload, d.files.upload, d.form.image_size.change, d.form.channels.change], t.upload,
       inputs=[{"folder": d.folder, "files": d.files}, d.form], outputs=[d.report, d.preview, v.estimate, s],
       api_name="upload", doc="Prepare images (files, a folder's files or a .zip) at image_size and channels for "
       "training; returns a report, a preview, a time estimate and suggested settings.")
    # The pollers only sleep and read: they need no worker slot (JobSlots limits the real work). Never under
    # ZeroGPU's spaces.GPU: a run's thread must outlive any one call, and its minutes exceed a visitor's quota.
    go = dict(concurrency_limit=None)
    on(live.start.click, t.start, inputs=[d.form, s], outputs=run_out, api_name="start", doc=START_DOC, **go)
    on(live.resume.click, t.resume, inputs=[d.form, s], outputs=run_out, api_name="resume", **go,
       doc="Continue this session's stopped run, with new learning rates, loss, steps ... (not new shapes).")
    on(live.resume_last.click, t.resume_last, outputs=run_out, api_name="resume_last", **go)
    halve = on(live.retry.click, t.half_batch, inputs={"batch_size": s.batch_size}, outputs=[s.batch_size],
               api_name="halve_batch")
    on(halve, t.start, inputs=[d.form, s], outputs=run_out, api_name="retry_start", **go)
    # No `cancels=`: the run's own stream ends by itself within POLL_S of the job stopping, with the final state
    # as its last update; cancelling it could leave an older "Training" update arriving after "Stopped".
    on(live.stop.click, t.stop, outputs=shown, api_name="stop",
       doc="Stop this session's run (it keeps its last checkpoint, to resume or export).")
    on(a.open_button.click, t.open_in_explore, inputs={"label": a.label}, outputs=[t.explore.v.recipe.model, t.tabs],
       api_name="export", doc="Add the trained generator to this session's Explore models as `label` (for "
       "/generate's `model`).")
    on(a.zip_button.click, t.download, outputs=[a.zip_file], api_name="download",
       doc="The trained generator as a .zip: config.json, model.safetensors, model card and samples.")
    on(a.push_button.click, t.push, inputs={"repo_id": a.repo, "token": a.token}, outputs=[a.push_status],
       api_name="push", doc="Push the trained generator to a Hugging Face Hub model repo (a write token; on the "
       "Space, Sign in with Hugging Face instead).")


def build_train_tab(ctx: AppContext, explore: Explore, tabs: gr.Tabs) -> Train:
    """Build and wire the Train tab inside the current gr.Tab; app.py wires the page load."""
    # A Space with `hf_oauth: true` sets OAUTH_CLIENT_ID. Elsewhere a gr.LoginButton would make Gradio mock the
    # sign-in with the machine's own Hub login, which a laptop or a test machine may not have.
    sign_in = os.environ.get("SYSTEM") == "spaces" and bool(os.environ.get("OAUTH_CLIENT_ID"))
    train = Train(ctx, build_view(sign_in), explore, tabs)
    wire(train)
    return train


def wire_page_load(train: Train, demo: gr.Blocks) -> None:
    """Render the resume-slot boxes outside the tabs and restore this tab's slot at page load."""
    slot = train.v.slot
    for box in (slot.tab_token, slot.browser_runs, slot.forget):
        box.render()
    restore = on(demo.load, train.restore, inputs={"tab_token": slot.tab_token, "browser_runs": slot.browser_runs},
                 outputs=[slot.tab_token, slot.forget, train.v.live.resume_last], api_name="train_restore",
                 js=resume.READ_JS)
    on(restore, None, inputs={"token": slot.tab_token, "forget": slot.forget}, api_name="remember_tab",
       js=resume.WRITE_JS)
