"""Trainer engine: steps, losses, D-skip, label smoothing, DiffAugment, resume, NaN guard, checkpoints, export."""

from __future__ import annotations

import json
import threading

import pytest
import torch
from safetensors import safe_open

from gan.explorer.model import load_generator
from gan.train import TrainConfig, Trainer, TrainError, suggest_config
from gan.train.checkpoint import CHECKPOINT_FILE
from gan.train.diffaugment import diff_augment, parse_policy
from gan.train.health import HealthMonitor, diversity
from gan.train.losses import d_loss
from tests.conftest import tiny_train_config


def tiny(**kw) -> TrainConfig:
    return tiny_train_config(**{"steps": 6, **kw})


@pytest.fixture
def images():
    return torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _changed(before, module):
    return any(not torch.equal(b, p) for b, p in zip(before, module.parameters()))


@pytest.mark.parametrize("loss", ["bce", "hinge"])
def test_train_step_changes_parameters_and_keeps_losses_finite(loss, images):
    trainer = Trainer(tiny(loss=loss, diffaugment="color,translation,cutout"))
    g0, d0 = _params(trainer.G), _params(trainer.D)
    out = trainer.train_step(next(trainer.feed(images)))
    assert _changed(g0, trainer.G) and _changed(d0, trainer.D)
    assert all(torch.isfinite(v) for v in out.values())
    records = list(trainer.run(images))
    assert [r.step for r in records] == list(range(1, 7))
    assert all(torch.isfinite(torch.tensor([r.loss_d, r.loss_g, r.d_x, r.d_g_z])).all() for r in records)
    assert records[-1].finished == "done" and records[-1].samples.dtype == torch.uint8


def test_g_step_computes_no_gradient_for_d(images):
    trainer = Trainer(tiny())
    trainer.train_step(next(trainer.feed(images)))
    assert all(p.requires_grad for p in trainer.D.parameters())  # D is trainable again after G's step


def test_skip_d_keeps_d_fixed_but_trains_g(images):
    trainer = Trainer(tiny())
    g0, d0 = _params(trainer.G), _params(trainer.D)
    trainer.train_step(next(trainer.feed(images)), skip_d=True)
    assert _changed(g0, trainer.G) and not _changed(d0, trainer.D)


def test_skip_threshold_skips_after_d_loss_falls_below(images):
    records = list(Trainer(tiny(d_skip_threshold=2.0, sample_every=1, loss="bce")).run(images))
    assert not records[0].skipped_d  # nothing known yet at step 1
    assert all(r.skipped_d for r in records[1:])  # BCE loss ~1.4 < 2.0 afterwards


def test_one_sided_label_smoothing_keeps_a_floor_on_confident_real_logits():
    confident = torch.full((8,), 20.0)
    fake = torch.full((8,), -20.0)
    assert d_loss("bce", confident, fake, 1.0) < 1e-6
    assert d_loss("bce", confident, fake, 0.9) > 1.0  # target 0.9 penalises over-confidence on reals
    assert d_loss("hinge", confident, fake, 1.0) == 0


def test_diffaugment_shapes_ranges_and_gradients():
    x = (torch.rand(6, 3, 32, 32) * 2 - 1).requires_grad_(True)
    gen = torch.Generator().manual_seed(0)
    for policy in ("translation", "cutout", "translation,cutout"):
        y = diff_augment(x, policy, gen)
        assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1  # zero fill stays inside [-1, 1]
    y = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(0))
    z = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.isfinite(y).all() and torch.equal(y, z)
    assert y.abs().max() < 4  # brightness +-0.5, saturation x2, contrast x1.5 of [-1, 1]
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="blur"):
        parse_policy("color,blur")


def test_resume_continues_step_count_and_loss_curve(tmp_path, images):
    full = [r.loss_g for r in Trainer(tiny(steps=10)).run(images)]
    first = list(Trainer(tiny(steps=6), out_dir=tmp_path).run(images))
    resumed = Trainer.resume(tmp_path, steps=10)
    assert resumed.step == 6 and [h["step"] for h in resumed.history] == list(range(1, 7))
    rest = list(resumed.run(images))
    assert rest[0].step == 7 and rest[-1].step == 10
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(1, 11))
    assert [r.loss_g for r in first + rest] == pytest.approx(full, rel=1e-4)  # same curve as one run


