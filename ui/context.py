"""What the tabs share: the device, and per-session state keyed by `gr.Request.session_hash`.

Per-user things (uploads, training jobs, trained models, results) live under an unguessable
directory per session and in `SessionStore`, never in module globals. `demo.unload` calls
`SessionStore.unload(session_hash)`: the session is closed (its belongings dropped) after a grace period
unless it is used again. Gradio fires unload when a client's heartbeat connection drops, which a loaded
server can cause while the page or API client is still there (see docs/reliability.md).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from common.zerogpu import main_device

log = logging.getLogger(__name__)


def default_runtime_dir() -> Path:
    """Where per-session files go: $ATELIER_RUNTIME_DIR, else a fixed folder under the temp dir
    (stable across restarts, so that a kept training run can be resumed; /tmp on Spaces)."""
    env = os.environ.get("ATELIER_RUNTIME_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / "gan-atelier"


# How long an unloaded session waits before it is closed (docs/reliability.md, "Sessions that go away").
# Gradio fires unload when a heartbeat connection drops, and gradio_client drops it for good when the server
# stalls past its 20 s read timeout, though the client goes on calling. Such a client is heard from with its
# next call: its pending call's reply or its next request, which the soak measured at seconds even at a load
# of 20 on two cores. Two minutes covers that many times over. It is also how long a closed tab's training
# job goes on (its close hook stops it, the checkpoint kept), holding the CPU's one training slot; a new tab
# that claims that run closes the old session at once (ui/train_resume.py).
UNLOAD_GRACE_S = 120.0


@dataclass
class SessionState:
    """One browser session's belongings."""

    directory: Path
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    last_seen: float = field(default=0.0)
    models: dict[str, Path] = field(default_factory=dict)  # label -> mixin folder (trained or uploaded)
    extras: dict[str, Any] = field(default_factory=dict)  # per-tab state (training job, ...)

    def __post_init__(self) -> None:
        self.touch()

    def touch(self) -> None:
        """Not idle now (a page watching its run makes no calls): the idle sweep spares it. An unloaded
        session is not brought back by this, only by a call of its client (SessionStore.get / models)."""
        self.last_seen = self.clock()


