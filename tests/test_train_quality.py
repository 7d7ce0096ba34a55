"""Quality metric and small-data variants: KID by hand, coverage, the feature-space collapse alarm,
the live measurement in the loop, and each variant's steps, checkpoints and resume."""

from __future__ import annotations

import json

import pytest
import torch

from gan.train import TrainConfig, Trainer
from gan.train.health import HealthMonitor
from gan.train.kid import (
    FeatureNet,
    Quality,
    QualityMeter,
    coverage,
    kid,
    mmd2_unbiased,
    polynomial_kernel,
)
from gan.train.quality import LiveQuality


def tiny(**kw) -> TrainConfig:
    base = dict(image_size=32, nz=8, ngf=4, ndf=4, batch_size=4, steps=6, sample_every=3, checkpoint_every=3,
                n_samples=4, kid_every=0, kid_samples=16, feature_net="tiny-random")
    base.update(kw)
    return TrainConfig(**base)


def blobs(n: int, seed: int, size: int = 32) -> torch.Tensor:
    """n smooth random colour images (uint8): a stand-in training set with real variety."""
    gen = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, 4, 4, generator=gen)
    return torch.nn.functional.interpolate(small, size=size, mode="bicubic").clamp(0, 1).mul(255).to(torch.uint8)


@pytest.fixture
def images():
    return blobs(24, seed=1)


def test_kid_matches_a_hand_computed_value():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 2.0]])
    # k(a, b) = (a.b / 2 + 1)^3. Off-diagonal k_xx: dots 0, 1, 1 -> 1, 3.375, 3.375 (each pair twice) / 6;
    # k_yy: dots 0, 0, 2 -> 1, 1, 8 (twice) / 6; k_xy, all 9: dots 0 1 2 / 0 0 2 / 0 1 4 -> sum 53.75, / 9.
    expected = 15.5 / 6 + 20 / 6 - 2 * 53.75 / 9
    assert polynomial_kernel(x, y)[2, 2] == pytest.approx(27.0)
    assert mmd2_unbiased(x.double(), y.double()) == pytest.approx(expected, rel=1e-12)
    mean, std = kid(x, y, subsets=5, subset_size=100)  # subsets of all 3 rows: every estimate is the same
    assert mean == pytest.approx(expected, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_kid_is_near_zero_for_one_distribution_and_large_for_two():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 16, generator=gen), torch.randn(300, 16, generator=gen)
    same, _ = kid(a, b)
    shifted, _ = kid(a, b + 1.0)
    assert abs(same) < 0.02 and shifted > 0.5


def test_coverage_matches_a_hand_computed_value():
    real = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    # k = 1: every real point's ball has radius 1; a fake at 0.5 lies in the balls of 0 and 1 only
    assert coverage(real, torch.tensor([[0.5]]), k=1) == pytest.approx(2 / 6)
    assert coverage(real, torch.tensor([[1.0], [11.0]]), k=1) == pytest.approx(1.0)
    assert coverage(real, real, k=1) == 1.0


def _meter(data: torch.Tensor) -> QualityMeter:
    from common.backbones import load_backbone

    return QualityMeter(FeatureNet(load_backbone("tiny-random")), data.float().mul(2 / 255).sub(1))


def test_collapse_alarm_fires_on_a_constant_generator_and_not_on_the_training_set():
    data = blobs(60, seed=2)
    live = LiveQuality(tiny(kid_samples=64), torch.device("cpu"), data)
    live.meter = _meter(data)
    constant = data[:1].float().mul(2 / 255).sub(1)
    collapsed = live.measure(lambda z: constant.expand(z.shape[0], -1, -1, -1), step=500)
    itself = live.measure(lambda z: data[: z.shape[0]].float().mul(2 / 255).sub(1), step=500)
    held_out = live.meter.measure(blobs(64, seed=3).float().mul(2 / 255).sub(1))  # new images, same kind
    floor = 0.5 * live.meter.real_coverage  # the alarm's threshold
    assert collapsed.coverage < floor < held_out.coverage <= itself.coverage
    assert collapsed.kid > held_out.kid > itself.kid - 1.0
    monitor = HealthMonitor(real_diversity=1.0, warmup_steps=300)
    assert monitor.on_quality(100, collapsed) is None  # too early: every run starts collapsed
    assert "mode collapse" in monitor.on_quality(500, collapsed)
    assert monitor.on_quality(600, collapsed) is None  # once per episode
    assert HealthMonitor(1.0).on_quality(500, itself) is None
    assert HealthMonitor(1.0).on_quality(500, held_out) is None


