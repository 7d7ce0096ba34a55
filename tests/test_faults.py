"""Faults: a closed tab (or a restarted server) keeps the run to resume, out-of-memory, corrupt weights."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from gan.ingest.data import ImageDataset, IngestReport
from gan.train import TrainConfig, Trainer
from gan.train.checkpoint import CHECKPOINT_FILE
from tests.conftest import FakeClock
from ui import train_resume as resume
from ui.context import AppContext, SessionStore
from ui.train_jobs import JobSlots, TrainJob
from ui.train_view import show_job

RUN = dict(image_size=32, channels="colour", steps=5000, batch_size=8, ngf=8, ndf=8, nz=16, ema_decay=0.99)


def build_tabs(root: Path):
    """The app's tabs on a CPU context whose runtime dir is `root` -> (ctx, the Train handlers)."""
    import gradio as gr

    from app import build_tabs as build

    ctx = AppContext(device=torch.device("cpu"), sessions=SessionStore(root=root))
    with gr.Blocks():
        tabs = build(ctx)
    return ctx, tabs.train


def build_app(root: Path, clock: FakeClock):
    """The whole app on a CPU context whose sessions run on `clock` -> (ctx, the Train handlers, what the app
    runs on Gradio's unload event)."""
    from app import build_demo

    ctx = AppContext(device=torch.device("cpu"), sessions=SessionStore(root=root, clock=clock, reaper=False))
    demo = build_demo(ctx)
    train = next(dep.fn.__self__ for dep in demo.fns.values() if dep.api_name == "start")
    unload = next(dep.fn for dep in demo.fns.values() if any(event == "unload" for _, event in dep.targets))
    return ctx, train, unload


def form_values(train, **changes) -> dict:
    """The Train forms' default values by API name, with changes."""
    widgets = {**train.v.data.form.widgets(), **train.v.settings.widgets()}
    return {**{name: w.value for name, w in widgets.items()}, **changes}


def dataset(n: int = 6) -> ImageDataset:
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return ImageDataset(images, [f"{i}.png" for i in range(n)], IngestReport(n, [], 0, None, None))


