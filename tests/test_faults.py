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
from ui import train as T
from ui import train_resume as resume
from ui.context import AppContext, SessionStore
from ui.train_jobs import JobSlots, TrainJob

# FIELDS order: steps, batch, lr_g, lr_d, loss, ngf, ndf, nz, smoothing, D-skip, DiffAugment, EMA, seed
VALUES = (5000, 8, 2e-4, 2e-4, "bce", 8, 8, 16, 0.0, 0.0, False, 0.99, 0)


def app_context(root: Path) -> AppContext:
    ctx = AppContext(device=torch.device("cpu"), sessions=SessionStore(root=root))
    ctx.sessions.on_close(lambda session_hash, state: T._on_close(ctx, state))  # as build_train_tab does
    return ctx


def dataset(n: int = 6) -> ImageDataset:
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return ImageDataset(images, [f"{i}.png" for i in range(n)], IngestReport(n, [], 0, None, None))


def wait(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_closed_tab_keeps_the_checkpoint_and_a_new_session_resumes_it(tmp_path):
    ctx = app_context(tmp_path)
    request = SimpleNamespace(session_hash="tab-1")
    session, train = T._state(ctx, request)
    assert not resume.adopt(ctx, session, None)  # page load: nothing to resume, the token goes to the browser
    token = resume.token(session)
    train.dataset = dataset()
    next(T._on_start(ctx, JobSlots(1), 32, "colour", VALUES, request))
    job = train.job
    wait(lambda: job.view().latest is not None and job.view().latest.step >= 3)

    ctx.sessions.close("tab-1")  # the tab closes (demo.unload)
    assert job.state == "stopped" and not session.directory.exists()
    kept = tmp_path / "kept" / token
    assert (kept / CHECKPOINT_FILE).is_file() and resume.resumable(kept)
    stopped_at = job.trainer.step

    restarted = app_context(tmp_path)  # a server restart: a new store on the same runtime dir
    fresh = restarted.sessions.get("tab-2")
    assert not resume.adopt(restarted, fresh, "../" + token[3:])  # junk is never used as a path
    assert resume.adopt(restarted, fresh, token)
    again = restarted.sessions.get("tab-3")
    assert not resume.adopt(restarted, again, token)  # one session at a time resumes a run
    request2 = SimpleNamespace(session_hash="tab-2")
    next(T._on_resume_last(restarted, JobSlots(1), request2))
    job2 = T._state(restarted, request2)[1].job
    wait(lambda: job2.trainer.step >= stopped_at + 2)
    assert job2.trainer.history[0]["step"] == 1  # the old history came back with the checkpoint
    T._on_stop(restarted, request2)
    assert job2.state == "stopped"


def test_an_api_session_that_closes_leaves_no_run_behind(tmp_path):
    ctx = app_context(tmp_path)
    request = SimpleNamespace(session_hash="api")
    session, train = T._state(ctx, request)
    train.dataset = dataset()
    next(T._on_start(ctx, JobSlots(1), 32, "colour", VALUES, request))
    ctx.sessions.close("api")  # its token never reached a browser: nobody could resume it
    assert not (tmp_path / "kept" / resume.token(session)).exists()


def test_kept_runs_expire(tmp_path):
    store = SessionStore(root=tmp_path, ttl_s=0)
    old = store.kept_dir / ("a" * 32)
    old.mkdir(parents=True)
    store._last_sweep -= 120
    store.get("someone")
    assert not old.exists()


def test_training_out_of_memory_says_so_and_offers_half_the_batch(monkeypatch):
    def boom(self, real, skip_d=False):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "train_step", boom)
    config = TrainConfig(image_size=32, nc=3, nz=16, ngf=8, ndf=8, batch_size=32, steps=10)
    job = TrainJob(Trainer(config, "cpu"), dataset().images, JobSlots(1)).start()
    job.thread.join(30)
    view = job.view()
    assert view.state == "oom" and view.finished
    assert "ran out of memory at batch size 32" in view.error and "half the batch size (16)" in view.error
    outputs = T._outputs(view, -1)
    assert "Out of memory" in outputs[0] and outputs[-1]["visible"] is True  # the retry button shows


def test_style_out_of_memory_offers_a_smaller_size(monkeypatch, tmp_path):
    import gradio as gr

    from ui import style as S

    def boom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")
        yield  # a generator, like the engine's

    monkeypatch.setattr(S, "stylize", boom)
    on_stylize, _ = S.make_handlers(AppContext(device=torch.device("cpu"), sessions=SessionStore(root=tmp_path)))
    photo = Image.new("RGB", (40, 30), "white")
    with pytest.raises(gr.Error, match=r"ran out of memory at 256 px\. Retry at 128 px"):
        list(on_stylize(photo, photo, 1.0, None, 0.5, None, 0.5, 0.0, 0.3, -1.0, 10, 256, "lbfgs", "content",
                        False, 1.0, "tiny-random", SimpleNamespace(session_hash="s")))


@pytest.mark.integration
@pytest.mark.weights
def test_corrupt_weights_give_the_fix_and_the_other_tabs_work(tmp_path, monkeypatch):
    from gradio_client import Client, handle_file

    from app import build_demo, serve
    from gan.explorer import zoo
    from tests.conftest import free_port
    from weights.fetch import model_dir

    for model_id in ("dcgan-faces-64", "vgg16-hed"):
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
            client.predict("dcgan-faces-64", 1, 1.0, "nearest", "256", 0, *[0.0] * 16, api_name="/generate")
        assets = Path(__file__).resolve().parents[1] / "assets"
        out = client.predict(handle_file(str(assets / "content" / "astronaut.jpg")),
                             handle_file(str(assets / "styles" / "hokusai_great_wave.jpg")), 1.0, None, 0.5, None,
                             0.5, 0.0, 0.3, -1.0, 10, 64, "lbfgs", "content", False, 1.0, "vgg16-hed",
                             api_name="/stylize")
        assert "Done" in out[3]  # the Style tab still works
    finally:
        demo.close()
        zoo.pretrained_folder.cache_clear()  # later tests must not see this temporary folder