class SessionStore:
    """Thread-safe map session_hash -> SessionState, with cleanup hooks.

    `clock` (monotonic seconds) decides idleness and grace periods. With `reaper` a thread closes unloaded
    sessions when their grace ends; without it only `reap` and `sweep` do (tests that move a fake clock).
    """

    def __init__(self, root: Path | None = None, ttl_s: float = 6 * 3600, grace_s: float = UNLOAD_GRACE_S,
                 clock: Callable[[], float] = time.monotonic, reaper: bool = True) -> None:
        self.root = root or default_runtime_dir()
        self.ttl_s = ttl_s  # sessions idle this long are closed even if unload never fired
        self.grace_s = grace_s  # an unloaded session is closed this long after, unless it is used again
        self.clock = clock
        self.reaper = reaper
        self._lock = threading.Lock()
        self._sessions: dict[str, SessionState] = {}
        self._leaving: dict[str, float] = {}  # unloaded sessions -> when their grace period ends
        self._wake = threading.Condition(self._lock)  # an unload wakes the reaper
        self._reaper: threading.Thread | None = None
        self._on_close: list[Callable[[str, SessionState], None]] = []
        self._last_sweep = clock()

    @property
    def kept_dir(self) -> Path:
        """Folders that outlive their session (a training run to resume), removed after ttl_s."""
        return self.root / "kept"

    def live(self) -> list[SessionState]:
        """The open sessions' states (a snapshot), including unloaded ones still in their grace period."""
        with self._lock:
            return list(self._sessions.values())

    def leaving(self) -> dict[str, SessionState]:
        """The unloaded sessions still in their grace period, by key (a snapshot)."""
        with self._lock:
            return {k: self._sessions[k] for k in self._leaving if k in self._sessions}

    def hashes(self) -> list[str]:
        """The open sessions' keys (a snapshot)."""
        with self._lock:
            return list(self._sessions)

    def get(self, session_hash: str | None) -> SessionState:
        """The session's state, created on first use (an unguessable folder under root); a call of its client."""
        key = session_hash or "anonymous"
        if self.clock() - self._last_sweep >= 60:  # at most once a minute, on use
            self.sweep()
        with self._lock:
            state = self._sessions.get(key)
            if state is None:
                folder = self.root / secrets.token_hex(16)
                folder.mkdir(parents=True, exist_ok=True)
                state = self._sessions[key] = SessionState(directory=folder, clock=self.clock)
            self._seen(key, state)
            return state

    def _seen(self, key: str, state: SessionState) -> None:
        """A call of this session's client (the lock held): not idle, and back if it was unloaded."""
        state.touch()
        if self._leaving.pop(key, None) is not None:
            log.info("session %s is back after an unload; kept", key[:6])

    def sweep(self) -> None:
        """Close the sessions idle for longer than ttl_s or past their grace, and the kept folders past ttl_s."""
        now = self._last_sweep = self.clock()
        with self._lock:
            stale = [k for k, s in self._sessions.items() if now - s.last_seen > self.ttl_s]
        for key in stale:
            log.info("closing idle session %s", key[:6])
            self.close(key)
        self.reap()
        self._sweep_kept()

    def _sweep_kept(self) -> None:
        """Remove kept folders untouched for longer than ttl_s (a run's checkpoint writes touch it)."""
        if not self.kept_dir.is_dir():
            return
        for folder in self.kept_dir.iterdir():
            if folder.is_dir() and time.time() - folder.stat().st_mtime > self.ttl_s:
                log.info("removing expired kept folder %s", folder.name[:6])
                shutil.rmtree(folder, ignore_errors=True)

    def add_model(self, session_hash: str | None, label: str, folder: Path) -> None:
        """Make a model folder visible in this session's pickers (Explore)."""
        self.get(session_hash).models[label] = folder

    def models(self, session_hash: str | None) -> dict[str, Path]:
        """This session's own models (trained here or uploaded); asking is a call of its client."""
        key = session_hash or "anonymous"
        with self._lock:
            state = self._sessions.get(key)
            if state is None:
                return {}
            self._seen(key, state)
            return dict(state.models)

    def on_close(self, hook: Callable[[str, SessionState], None]) -> None:
        """Register a hook run when a session ends (e.g. stop its training job)."""
        self._on_close.append(hook)

    def unload(self, session_hash: str | None) -> None:
        """The page or client went away (Gradio's unload): close the session grace_s later unless it calls
        again before then. The reaper thread closes it on time (a closed tab's job stops then)."""
        key = session_hash or "anonymous"
        with self._lock:
            if key not in self._sessions:
                return
            self._leaving[key] = self.clock() + self.grace_s
            if self.reaper and self._reaper is None:
                self._reaper = threading.Thread(target=self._reap_loop, name="session-reaper", daemon=True)
                self._reaper.start()
            self._wake.notify()
        log.info("session %s unloaded; closing it in %.0f s unless it is used again", key[:6], self.grace_s)

    def reap(self) -> list[str]:
        """Close the unloaded sessions whose grace period has ended (by `clock`) -> their keys."""
        with self._lock:
            now = self.clock()
            due = [k for k, end in self._leaving.items() if end <= now]
            states = [(key, self._sessions.pop(key, None)) for key in due]
            for key in due:
                del self._leaving[key]
        for key, state in states:
            self._finish(key, state)
        return due

    def _reap_loop(self) -> None:
        """The reaper thread: wait for the next grace period to end, reap; end when none is pending."""
        while True:
            with self._lock:
                if not self._leaving:
                    self._reaper = None  # the next unload starts another
                    return
                wait_s = min(self._leaving.values()) - self.clock()
                if wait_s > 0:
                    self._wake.wait(min(wait_s, 60.0))  # an unload or a return wakes it early
                    continue
            self.reap()

    def close(self, session_hash: str | None) -> None:
        """Close now: run the close hooks, then delete the session's folder."""
        key = session_hash or "anonymous"
        with self._lock:
            self._leaving.pop(key, None)
            state = self._sessions.pop(key, None)
        self._finish(key, state)

    def _finish(self, key: str, state: SessionState | None) -> None:
        """Run the close hooks of a session taken out of the store, then delete its folder."""
        if state is None:
            return
        log.info("closing session %s", key[:6])
        for hook in self._on_close:
            hook(key, state)
        shutil.rmtree(state.directory, ignore_errors=True)


@dataclass
class AppContext:
    """Handed to every tab builder."""

    device: torch.device = field(default_factory=main_device)  # the CPU on ZeroGPU
    sessions: SessionStore = field(default_factory=SessionStore)