def wait(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_closed_tab_keeps_the_checkpoint_and_a_new_session_resumes_it(tmp_path):
    ctx, train = build_tabs(tmp_path)
    request = SimpleNamespace(session_hash="tab-1")
    session, state = train.state(request)
    offer, _ = resume.claim(ctx, session, "", [])
    assert not offer  # page load: nothing to resume, the token goes to the browser
    token = resume.token(session)
    state.dataset = dataset()
    next(train.start(request, **form_values(train, **RUN)))
    job = state.job
    wait(lambda: job.view().latest is not None and job.view().latest.step >= 3)

    ctx.sessions.close("tab-1")  # the tab closes (demo.unload)
    assert job.state == "stopped" and not session.directory.exists()
    kept = tmp_path / "kept" / token
    assert (kept / CHECKPOINT_FILE).is_file() and resume.resumable(kept)
    stopped_at = job.trainer.step

    restarted_ctx, restarted = build_tabs(tmp_path)  # a server restart: a new store on the same runtime dir
    fresh = restarted_ctx.sessions.get("tab-2")
    assert not resume.claim(restarted_ctx, fresh, "../" + token[3:], [])[0]  # junk is never used as a path
    assert resume.claim(restarted_ctx, fresh, "", [token])[0]  # a new tab finds the browser's kept run
    again = restarted_ctx.sessions.get("tab-3")
    assert not resume.claim(restarted_ctx, again, token, [token])[0]  # one session at a time resumes a run
    assert resume.token(again) != token
    request2 = SimpleNamespace(session_hash="tab-2")
    first = next(restarted.resume_last(request2))
    assert first[restarted.v.data.form.image_size] == 32 and first[restarted.v.settings.ngf] == 8  # its settings
    job2 = restarted.state(request2)[1].job
    wait(lambda: job2.trainer.step >= stopped_at + 2)
    assert job2.trainer.history[0]["step"] == 1  # the old history came back with the checkpoint
    restarted.stop(request2)
    assert job2.state == "stopped"


def kept_run(ctx: AppContext, token: str) -> None:
    """A run folder that can be resumed (the files `resumable` looks for)."""
    folder = ctx.sessions.kept_dir / token
    folder.mkdir(parents=True)
    (folder / CHECKPOINT_FILE).write_bytes(b"")
    (folder / resume.IMAGES_FILE).write_bytes(b"")


def test_two_tabs_of_one_browser_keep_separate_resume_slots(tmp_path):
    ctx = AppContext(device=torch.device("cpu"), sessions=SessionStore(root=tmp_path))
    tab_a, tab_b = ctx.sessions.get("a"), ctx.sessions.get("b")
    resume.claim(ctx, tab_a, "", [])
    resume.claim(ctx, tab_b, "", [resume.token(tab_a)])  # B's page load sees A's token in the browser's list
    token_a, token_b = resume.token(tab_a), resume.token(tab_b)
    assert token_a != token_b
    kept_run(ctx, token_a)
    kept_run(ctx, token_b)
    browser = [token_b, token_a]  # what WRITE_JS left in localStorage, newest first
    assert resume.claim(ctx, ctx.sessions.get("c"), token_a, browser) == (False, [])  # A is open: a duplicate
    ctx.sessions.close("a")
    ctx.sessions.close("b")
    ctx.sessions.close("c")
    reopened = [ctx.sessions.get(name) for name in ("d", "e", "f")]
    offers = [resume.claim(ctx, tab, "", browser)[0] for tab in reopened]
    assert offers == [True, True, False]  # each closed tab's run is offered to one new tab
    assert {resume.token(tab) for tab in reopened[:2]} == {token_a, token_b}
    reloaded = ctx.sessions.get("g")
    ctx.sessions.close("d")  # d's tab reloads: it gets its own run back from sessionStorage
    assert resume.claim(ctx, reloaded, token_b, browser)[0] and resume.token(reloaded) == token_b
    offer, forget = resume.claim(ctx, ctx.sessions.get("h"), "", ["f" * 32, *browser])
    assert not offer and forget == ["f" * 32]  # a token with no run and no open tab is forgotten


def test_an_api_session_that_closes_leaves_no_run_behind(tmp_path):
    ctx, train = build_tabs(tmp_path)
    request = SimpleNamespace(session_hash="api")
    session, state = train.state(request)
    state.dataset = dataset()
    next(train.start(request, **form_values(train, **RUN)))
    ctx.sessions.close("api")  # its token never reached a browser: nobody could resume it
    assert not (tmp_path / "kept" / resume.token(session)).exists()


def test_the_stream_ends_on_the_jobs_final_state_when_the_job_ends_between_two_updates(tmp_path):
    """A job that ends while Gradio is still sending the last update (seconds on a loaded machine) still gets
    its final state shown: the page must not stay on "Training" after "Stopped" or "Done"."""
    _, train = build_tabs(tmp_path)
    request = SimpleNamespace(session_hash="slow-page")
    _, state = train.state(request)
    state.dataset = dataset()
    stream = train.start(request, **form_values(train, **{**RUN, "steps": 2}))
    updates = [next(stream)]  # the first update is out; Gradio asks for the next one late
    wait(lambda: state.job.finished)
    updates += list(stream)
    statuses = [u[train.v.live.status] for u in updates if train.v.live.status in u]
    assert statuses[0].startswith(("**Queued**", "**Training**")) and statuses[-1].startswith("**Done**")


def test_a_page_watching_its_run_is_not_idle(tmp_path):
    clock = FakeClock()
    ctx, train, _ = build_app(tmp_path, clock)
    request = SimpleNamespace(session_hash="watcher")
    _, state = train.state(request)
    state.dataset = dataset()
    stream = train.start(request, **form_values(train, **RUN))
    next(stream)
    clock.advance(2 * ctx.sessions.ttl_s)  # hours of watching: the page only reads the stream
    next(stream)
    ctx.sessions.sweep()
    assert ctx.sessions.hashes() == ["watcher"] and not state.job.finished
    train.stop(request)


def test_a_client_whose_heartbeat_dropped_keeps_its_session_and_its_run(tmp_path):
    """Gradio fires unload when a client's heartbeat connection drops, which a stalled server causes while
    gradio_client goes on calling: its data, its running job and its next calls must survive."""
    clock = FakeClock()
    ctx, train, unload = build_app(tmp_path, clock)
    request = SimpleNamespace(session_hash="api-client")
    session, state = train.state(request)
    state.dataset = dataset()
    next(train.start(request, **form_values(train, **RUN)))
    job = state.job
    unload(request)  # what the app does when the heartbeat stream ends
    assert not job.finished and session.directory.exists()  # not at once: the client may still call
    clock.advance(ctx.sessions.grace_s - 1)
    ctx.sessions.reap()
    assert not job.finished and session.directory.exists()  # nor during the grace period
    assert train.state(request) == (session, state)  # ... and it does: the same session, its images, its job
    clock.advance(10 * ctx.sessions.grace_s)
    ctx.sessions.reap()
    assert not job.finished and ctx.sessions.hashes() == ["api-client"]
    assert train.stop(request)[train.v.live.status].startswith("**Stopped**")


def test_a_closed_tabs_session_and_job_end_with_its_grace_period(tmp_path):
    clock = FakeClock()
    ctx, train, unload = build_app(tmp_path, clock)
    request = SimpleNamespace(session_hash="closed-tab")
    session, state = train.state(request)
    resume.claim(ctx, session, "", [])  # a browser page: its token is in the browser
    state.dataset = dataset()
    next(train.start(request, **form_values(train, **RUN)))
    wait(lambda: state.job.view().latest is not None)
    unload(request)
    assert not state.job.finished  # the job goes on during the grace period
    clock.advance(ctx.sessions.grace_s)
    assert ctx.sessions.reap() == ["closed-tab"]
    assert state.job.state == "stopped" and not session.directory.exists() and ctx.sessions.hashes() == []
    assert resume.resumable(ctx.sessions.kept_dir / resume.token(session))  # stopped with its checkpoint


def test_a_tab_reopened_while_the_closed_one_is_leaving_gets_its_run_at_once(tmp_path):
    """Closing a tab unloads its session (closed after a grace period); a new tab of the browser that finds
    the run closes the old session then (its job stops and writes a checkpoint) and offers the resume."""
    ctx, train, _ = build_app(tmp_path, FakeClock())
    closed_tab, reopened = SimpleNamespace(session_hash="closed"), SimpleNamespace(session_hash="reopened")
    session, state = train.state(closed_tab)
    resume.claim(ctx, session, "", [])
    state.dataset = dataset()
    next(train.start(closed_tab, **form_values(train, **RUN)))
    job = state.job
    wait(lambda: job.view().latest is not None and job.view().latest.step >= 3)
    token = resume.token(session)
    other_tab = ctx.sessions.get("other")  # another tab of the browser, leaving too, whose run is not asked for
    ctx.sessions.unload("closed")
    ctx.sessions.unload("other")
    assert not job.finished  # the grace period: a live page whose heartbeat dropped would come back
    offer, _ = resume.claim(ctx, train.state(reopened)[0], "", [token, resume.token(other_tab)])
    assert offer and resume.token(train.state(reopened)[0]) == token
    assert job.state == "stopped" and not session.directory.exists()  # closed now, not when its grace ends
    assert resume.resumable(ctx.sessions.kept_dir / token) and set(ctx.sessions.leaving()) == {"other"}


def test_kept_runs_expire(tmp_path):
    store = SessionStore(root=tmp_path, ttl_s=0)
    old = store.kept_dir / ("a" * 32)
    old.mkdir(parents=True)
    store.sweep()
    assert not old.exists()


def test_training_out_of_memory_says_so_and_offers_half_the_batch(monkeypatch, tmp_path):
    def boom(self, real, skip_d=False):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "train_step", boom)
    config = TrainConfig(image_size=32, nc=3, nz=16, ngf=8, ndf=8, batch_size=32, steps=10)
    job = TrainJob(Trainer(config, "cpu"), dataset().images, JobSlots(1)).start()
    job.thread.join(30)
    view = job.view()
    assert view.state == "oom" and view.finished
    assert "ran out of memory at batch size 32" in view.error and "half the batch size (16)" in view.error
    _, train = build_tabs(tmp_path)
    shown = show_job(train.v, view, -1)
    assert "Out of memory" in shown[train.v.live.status] and shown[train.v.live.retry]["visible"] is True
    assert train.half_batch(32) == {train.v.settings.batch_size: 16}  # what the retry button sets


