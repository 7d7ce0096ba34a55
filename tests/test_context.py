"""Per-session state: isolation, unguessable folders, close hooks, idle expiry."""

from __future__ import annotations

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
