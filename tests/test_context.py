"""Per-session state: isolation, unguessable folders, close hooks, idle expiry, the grace period after unload."""

from __future__ import annotations

import threading

from tests.conftest import FakeClock
from ui.context import SessionStore


def test_sessions_are_isolated_and_cleaned(tmp_path):
    store = SessionStore(root=tmp_path)
    a, b = store.get("a"), store.get("b")
    assert a.directory != b.directory and a.directory.parent == tmp_path
    assert len(a.directory.name) == 32  # 128 random bits, not derived from the session hash
    store.add_model("a", "mine", tmp_path / "model")
    assert store.models("a") == {"mine": tmp_path / "model"} and store.models("b") == {}
    closed = []
    store.on_close(lambda key, state: closed.append(key))
    (a.directory / "upload.png").write_bytes(b"x")
    store.close("a")
    assert closed == ["a"] and not a.directory.exists() and b.directory.exists()


def test_idle_sessions_expire(tmp_path):
    store = SessionStore(root=tmp_path, ttl_s=0)
    old = store.get("old")
    store.get("new")
    store.sweep()  # what a visit does at most once a minute
    assert not old.directory.exists() and store.models("old") == {}


def test_an_unloaded_session_closes_after_its_grace_period_unless_it_is_used_again(tmp_path):
    clock = FakeClock()
    store = SessionStore(root=tmp_path, grace_s=120, clock=clock, reaper=False)
    closed = []
    store.on_close(lambda key, state: closed.append(key))
    gone, back = store.get("gone"), store.get("back")
    store.unload("gone")
    store.unload("back")  # both pages went away (Gradio's unload: a closed tab, or a dropped heartbeat)
    assert set(store.leaving()) == {"gone", "back"}
    clock.advance(119)
    assert store.reap() == [] and closed == []  # not at once: a live client may still call
    assert store.get("back") is back  # ... and this one's client calls again
    clock.advance(2)
    assert store.reap() == ["gone"] and closed == ["gone"]
    assert not gone.directory.exists() and store.models("gone") == {}
    assert back.directory.exists() and store.hashes() == ["back"] and store.leaving() == {}
    clock.advance(10_000)
    store.reap()
    assert closed == ["gone"]  # a session that came back is not closed by its old unload
    store.unload("back")  # a later unload is honoured, by the idle sweep too
    clock.advance(121)
    store.sweep()
    assert closed == ["gone", "back"] and not back.directory.exists()


def test_the_reaper_thread_closes_an_unloaded_session_by_itself(tmp_path):
    """Nobody else may visit: the store's own thread closes the session when its grace ends."""
    store = SessionStore(root=tmp_path, grace_s=0)
    closed = threading.Event()
    store.on_close(lambda key, state: closed.set())
    store.get("tab")
    store.unload("tab")
    assert closed.wait(timeout=60)  # a bound for a loaded machine, not a timing: it happens at once
    assert store.hashes() == [] and store.leaving() == {}


def test_asking_for_a_sessions_models_is_using_it(tmp_path):
    """A visitor who only uses Explore with an uploaded model keeps it: the pickers' calls count as use."""
    clock = FakeClock()
    store = SessionStore(root=tmp_path, ttl_s=3600, grace_s=120, clock=clock, reaper=False)
    store.add_model("explorer", "mine", tmp_path / "model")
    for _ in range(4):  # two hours of Explore calls that only list and load models
        clock.advance(1800)
        assert store.models("explorer") == {"mine": tmp_path / "model"}
    store.sweep()
    assert store.models("explorer") == {"mine": tmp_path / "model"}  # not closed as idle
    store.unload("explorer")
    store.models("explorer")  # a call after an unload brings the session back
    clock.advance(121)
    assert store.reap() == [] and store.leaving() == {}