def test_the_loop_measures_on_its_grid_and_writes_metrics_and_card(tmp_path, images):
    trainer = Trainer(tiny(steps=7, kid_every=3, kid_budget=1.0), out_dir=tmp_path)
    records = list(trainer.run(images))
    measured = [r.step for r in records if r.quality is not None]
    assert measured == [3, 6, 7]  # the grid, then the final weights (a run that measured before)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "kid" in x] == [3, 6, 7]
    assert set(Quality.KEYS) <= set(lines[2]) and "kid" not in lines[0]
    assert all(x["kid"] == x["kid"] and 0 <= x["coverage"] <= 1 for x in lines if "kid" in x)
    card = (trainer.export(tmp_path / "model") / "README.md").read_text()
    assert f"At step 7: **KID x 1000 = {lines[-1]['kid']:.1f}**" in card


def test_measuring_waits_when_over_its_time_budget(images):
    records = list(Trainer(tiny(steps=6, kid_every=2, kid_budget=0.0)).run(images))
    assert [r.step for r in records if r.quality is not None] == [2, 6]  # the first, then the end only


def test_no_measurement_when_off_or_before_the_first_grid_step(tmp_path, images):
    assert not any(r.quality for r in Trainer(tiny(kid_every=0)).run(images))
    assert not any(r.quality for r in Trainer(tiny(kid_every=100)).run(images))
    trainer = Trainer(tiny(kid_every=0))
    list(trainer.run(images))
    assert "No quality measurement" in (trainer.export(tmp_path / "m") / "README.md").read_text()


VARIANTS = [dict(loss="hinge", d_norm="spectral"), dict(g_arch="sle"), dict(d_arch="projected", loss="hinge"),
            dict(lr_g=1e-4, lr_d=4e-4)]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={v}" for k, v in v.items()))
def test_each_variant_trains_with_finite_losses_and_resumes_exactly(variant, tmp_path, images):
    full = [r.loss_g for r in Trainer(tiny(steps=6, **variant)).run(images)]
    assert all(torch.isfinite(torch.tensor(full)))
    first = list(Trainer(tiny(steps=4, **variant), out_dir=tmp_path).run(images))
    resumed = Trainer.resume(tmp_path, steps=6)
    assert resumed.config.to_dict() == tiny(steps=6, **variant).to_dict()
    rest = list(resumed.run(images))
    assert [r.loss_g for r in first + rest] == pytest.approx(full, rel=1e-4)


def test_variant_networks_have_their_parts():
    from torch.nn.utils import parametrize

    from gan.train.variants import build_networks

    g, d = build_networks(tiny(d_norm="spectral"))
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(parametrize.is_parametrized(m, "weight") for m in convs)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    g, d = build_networks(tiny(g_arch="sle", d_arch="projected"))
    assert g.cfg.arch == "sle" and len(g.excite) == 1  # 32 px: 4x4 gates 16x16
    assert g(torch.randn(2, 8)).shape == (2, 3, 32, 32)
    assert d(torch.rand(2, 3, 32, 32) * 2 - 1).shape == (2,)
    assert not any(k.startswith("extractor") for k in d.state_dict())  # the frozen backbone is not saved
    trainable = [n for n, p in d.named_parameters()]
    assert trainable and all(n.startswith("heads.") for n in trainable)


def test_variant_settings_are_validated():
    for field in ("g_arch", "d_arch", "d_norm", "feature_net"):
        with pytest.raises(ValueError, match=field):
            tiny(**{field: "nonsense"})


def test_an_exported_sle_generator_loads_like_any_other(tmp_path, images):
    from gan.explorer.model import load_generator

    trainer = Trainer(tiny(g_arch="sle", steps=2))
    list(trainer.run(images))
    folder = trainer.export(tmp_path / "model")
    assert json.loads((folder / "config.json").read_text())["arch"] == "sle"
    loaded = load_generator(folder)
    z = torch.randn(3, 8)
    torch.testing.assert_close(loaded(z), trainer.ema.to("cpu").eval()(z))