def test_resume_may_change_how_it_learns_but_not_what_it_is(tmp_path, images):
    """The lesson's remedy when D wins: lower D's learning rate mid-run. Shapes and noise stay."""
    from gan.train import TrainError

    list(Trainer(tiny(steps=6), out_dir=tmp_path).run(images))
    resumed = Trainer.resume(tmp_path, steps=9, changes={"lr_d": 5e-5, "loss": "hinge", "ngf": 4})
    assert resumed.config.lr_d == 5e-5 and resumed.config.loss == "hinge" and resumed.config.steps == 9
    assert all(g["lr"] == 5e-5 for g in resumed.opt_d.param_groups)  # not the checkpoint's 2e-4
    assert all(g["lr"] == resumed.config.lr_g for g in resumed.opt_g.param_groups)
    assert list(resumed.run(images))[-1].step == 9
    with pytest.raises(TrainError, match="ngf is 4 in this run"):
        Trainer.resume(tmp_path, changes={"ngf": 8})
    with pytest.raises(TrainError, match="Unknown training setting"):
        Trainer.resume(tmp_path, changes={"learning_rate": 1e-3})
    with pytest.raises(TrainError):
        Trainer.resume(tmp_path, changes={"lr_d": 5.0})  # out of range: the config's own check


def test_resume_takes_a_checkpoint_from_another_kind_of_device(tmp_path, images, caplog):
    """A checkpoint written on CUDA carries a 16-byte generator state (and one written by an older
    CPU trainer `fused: None`); on this CPU it must resume (reseeded, with this device's optimiser
    settings: fused Adam), not crash."""
    from gan.train.checkpoint import load_checkpoint, save_checkpoint

    list(Trainer(tiny(steps=6), out_dir=tmp_path).run(images))
    state = load_checkpoint(tmp_path)
    state.rng = torch.zeros(16, dtype=torch.uint8)  # the size of a CUDA generator's state
    for opt in state.optimizers.values():
        for group in opt["param_groups"]:
            group["fused"] = None
    save_checkpoint(state, tmp_path)
    with caplog.at_level("WARNING", logger="gan.train"):
        resumed = Trainer.resume(tmp_path, steps=8)
    assert "another kind of device" in caplog.text
    assert all(g["fused"] is True for opt in (resumed.opt_g, resumed.opt_d) for g in opt.param_groups)
    rest = list(resumed.run(images))
    assert rest[-1].step == 8 and all(torch.isfinite(torch.tensor([r.loss_d, r.loss_g])).all() for r in rest)


def test_loaded_adam_moments_take_the_parameters_memory_layout():
    """On CUDA the weights are channels_last and fused Adam refuses moments of another layout;
    checkpoints hold contiguous tensors, so loading must re-lay them out like the parameters."""
    from gan.train.checkpoint import adopt_optimizer_state

    weight = torch.nn.Parameter(torch.randn(8, 4, 3, 3).contiguous(memory_format=torch.channels_last))
    opt = torch.optim.Adam([weight], lr=1e-3)
    weight.grad = torch.randn_like(weight)
    opt.step()
    saved = opt.state_dict()
    saved["state"][0] = {k: v.contiguous() for k, v in saved["state"][0].items()}  # as read from a file
    opt.load_state_dict(saved)
    assert not opt.state[weight]["exp_avg"].is_contiguous(memory_format=torch.channels_last)
    adopt_optimizer_state(opt, fused=True)
    for key in ("exp_avg", "exp_avg_sq"):
        moment = opt.state[weight][key]
        assert moment.stride() == weight.stride() and torch.equal(moment, saved["state"][0][key])
    assert opt.state[weight]["step"].device == weight.device and opt.param_groups[0]["fused"] is True
    opt.step()  # fused Adam accepts the re-laid-out state


