"""`python -m gan.train` on a tiny synthetic folder: outputs, resume, and a subprocess run of the module."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan.explorer.model import load_generator
from gan.train.cli import main
from tests.conftest import tiny_cli

TINY = tiny_cli(sample_every=2, checkpoint_every=2)


@pytest.fixture
def folder(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "images"
    path.mkdir()
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(path / f"{i}.png")
    (path / "notes.txt").write_text("not an image")
    return path


def test_cli_trains_writes_everything_and_resumes(folder, tmp_path, capsys):
    out = tmp_path / "run"
    main(["--data", str(folder), "--out", str(out), "--steps", "4", *TINY])
    printed = capsys.readouterr().out
    assert "8 images ready" in printed and "Exported" in printed
    names = {p.name for p in out.iterdir()}
    assert {"checkpoint.safetensors", "metrics.jsonl", "samples", "loss.png", "model"} <= names
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    assert load_generator(out / "model").cfg.image_size == 32
    main(["--data", str(folder), "--out", str(out), "--resume", "--steps", "6", "--lr-d", "5e-5"])
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert "lr_d=5e-05" in capsys.readouterr().out  # the resumed run's printed config: D learns slower now
    with pytest.raises(SystemExit, match="ngf is 4 in this run"):
        main(["--data", str(folder), "--out", str(out), "--resume", "--steps", "8", "--ngf", "8"])


def test_cli_explains_bad_settings(folder, tmp_path):
    with pytest.raises(SystemExit, match="lr_d"):
        main(["--data", str(folder), "--out", str(tmp_path / "r"), "--lr-d", "3", *TINY])


@pytest.mark.slow
def test_python_dash_m_gan_train_runs(folder, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "gan.train", "--data", str(folder), "--out", str(out),
                             "--steps", "2", "--threads", "1", *TINY], capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "model" / "model.safetensors").is_file()
