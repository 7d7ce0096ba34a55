"""Training jobs of the Train tab: one background thread per session, a fair queue per device.

A `TrainJob` runs `Trainer.run` in its own thread and keeps what the page needs (latest record,
sample grid, warnings, state) behind a lock; the page polls it. `JobSlots` admits a limited number of
jobs per device at once (1 on CPU: two jobs on two cores only slow each other down) in arrival order
and tells a waiting job its queue position. No gradio here: ui/train.py translates to widgets.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import torch

from gan.train import Trainer, TrainStep
from gan.train.card import grid_uint8

log = logging.getLogger(__name__)
FINISHED = ("done", "stopped", "nan", "error", "oom")


def half_batch(batch_size: int) -> int:
    """What 'Retry at half the batch size' sets."""
    return max(1, batch_size // 2)


class JobSlots:
    """First come, first served admission of at most `limit` running jobs."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._cond = threading.Condition()
        self._queue: list[TrainJob] = []
        self._running = 0

    def acquire(self, job: TrainJob) -> bool:
        """Wait for a slot; False if the job was stopped while waiting."""
        with self._cond:
            self._queue.append(job)
            while not (self._queue[0] is job and self._running < self.limit):
                if job.stop.is_set():
                    self._queue.remove(job)
                    self._cond.notify_all()
                    return False
                self._cond.wait(0.5)
            self._queue.pop(0)
            self._running += 1
            self._cond.notify_all()
            return True

    def release(self) -> None:
        """Give a slot back."""
        with self._cond:
            self._running -= 1
            self._cond.notify_all()

    def position(self, job: TrainJob) -> int:
        """1-based place in the queue, 0 when not waiting."""
        with self._cond:
            return self._queue.index(job) + 1 if job in self._queue else 0


@dataclass
class JobView:
    """A consistent snapshot of a job for one page update."""

    state: str  # queued, running, done, stopped, nan, error, oom
    latest: TrainStep | None
    samples: torch.Tensor | None
    sample_step: int
    history: list[dict]
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    queue_position: int = 0

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class TrainJob:
    """One session's training run in a background thread."""

    def __init__(self, trainer: Trainer, images: torch.Tensor, slots: JobSlots) -> None:
        self.trainer, self.images, self.slots = trainer, images, slots
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.state, self.error = "queued", None
        self.latest: TrainStep | None = None
        self.samples: torch.Tensor | None = None
        self.sample_step = -1
        self.warnings: list[str] = []
        self.thread = threading.Thread(target=self._run, name="train-job", daemon=True)

    def start(self) -> TrainJob:
        self.thread.start()
        return self

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def _run(self) -> None:
        if not self.slots.acquire(self):
            self.state = "stopped"
            return
        try:
            self.state = "running"
            if self.trainer.step > 0:  # resumed: show where the run stands before its next grid is due
                self.samples, self.sample_step = grid_uint8(self.trainer.sample()), self.trainer.step
            self._follow()
        except torch.OutOfMemoryError:
            self._out_of_memory()
        except Exception as err:  # a thread has no caller: hand the error to the page, and log it
            log.exception("training job failed")
            self.error, self.state = f"{type(err).__name__}: {err}", "error"
        finally:
            self.slots.release()

    def _follow(self) -> None:
        for rec in self.trainer.run(self.images, stop_event=self.stop):
            with self._lock:
                self.latest = rec
                if rec.samples is not None:
                    self.samples, self.sample_step = rec.samples, rec.step
                if rec.warning:
                    self.warnings.append(rec.warning)
                if rec.finished:
                    self.state = rec.finished

    def _out_of_memory(self) -> None:
        """Free the allocator's cache and say what to try (the last checkpoint stays on disk)."""
        log.warning("training ran out of memory")
        self.trainer.opt_d.zero_grad(set_to_none=True)
        self.trainer.opt_g.zero_grad(set_to_none=True)
        if self.trainer.device.type == "cuda":
            torch.cuda.empty_cache()
        c = self.trainer.config
        half = half_batch(c.batch_size)
        self.error = (f"The {self.trainer.device.type} device ran out of memory at batch size {c.batch_size} and "
                      f"{c.image_size} px. Retry at half the batch size ({half})"
                      + (" or" if half < c.batch_size else ", it is already the smallest, so")
                      + " pick a smaller image size or narrower networks (ngf, ndf).")
        self.state = "oom"

    def view(self) -> JobView:
        """Snapshot for the page (the history is copied: the thread keeps appending)."""
        with self._lock:
            return JobView(self.state, self.latest, self.samples, self.sample_step, list(self.trainer.history),
                           list(self.warnings), self.error, self.slots.position(self) if self.state == "queued" else 0)

    def stop_and_wait(self, timeout: float = 60.0) -> None:
        """Ask the engine to stop (it checks every step), then wait for its last checkpoint."""
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