def test_nan_guard_rolls_back_to_last_good_checkpoint(images):
    trainer = Trainer(tiny(steps=20, sample_every=1, checkpoint_every=4))
    records = []
    for rec in trainer.run(images):
        records.append(rec)
        if rec.step == 5:
            with torch.no_grad():
                next(trainer.G.parameters()).fill_(float("nan"))
    assert records[-1].finished == "nan" and "rolled back" in records[-1].warning
    assert trainer.step == 4 and records[-1].step == 4
    assert all(torch.isfinite(p).all() for p in trainer.G.parameters())
    assert [h["step"] for h in trainer.history] == [1, 2, 3, 4]


def test_stop_event_stops_and_keeps_a_checkpoint(tmp_path, images):
    stop = threading.Event()
    trainer = Trainer(tiny(steps=100, checkpoint_every=50), out_dir=tmp_path)
    for rec in trainer.run(images, stop_event=stop):
        if rec.step == 2:
            stop.set()
    assert rec.finished == "stopped" and rec.step in (2, 3) and rec.samples is not None
    assert Trainer.resume(tmp_path).step == rec.step


def test_checkpoint_is_safetensors_without_pickle(tmp_path, images):
    list(Trainer(tiny(), out_dir=tmp_path).run(images))
    path = tmp_path / CHECKPOINT_FILE
    raw = path.read_bytes()
    assert not raw.startswith(b"PK") and b"\x80\x02" not in raw[:16]  # not torch.save's zip, not a pickle
    with safe_open(str(path), framework="pt") as fh:
        keys = set(fh.keys())
        meta = fh.metadata()
    assert {"rng", "G.main.0.weight", "D.main.0.weight", "EMA.main.0.weight", "optG.0.exp_avg"} <= keys
    assert json.loads(meta["config"])["nz"] == 8 and meta["step"] == "6"


def test_export_writes_a_loadable_model_with_card(tmp_path, images):
    trainer = Trainer(tiny())
    list(trainer.run(images))
    folder = trainer.export(tmp_path / "model", data_credit="ten random images", licence="mit")
    assert {p.name for p in folder.iterdir()} >= {"config.json", "model.safetensors", "README.md", "samples.png"}
    card = (folder / "README.md").read_text()
    assert "10 images" in card and "6 steps" in card and "ten random images" in card
    G = load_generator(folder)
    assert G(torch.randn(2, 8)).shape == (2, 3, 32, 32)


def test_wrong_data_and_config_are_explained(images):
    with pytest.raises(TrainError, match="expect"):
        list(Trainer(tiny(image_size=64)).run(images))
    with pytest.raises(ValueError, match="lr_d"):
        tiny(lr_d=0.5)
    with pytest.raises(ValueError, match="loss"):
        tiny(loss="wgan")


def test_suggested_defaults_follow_data_size_and_device():
    small_cpu = suggest_config(118, "cpu")
    assert small_cpu.diffaugment and (small_cpu.ngf, small_cpu.ndf, small_cpu.batch_size) == (32, 32, 32)
    assert small_cpu.loss == "bce" and small_cpu.d_norm == "batch"  # the measured 5-minute recipe
    assert suggest_config(118, "cpu", ndf=8).ndf == 8  # a setting given wins over the suggestion
    assert suggest_config(5000, "cpu").diffaugment == ""
    assert suggest_config(118, "cuda").ngf == 64


def test_health_monitor_warns_when_d_wins_and_on_collapse():
    monitor = HealthMonitor(real_diversity=1.0, patience=3, warmup_steps=0)
    warnings = [monitor.on_losses(0.01) for _ in range(4)]
    assert warnings[:2] == [None, None] and "lower D's learning rate" in warnings[2] and warnings[3] is None
    same = torch.zeros(8, 3, 32, 32)
    assert diversity(same) == 0.0
    assert "mode collapse" in monitor.on_samples(10, diversity(same))
    assert monitor.on_samples(10, 0.9) is None


def test_cpu_runs_are_deterministic_for_a_seed(images):
    a = [r.loss_d for r in Trainer(tiny(diffaugment="color,translation,cutout")).run(images)]
    b = [r.loss_d for r in Trainer(tiny(diffaugment="color,translation,cutout")).run(images)]
    assert a == b