def test_style_out_of_memory_offers_a_smaller_size(monkeypatch, tmp_path):
    import gradio as gr

    from ui import style as S

    def boom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")
        yield  # a generator, like the engine's

    monkeypatch.setattr(S, "stylize", boom)
    with gr.Blocks():
        tab = S.build_style_tab(AppContext(device=torch.device("cpu"), sessions=SessionStore(root=tmp_path)))
    photo = Image.new("RGB", (40, 30), "white")
    given = {name: w.value for name, w in tab.v.form.widgets().items()}
    given.update(content=photo, style_1=photo, iterations=10, size=256, backbone="tiny-random",
                 strength=tab.v.instant.look.strength.value)
    with pytest.raises(gr.Error, match=r"ran out of memory at 256 px\. Retry at 128 px"):
        list(tab.stylize(SimpleNamespace(session_hash="s"), **given))


@pytest.mark.integration
@pytest.mark.weights
def test_corrupt_weights_give_the_fix_and_the_other_tabs_work(tmp_path, monkeypatch):
    from gradio_client import Client, handle_file

    from app import build_demo, serve
    from gan.explorer import zoo
    from tests.conftest import free_port
    from weights.fetch import model_dir

    # the Style tab starts Gatys from the instant painter's picture: its two networks come too
    for model_id in ("dcgan-faces-64", "vgg16-hed", "magenta-style-predictor", "magenta-style-painter"):
        shutil.copytree(model_dir(model_id), tmp_path / "weights" / model_id)
    target = tmp_path / "weights" / "dcgan-faces-64" / "model.safetensors"
    data = bytearray(target.read_bytes())
    data[-100:] = bytes(100)  # a damaged download: same size, other bytes
    target.write_bytes(bytes(data))
    monkeypatch.setenv("ATELIER_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # offline: the re-fetch must fail, as it would without internet
    zoo.pretrained_folder.cache_clear()
    demo = build_demo(AppContext(sessions=SessionStore(root=tmp_path / "runtime")))
    port = free_port()
    serve(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        with pytest.raises(Exception, match=r"corrupt.*python -m weights fetch"):
            client.predict(model="dcgan-faces-64", seed=1, size="256", api_name="/generate")
        assets = Path(__file__).resolve().parents[1] / "assets"
        out = client.predict(content=handle_file(str(assets / "content" / "astronaut.jpg")),
                             style_1=handle_file(str(assets / "styles" / "hokusai_great_wave.jpg")), iterations=10,
                             size=64, backbone="vgg16-hed", api_name="/stylize")
        assert "Done" in out[3]  # the Style tab still works
    finally:
        demo.close()
        zoo.pretrained_folder.cache_clear()  # later tests must not see this temporary folder
