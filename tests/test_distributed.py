"""DDP on CPU (2 gloo processes on loopback) and the streaming loader over tiny tar shards.

The spawned-process tests are marked slow (the whole suite runs them; `make test-fast` does not).

The spawned ranks train a tiny DCGAN on a synthetic uint8 set, each with its own candidate output
folder (only rank 0 may create it), and dump G, D and EMA state for the test to compare.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image
from safetensors.torch import load_file, save_file

from gan.ingest.data import IngestConfig
from gan.ingest.streaming import Shard, ShardStream, find_shards, make_loader, read_tar
from gan.train import TrainConfig, Trainer
from gan.train.checkpoint import read_config
from gan.train.distributed import DDPHook, DistEnv, ShardSampler, no_forward_buffer_sync, parallel_hook, setup, teardown
from tests.conftest import TINY_TRAIN, free_port, tiny_cli

# DCGAN's recipe (BCE, batch norm in D): the D-skip threshold below is set for BCE losses
TINY = {**TINY_TRAIN, "batch_size": 8, "d_skip_threshold": 2.0, "diffaugment": "color,translation", "ema_decay": 0.9,
        "loss": "bce", "d_norm": "batch"}



def _images(n: int = 12) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).integers(0, 256, (n, 3, 32, 32), dtype=np.uint8))


def _rank_main(rank: int, world: int, port: int, root: str, steps: int) -> None:
    """One spawned rank: join gloo on loopback, train, dump every module's state for the test."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    env = DistEnv(rank=rank, local_rank=rank, world_size=world)
    setup(env, torch.device("cpu"))
    try:
        hook = DDPHook(env, torch.device("cpu"))
        config = TrainConfig(steps=steps, **TINY, kid_every=3, kid_samples=16, feature_net="tiny-random")
        trainer = Trainer(config, out_dir=Path(root) / f"out{rank}", parallel=hook)
        records = list(trainer.run(_images()))
        (Path(root) / f"quality{rank}.json").write_text(json.dumps([r.step for r in records if r.quality]))
        modules = (("G", trainer.G), ("D", trainer.D), ("EMA", trainer.ema))
        state = {f"{name}.{k}": v.detach().contiguous().clone()  # channels_last weights: safetensors wants row-major
                 for name, m in modules for k, v in m.state_dict().items()}
        save_file(state, str(Path(root) / f"state{rank}.safetensors"))
        (Path(root) / f"steps{rank}.json").write_text(json.dumps([r.step for r in records]))
    finally:
        teardown()


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    mp.spawn(_rank_main, args=(2, free_port(), str(root), 6), nprocs=2, join=True)
    return root


@pytest.mark.slow
def test_ranks_stay_identical(two_rank_run):
    a, b = (load_file(str(two_rank_run / f"state{r}.safetensors")) for r in (0, 1))
    params = [k for k in a if not k.startswith(("G.", "D.")) or ("running" not in k and "num_batches" not in k)]
    assert any(k.startswith("EMA.") for k in params) and any(k.startswith("D.") for k in params)
    for key in params:  # D's/G's BN running stats are per rank (unused in training); all the rest must match
        assert torch.equal(a[key], b[key]), key
    steps0, steps1 = (json.loads((two_rank_run / f"steps{r}.json").read_text()) for r in (0, 1))
    assert steps0 == steps1


@pytest.mark.slow
def test_weights_moved_from_init(two_rank_run):
    a = load_file(str(two_rank_run / "state0.safetensors"))
    init = Trainer(TrainConfig(steps=6, **TINY))
    for name, module in (("G", init.G), ("D", init.D)):
        weights = {k: v for k, v in module.state_dict().items() if k.endswith("weight")}
        assert any(not torch.equal(a[f"{name}.{k}"], v) for k, v in weights.items()), name


