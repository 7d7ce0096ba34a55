"""What the tabs share: the device, and per-session state keyed by `gr.Request.session_hash`.

Per-user things (uploads, training jobs, trained models, results) live under an unguessable
directory per session and in `SessionStore`, never in module globals; `demo.unload` calls
`SessionStore.close(session_hash)` to drop them.
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


@dataclass
class SessionState:
    """One browser session's belongings."""

    directory: Path
    last_seen: float = field(default_factory=time.monotonic)
    models: dict[str, Path] = field(default_factory=dict)  # label -> mixin folder (trained or uploaded)
    extras: dict[str, Any] = field(default_factory=dict)  # per-tab state (training job, ...)


class SessionStore:
    """Thread-safe map session_hash -> SessionState, with cleanup hooks."""

    def __init__(self, root: Path | None = None, ttl_s: float = 6 * 3600) -> None:
        self.root = root or default_runtime_dir()
        self.ttl_s = ttl_s  # sessions idle this long are closed even if unload never fired
        self._lock = threading.Lock()
        self._sessions: dict[str, SessionState] = {}
        self._on_close: list[Callable[[str, SessionState], None]] = []
        self._last_sweep = time.monotonic()

    @property
    def kept_dir(self) -> Path:
        """Folders that outlive their session (a training run to resume), removed after ttl_s."""
        return self.root / "kept"

    def live(self) -> list[SessionState]:
        """The open sessions' states (a snapshot)."""
        with self._lock:
            return list(self._sessions.values())

    def hashes(self) -> list[str]:
        """The open sessions' keys (a snapshot)."""
        with self._lock:
            return list(self._sessions)

    def get(self, session_hash: str | None) -> SessionState:
        """The session's state, created on first use (an unguessable folder under root)."""
        key = session_hash or "anonymous"
        if time.monotonic() - self._last_sweep >= 60:  # at most once a minute, on use
            self.sweep()
        with self._lock:
            state = self._sessions.get(key)
            if state is None:
                folder = self.root / secrets.token_hex(16)
                folder.mkdir(parents=True, exist_ok=True)
                state = self._sessions[key] = SessionState(directory=folder)
            state.last_seen = time.monotonic()
            return state

    def sweep(self) -> None:
        """Close the sessions idle for longer than ttl_s, and remove the kept folders past it."""
        now = self._last_sweep = time.monotonic()
        with self._lock:
            stale = [k for k, s in self._sessions.items() if now - s.last_seen > self.ttl_s]
        for key in stale:
            log.info("closing idle session %s", key[:6])
            self.close(key)
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
        """This session's own models (trained here or uploaded)."""
        with self._lock:
            state = self._sessions.get(session_hash or "anonymous")
            return dict(state.models) if state else {}

    def on_close(self, hook: Callable[[str, SessionState], None]) -> None:
        """Register a hook run when a session ends (e.g. stop its training job)."""
        self._on_close.append(hook)

    def close(self, session_hash: str | None) -> None:
        """Run the close hooks, then delete the session's folder."""
        with self._lock:
            state = self._sessions.pop(session_hash or "anonymous", None)
        if state is None:
            return
        log.info("closing session %s", (session_hash or "anonymous")[:6])
        for hook in self._on_close:
            hook(session_hash or "anonymous", state)
        shutil.rmtree(state.directory, ignore_errors=True)


@dataclass
class AppContext:
    """Handed to every tab builder."""

    device: torch.device = field(default_factory=main_device)  # the CPU on ZeroGPU
    sessions: SessionStore = field(default_factory=SessionStore)
