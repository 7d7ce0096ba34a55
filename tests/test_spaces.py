"""Hugging Face Spaces readiness: README front matter, `app.py` under SYSTEM=spaces, the ZeroGPU decorator."""

from __future__ import annotations

import os
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
    assert f"gradio=={gradio.__version__}" in (ROOT / "requirements.txt").read_text()


def test_zerogpu_decorator_is_a_no_op_off_spaces(monkeypatch):
    from common.zerogpu import gpu

    def handler(x):
        return x + 1

    monkeypatch.delenv("SYSTEM", raising=False)
    assert gpu(duration=30)(handler) is handler
    monkeypatch.setenv("SYSTEM", "spaces")  # on a Space without the `spaces` package: still unchanged
    monkeypatch.setitem(sys.modules, "spaces", None)  # makes `import spaces` raise ImportError
    assert gpu(duration=30)(handler) is handler


def test_zerogpu_decorator_uses_spaces_gpu_on_spaces(monkeypatch):
    import types

    from common.zerogpu import gpu

    calls = []
    fake = types.SimpleNamespace(GPU=lambda duration: (calls.append(duration), lambda fn: ("wrapped", fn))[1])
    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.setitem(sys.modules, "spaces", fake)
    assert gpu(duration=45)(print) == ("wrapped", print) and calls == [45]


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
