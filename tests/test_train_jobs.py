"""Training jobs of the Train tab: first-come queue per device, stop on tab close, sessions kept apart."""

from __future__ import annotations

import time

import torch

from gan.train import Trainer
from tests.conftest import tiny_train_config
from ui.context import SessionStore
from ui.train import TrainSession, stop_job
from ui.train_jobs import JobSlots, TrainJob


def _job(slots: JobSlots, steps: int = 100_000) -> TrainJob:
    config = tiny_train_config(steps=steps, sample_every=1000, checkpoint_every=1000)
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    return TrainJob(Trainer(config), images, slots)


def _wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_one_slot_queues_the_second_job_and_admits_it_after_the_first_stops():
    slots = JobSlots(1)
    first, second = _job(slots).start(), _job(slots).start()
    _wait(lambda: first.view().latest is not None)
    _wait(lambda: second.view().queue_position == 1)
    assert second.view().state == "queued" and second.view().latest is None
    first.stop_and_wait()
    assert first.view().state == "stopped"
    _wait(lambda: second.view().latest is not None)
    second.stop_and_wait()
    assert second.view().state == "stopped" and second.view().history  # its own curve, not the first's


def test_closing_the_session_stops_its_job_after_a_last_checkpoint(tmp_path):
    store = SessionStore(root=tmp_path)
    store.on_close(lambda _hash, state: stop_job(state))  # as the Train tab's close hook does
    job = _job(JobSlots(1))
    job.trainer.out_dir = store.get("abc").directory / "run"
    store.get("abc").extras["train"] = TrainSession(job=job.start())
    _wait(lambda: job.view().latest is not None)
    checkpoint = job.trainer.out_dir / "checkpoint.safetensors"
    seen = []
    store.on_close(lambda _h, _s: seen.append(checkpoint.is_file()))  # runs after stop_job, before deletion
    store.close("abc")
    assert job.view().state == "stopped" and not job.thread.is_alive()
    assert seen == [True]


def test_a_resumed_job_shows_its_samples_before_the_next_grid_is_due(tmp_path):
    first = _job(JobSlots(1), steps=3)
    first.trainer.out_dir = tmp_path
    first.start().thread.join(60)
    assert first.view().state == "done"
    resumed = TrainJob(Trainer.resume(tmp_path, steps=100_000), first.images, JobSlots(1)).start()
    _wait(lambda: resumed.view().latest is not None)
    view = resumed.view()
    assert view.samples is not None and view.sample_step == 3  # sample_every is 1000: this grid is the resume's
    resumed.stop_and_wait()
