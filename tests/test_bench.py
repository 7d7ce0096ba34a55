"""The benchmark harness itself (not timings): ratios, the per-benchmark timeout, skipped rows, the GPU-box pack."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import torch

import bench.__main__ as suite
from bench import cold_start, device_pack, explore_latency


def test_ratio_reads_above_one_when_ours_is_better():
    assert suite.normalise_ratio({"ours": 200.0, "reference": 100.0, "unit": "images/s"})["ratio"] == 2.0
    assert suite.normalise_ratio({"ours": 2.0, "reference": 8.0, "unit": "s"})["ratio"] == 4.0
    assert "ratio" not in suite.normalise_ratio({"ours": None, "reference": 1.0, "unit": "s"})


def test_a_benchmark_past_its_time_is_stopped_with_its_children():
    code = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], process_group=0)
    started = time.monotonic()
    exit_code, _, timed_out = suite.wait_for_child(proc, 1.0)
    assert timed_out and exit_code != 0 and time.monotonic() - started < 10
    deadline = time.monotonic() + 10  # SIGKILL is delivered asynchronously
    while _running_in_group(proc.pid):
        assert time.monotonic() < deadline, "the grandchild outlived its benchmark"
        time.sleep(0.05)


def _running_in_group(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group: a container's PID 1 may never reap orphans."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields after the name: state, ppid, pgrp
            live.append(int(stat.parent.name))
    return live


def test_rows_that_need_gradio_say_so_where_it_is_missing(monkeypatch):
    monkeypatch.setattr(cold_start, "has_module", lambda name: False)
    [row] = cold_start.run(quick=True)
    assert "skipped" in row["note"] and "gradio" in row["note"] and "ours" not in row
    monkeypatch.setattr(explore_latency, "has_module", lambda name: False)
    monkeypatch.setattr(explore_latency, "engine_rows", lambda n, threads, device: [])
    rows = explore_latency.run(quick=True)
    assert rows and all("skipped" in r["note"] for r in rows)


def test_device_pack_halves_vgg_and_stays_loadable(tmp_path, monkeypatch):
    """The pack for a bare GPU box: VGG16 in float16 (half the bytes), stamped, loaded as float32."""
    from safetensors.torch import load_file

    from common.backbones import build_vgg16_hed
    from weights.fetch import ensure, model_dir, status

    source = ensure("vgg16-hed") / "model.safetensors"
    original = load_file(str(source))
    device_pack.pack_model("vgg16-hed", tmp_path, halve=True)
    packed = tmp_path / "vgg16-hed" / "model.safetensors"
    assert packed.stat().st_size < 0.55 * source.stat().st_size
    monkeypatch.setenv("ATELIER_WEIGHTS_DIR", str(tmp_path))
    assert model_dir("vgg16-hed") == tmp_path / "vgg16-hed" and status("vgg16-hed") == "ready"
    net = build_vgg16_hed("max")  # strict: every conv layer found, with the right shape
    first = net.conv_modules()[1].weight
    assert first.dtype == torch.float32
    torch.testing.assert_close(first, original["features.2.weight"], rtol=1e-3, atol=1e-4)