@pytest.mark.slow
def test_only_rank_zero_writes(two_rank_run):
    assert not (two_rank_run / "out1").exists()
    names = {p.name for p in (two_rank_run / "out0").iterdir()}
    assert {"checkpoint.safetensors", "metrics.jsonl", "samples"} <= names
    lines = [json.loads(line) for line in (two_rank_run / "out0" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines] == [1, 2, 3, 4, 5, 6]
    # D-skip (threshold 2.0 > any BCE loss here) starts after the first rank-averaged record, on every rank alike
    assert [m["skipped_d"] for m in lines] == [False] * 3 + [True] * 3


@pytest.mark.slow
def test_only_rank_zero_measures_quality(two_rank_run):
    measured = [json.loads((two_rank_run / f"quality{r}.json").read_text()) for r in (0, 1)]
    assert measured == [[3, 6], []]  # the main rank alone, on the KID grid; the other ranks never wait for it
    lines = [json.loads(line) for line in (two_rank_run / "out0" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in lines if "kid" in m] == [3, 6]


@pytest.mark.slow
def test_two_rank_checkpoint_resumes_on_one(two_rank_run, tmp_path):
    out = tmp_path / "one"  # a folder that does not exist yet
    trainer = Trainer.resume(two_rank_run / "out0", steps=8, out_dir=out, changes={"lr_d": 1e-4})
    assert trainer.step == 6 and trainer.opt_d.param_groups[0]["lr"] == 1e-4
    records = list(trainer.run(_images()))
    assert [r.step for r in records][-1] == 8 and records[-1].finished == "done"
    assert _metric_steps(out) == list(range(1, 9))


def test_shard_sampler_covers_each_epoch_once():
    seen = []
    for rank in (0, 1):
        sampler = ShardSampler(10, DistEnv(rank, rank, 2), batch=5, seed=3, device=torch.device("cpu"))
        seen += sampler.next().tolist()
    assert sorted(seen) == list(range(10))
    resumed = ShardSampler(10, DistEnv(0, 0, 2), batch=2, seed=3, device=torch.device("cpu"))
    fresh = ShardSampler(10, DistEnv(0, 0, 2), batch=2, seed=3, device=torch.device("cpu"))
    resumed.start_at(4)
    for _ in range(4):
        fresh.next()
    assert torch.equal(resumed.next(), fresh.next())


def test_buffer_sync_option_matches_this_torch():
    """torch >= 2.13 names it forward_sync_buffers (and warns on the old name); older ones refuse the new name."""

    class OldDDP:
        def __init__(self, module, device_ids=None, broadcast_buffers=True, gradient_as_bucket_view=False):
            pass

    assert no_forward_buffer_sync(OldDDP) == {"broadcast_buffers": False}
    OldDDP(None, **no_forward_buffer_sync(OldDDP))  # accepted by the old signature
    assert no_forward_buffer_sync(torch.nn.parallel.DistributedDataParallel) == {"forward_sync_buffers": False}


def test_global_batch_must_divide():
    hook = DDPHook(DistEnv(0, 0, 2), torch.device("cpu"))  # no process group needed to refuse
    with pytest.raises(ValueError, match="divide evenly"):
        Trainer(TrainConfig(steps=1, **{**TINY, "batch_size": 7}), parallel=hook)


def test_one_process_runs_the_plain_trainer():
    assert parallel_hook(DistEnv(), torch.device("cpu")) is None
    with pytest.raises(ValueError, match="SyncBatchNorm needs CUDA"):
        DDPHook(DistEnv(0, 0, 2), torch.device("cpu"), sync_bn=True)


# ---- streaming ---------------------------------------------------------------------------------

def _png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _add(tf: tarfile.TarFile, name: str, data: bytes = b"", **kw) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in kw.items():
        setattr(info, key, value)
    tf.addfile(info, io.BytesIO(data) if data else None)


@pytest.fixture
def shards(tmp_path) -> Path:
    folder = tmp_path / "shards"
    folder.mkdir()
    for s in range(3):
        with tarfile.open(folder / f"shard-{s:03d}.tar", "w") as tf:
            for i in range(4):
                _add(tf, f"{s}{i:04d}.png", _png(10 * s + i))
                _add(tf, f"{s}{i:04d}.cls", b"1")  # a WebDataset side file: ignored
            if s == 0:
                _add(tf, "../evil.png", _png(99))
                _add(tf, "link.png", type=tarfile.SYMTYPE, linkname="/etc/passwd")
                _add(tf, "notes.png", b"just some text, not an image at all\n" * 4)
    return folder


def test_tar_members_are_checked(shards):
    got = dict(read_tar(shards / "shard-000.tar", IngestConfig(image_size=32)))
    reasons = {name: getattr(item, "reason", None) for name, item in got.items()}
    assert reasons["../evil.png"] == "path escapes the archive"
    assert reasons["link.png"] == "link refused"
    assert "not an image" in reasons["notes.png"]
    good = [v for v in got.values() if isinstance(v, torch.Tensor)]
    assert len(good) == 4 and all(t.shape == (3, 32, 32) and t.dtype == torch.uint8 for t in good)
    assert not any(name.endswith(".cls") for name in got)


def test_each_rank_and_worker_reads_its_own_shards(shards):
    found = find_shards([shards])
    assert len(found) == 3 and all(isinstance(s, Shard) and s.tar for s in found)
    r0, r1 = (ShardStream(found, IngestConfig(image_size=32), rank=r, world_size=2) for r in (0, 1))
    assert r0.mine(0, 1) == [found[0], found[2]] and r1.mine(0, 1) == [found[1]]
    assert r0.mine(0, 2) == [found[0]] and r0.mine(1, 2) == [found[2]]


def test_stream_loader_batches_with_workers(shards):
    loader = make_loader(find_shards([shards]), IngestConfig(image_size=32), batch_size=3, workers=2)
    it = iter(loader)
    batches = [next(it) for _ in range(6)]  # 18 images from 12: runs on into the next epoch
    assert all(b.shape == (3, 3, 32, 32) and b.dtype == torch.uint8 for b in batches)


# ---- the command line: torchrun, resume on one process, --stream -----------------------------------

CLI_TINY = [*tiny_cli(sample_every=2, checkpoint_every=2), "--threads", "1"]


def _metric_steps(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_torchrun_cli_then_resume_on_one_process(tmp_path):
    import subprocess
    import sys

    from gan.explorer.model import load_generator
    from gan.train.cli import main

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(8):
        (folder / f"{i}.png").write_bytes(_png(i))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", "-m", "gan.train", "--data", str(folder), "--out", str(out),
           "--steps", "4", *CLI_TINY]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[1], env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Exported") == 1  # rank 0 alone exports and prints
    assert _metric_steps(out) == [1, 2, 3, 4]
    main(["--data", str(folder), "--out", str(out), "--resume", "--steps", "6", "--threads", "1"])
    assert _metric_steps(out) == [1, 2, 3, 4, 5, 6]
    assert load_generator(out / "model", "cpu").cfg.image_size == 32


def test_stream_cli(shards, tmp_path, capsys):
    from gan.explorer.model import load_generator
    from gan.train.cli import main

    out = tmp_path / "run"
    main(["--data", str(shards), "--out", str(out), "--stream", "--workers", "2", "--steps", "4", *CLI_TINY])
    assert _metric_steps(out) == [1, 2, 3, 4]
    assert load_generator(out / "model", "cpu").cfg.image_size == 32
    # 12 good images + notes.png (a text file: found out only when read); the unsafe members are not counted
    assert "**13 images**" in (out / "model" / "README.md").read_text()


def test_stream_resume_takes_changed_settings_and_refuses_new_shapes(shards, tmp_path):
    from gan.train.cli import main

    out = tmp_path / "run"
    stream = ["--data", str(shards), "--out", str(out), "--stream", "--workers", "0"]
    main([*stream, "--steps", "2", *CLI_TINY])
    assert read_config(out)["lr_d"] != 1e-4
    main([*stream, "--resume", "--steps", "4", "--lr-d", "1e-4", "--loss", "hinge", "--threads", "1"])
    saved = read_config(out)  # the checkpoint written at the resumed run's end
    assert (saved["lr_d"], saved["loss"], saved["steps"]) == (1e-4, "hinge", 4)
    assert _metric_steps(out) == [1, 2, 3, 4]
    with pytest.raises(SystemExit, match="ngf is 4 in this run"):
        main([*stream, "--resume", "--steps", "6", "--ngf", "8"])
