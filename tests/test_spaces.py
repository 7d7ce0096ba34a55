"""Hugging Face Spaces readiness: README front matter, `app.py` under SYSTEM=spaces, the ZeroGPU decorator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import gradio
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


def front_matter() -> dict[str, str]:
    """The README's YAML front matter as flat key: value pairs (all the Space card uses here)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must start with the Space's YAML front matter"
    block = text[4:text.index("\n---\n", 4)]
    pairs = (line.split(":", 1) for line in block.splitlines() if ":" in line)
    return {key.strip(): value.strip().strip("'\"") for key, value in pairs}


def test_readme_front_matter_matches_the_installed_gradio():
    meta = front_matter()
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == gradio.__version__
    assert meta["app_file"] == "app.py" and (ROOT / meta["app_file"]).is_file()
    pinned = re.search(r"^gradio(\[[a-z,]+\])?==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert pinned and pinned.group(2) == gradio.__version__
    assert {"mcp", "oauth"} <= set((pinned.group(1) or "[]")[1:-1].split(","))  # MCP server, Sign in with HF


def test_push_to_hub_signs_in_on_a_space_with_oauth():
    """`hf_oauth: true` with a write scope: the Space signs visitors in instead of asking for a token."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[4:text.index("\n---\n", 4)]
    assert "hf_oauth: true" in block and "contribute-repos" in block


def test_zerogpu_decorator_is_a_no_op_off_zerogpu(monkeypatch):
    from common.zerogpu import gpu

    def handler(x):
        return x + 1

    monkeypatch.delenv("SYSTEM", raising=False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert gpu(duration=30)(handler) is handler
    monkeypatch.setenv("SYSTEM", "spaces")  # a CPU or dedicated-GPU Space: unchanged
    assert gpu(duration=30)(handler) is handler
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")  # ZeroGPU but no `spaces` package: still unchanged
    monkeypatch.setitem(sys.modules, "spaces", None)  # makes `import spaces` raise ImportError
    assert gpu(duration=30)(handler) is handler


@pytest.fixture
def zerogpu_space(monkeypatch):
    """A ZeroGPU Space, with a stand-in `spaces` whose GPU(duration) records what it decorates."""
    import types

    wrapped: list[tuple[str, object]] = []

    def GPU(duration):
        def decorate(fn):
            wrapped.append((fn.__name__, duration))
            return fn
        return decorate

    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=GPU))
    return wrapped


def test_on_zerogpu_the_main_process_stays_on_the_cpu(zerogpu_space):
    import torch

    from common.zerogpu import call_device, main_device
    from ui.context import AppContext

    assert main_device() == torch.device("cpu") and AppContext().device == torch.device("cpu")
    assert call_device(torch.device("cpu")) == torch.device("cuda")  # inside a decorated call


def test_on_zerogpu_only_the_style_run_asks_for_a_gpu(zerogpu_space):
    """Training must outlive any call (and a visitor's quota); Explore is faster on the CPU."""
    import torch

    from app import build_demo
    from ui.context import AppContext

    build_demo(AppContext(device=torch.device("cpu")))
    assert [name for name, _ in zerogpu_space] == ["stylize"]
    duration = zerogpu_space[0][1]  # called with the handler's arguments: gr.Request, progress, then the form
    request, progress = object(), object()
    assert duration(request, progress, iterations=120, size=256) == 30
    assert duration(request, progress, iterations=300, size=512, content=None) == 80
    assert duration(request, progress, iterations=1000, size=1024) == 300  # capped: a visitor's quota is minutes


def _wait_for_flag(path: str) -> None:
    from common.zerogpu import StopFlag

    flag, deadline = StopFlag(Path(path)), time.monotonic() + 20
    while not flag.is_set():
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.01)


def test_stop_flag_reaches_a_forked_worker(tmp_path):
    """ZeroGPU runs a decorated call in a forked process: Stop, pressed in the main process, must reach it."""
    import multiprocessing

    from common.zerogpu import StopFlag

    flag = StopFlag(tmp_path / "style.stop")
    worker = multiprocessing.get_context("fork").Process(target=_wait_for_flag, args=(str(flag.path),))
    worker.start()
    flag.set()
    worker.join(30)
    assert worker.exitcode == 0 and flag.is_set()
    flag.clear()
    assert not flag.is_set() and not flag.path.exists()
    gone = StopFlag(tmp_path / "closed-session" / "style.stop")
    gone.set()  # the session's folder is already deleted: memory only, no folder re-created
    assert gone.is_set() and not gone.path.parent.exists()


def test_runtime_dir_is_under_the_temp_dir_by_default(monkeypatch):
    from ui.context import default_runtime_dir

    monkeypatch.delenv("ATELIER_RUNTIME_DIR", raising=False)
    assert default_runtime_dir() == default_runtime_dir()  # stable: a restart finds its kept runs
    assert default_runtime_dir().is_relative_to(tempfile.gettempdir())


@pytest.mark.integration
@pytest.mark.slow
def test_app_py_starts_as_a_space(tmp_path):
    port = free_port()
    env = {**os.environ, "SYSTEM": "spaces", "GRADIO_SERVER_PORT": str(port), "ATELIER_RUNTIME_DIR": str(tmp_path),
           "GRADIO_ANALYTICS_ENABLED": "False", "ATELIER_DEVICE": "cpu", "HF_HUB_OFFLINE": "1"}
    before = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    log = tmp_path / "app.log"
    with log.open("w") as out:  # a file, not a pipe: a full pipe would block the app
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        page = ""
        for _ in range(180):  # up to 90 s on a busy 2-core machine
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    page = response.read().decode("utf-8", "replace")
                break
            except OSError:
                time.sleep(0.5)
        assert proc.poll() is None, f"app.py exited: {log.read_text()[-2000:]}"
        assert "GAN Atelier" in page
    finally:
        proc.terminate()
        proc.wait(30)
    after = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    assert after == before, "starting the app wrote into the repository"


def test_a_space_with_oauth_signs_in_and_pushes_with_the_visitors_token(monkeypatch, tmp_path):
    """With hf_oauth the Space sets OAUTH_CLIENT_ID: Sign in with Hugging Face replaces the token box, and
    the push uses the signed-in visitor's token. A local run keeps the token box."""
    from types import SimpleNamespace

    import gradio as gr
    import torch

    from app import build_tabs
    from ui import train as T
    from ui.context import AppContext, SessionStore

    def tabs():
        with gr.Blocks():
            return build_tabs(AppContext(device=torch.device("cpu"), sessions=SessionStore(root=tmp_path)))

    local = tabs().train.v.after
    assert local.login is None and local.token.visible
    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.setenv("OAUTH_CLIENT_ID", "a-space-client")
    # The Space's sign-in routes need gradio[oauth] and the Space's OAuth settings: not this test's subject.
    monkeypatch.setattr(gr.routes, "attach_oauth", lambda app: None)
    train = tabs().train
    assert isinstance(train.v.after.login, gr.LoginButton) and not train.v.after.token.visible
    pushed = {}
    monkeypatch.setattr(T, "push_folder", lambda folder, repo_id, token: pushed.update(token=token) or "ok")
    monkeypatch.setattr(train, "export", lambda request: tmp_path)
    request = SimpleNamespace(session_hash="space-visitor")
    oauth = gr.OAuthToken(token="hf_visitor", scope="contribute-repos", expires_at=0)
    train.push(request, oauth, repo_id="someone/dcgan", token="")
    assert pushed["token"] == "hf_visitor"
    train.push(request, None, repo_id="someone/dcgan", token="hf_typed")  # signed out: the typed token
    assert pushed["token"] == "hf_typed"
