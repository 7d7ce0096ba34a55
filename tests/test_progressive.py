"""Progressive growing: the schedule, the fade-in wiring, live records, exact resume mid-fade, export."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from gan.explorer import zoo
from gan.explorer.latent import DirectionConfig
from gan.explorer.model import DCGANConfig, load_generator
from gan.train import TrainConfig, Trainer, TrainError, measure_step_seconds
from gan.train.progressive import GrowingDiscriminator, GrowingGenerator, Growth, Stage


def growing(**kw) -> TrainConfig:
    """32 px grown from 8 px: 8 (3 steps), fade to 16 (2), 16 (3), fade to 32 (2), then 32 px."""
    base = dict(image_size=32, nz=8, ngf=4, ndf=4, batch_size=4, steps=12, sample_every=3, checkpoint_every=3,
                n_samples=4, grow_from=8, grow_phase_steps=3, grow_fade_steps=2)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def images():
    return torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def test_schedule_phases_then_fades_then_stays_at_full_size():
    growth = Growth(32, 8, 3, 2)
    stages = [growth.stage_at(i) for i in range(12)]
    assert [s.resolution for s in stages] == [8, 8, 8, 16, 16, 16, 16, 16, 32, 32, 32, 32]
    assert [s.alpha for s in stages] == [1, 1, 1, 0.5, 1, 1, 1, 1, 0.5, 1, 1, 1]
    assert growth.end == 10 and growing().growth_end == 10
    assert [growth.since_fade(i) for i in range(12)] == [0, 1, 2, 0, 1, 2, 3, 4, 0, 1, 2, 3]


def test_records_change_resolution_at_the_scheduled_steps(images):
    records = list(Trainer(growing()).run(images))
    assert [(r.step, r.resolution, r.fade_in) for r in records] == [
        (1, 8, 1.0), (2, 8, 1.0), (3, 8, 1.0), (4, 16, 0.5), (5, 16, 1.0), (6, 16, 1.0), (7, 16, 1.0),
        (8, 16, 1.0), (9, 32, 0.5), (10, 32, 1.0), (11, 32, 1.0), (12, 32, 1.0)]
    assert all(torch.isfinite(torch.tensor([r.loss_d, r.loss_g, r.d_x, r.d_g_z])).all() for r in records)
    assert all(r.samples.shape == records[-1].samples.shape for r in records if r.samples is not None)


def test_plain_runs_report_full_size_and_keep_their_metrics_lines(images):
    rec = list(Trainer(growing(grow_from=0, steps=2)).run(images))[-1]
    assert (rec.resolution, rec.fade_in, rec.growing) == (32, 1.0, False)
    assert set(rec.metrics()) == {"step", "loss_d", "loss_g", "d_x", "d_g_z", "skipped_d", "images_per_s"}
    grown = list(Trainer(growing()).run(images))[3]
    assert grown.metrics()["resolution"] == 16 and grown.metrics()["fade_in"] == 0.5


def test_alpha_zero_is_exactly_the_previous_stage():
    """The fade starts where the lower resolution left off: G's output upsampled, D reading the pooled image."""
    torch.manual_seed(0)
    cfg = DCGANConfig(image_size=32, nz=8, ngf=4, ndf=4)
    G, D = GrowingGenerator(cfg, 8), GrowingDiscriminator(cfg, 8)
    z, x = torch.randn(4, 8), torch.randn(4, 3, 16, 16)
    G.set_stage(Stage(8))
    D.set_stage(Stage(8))
    old_g, old_d = G(z), D(F.avg_pool2d(x, 2))
    G.set_stage(Stage(16, 0.0))
    D.set_stage(Stage(16, 0.0))
    assert torch.allclose(G(z), F.interpolate(old_g, scale_factor=2, mode="nearest"), atol=1e-6)
    assert torch.allclose(D(x), old_d, atol=1e-6)
    G.set_stage(Stage(32))
    assert G(z).shape == (4, 3, 32, 32)


def test_checkpoint_resumes_mid_fade_exactly(tmp_path, images):
    records = Trainer(growing(diffaugment="color,translation,cutout")).run(images)
    full = [x for r in records for x in (r.loss_d, r.loss_g)]
    first = list(Trainer(growing(diffaugment="color,translation,cutout", steps=12), out_dir=tmp_path)
                 .run(images, stop_event=_stop_after(9)))
    assert first[-1].step == 9 and first[-1].fade_in == 0.5  # stopped inside the fade to 32 px
    resumed = Trainer.resume(tmp_path)
    rest = list(resumed.run(images))
    assert [r.step for r in rest] == [10, 11, 12]
    by_step = {r.step: (r.loss_d, r.loss_g) for r in first + rest}  # a stop repeats its last step's record
    assert [x for step in range(1, 13) for x in by_step[step]] == pytest.approx(full, rel=1e-5)


def _stop_after(step: int):
    """A stop event that a generator-side check sees as set once `step` steps have run."""
    class Stop:
        def __init__(self):
            self.calls = 0

        def is_set(self):
            self.calls += 1  # run() asks once before each step and once after it
            return self.calls > 2 * step

    return Stop()


def test_hinge_and_diffaugment_run_with_finite_losses_while_growing(images):
    records = list(Trainer(growing(loss="hinge", diffaugment="color,translation,cutout", steps=10)).run(images))
    assert all(torch.isfinite(torch.tensor([r.loss_d, r.loss_g])).all() for r in records)


def test_early_samples_are_upscaled_blocks(images):
    trainer = Trainer(growing(steps=12))
    for rec in trainer.run(images):
        if rec.step == 3:
            break
    samples = trainer.sample()  # 8 px images shown at 32 px: constant 4x4 blocks
    assert samples.shape == (4, 3, 32, 32)
    assert torch.equal(samples, F.interpolate(samples[..., ::4, ::4], scale_factor=4, mode="nearest"))


def test_grown_export_is_the_plain_generator_that_the_zoo_loads(tmp_path, images):
    trainer = Trainer(growing())
    list(trainer.run(images))
    folder = trainer.export(tmp_path / "model")
    assert json.loads((folder / "config.json").read_text())["image_size"] == 32
    loaded = zoo.load(folder, "cpu", DirectionConfig(n_samples=128, k=4))  # strict keys, no side layers
    z = torch.randn(3, 8)
    trainer.ema.set_stage(Stage(32))
    with torch.inference_mode():
        assert torch.allclose(loaded.G(z), trainer.ema(z), atol=1e-6)


def test_a_run_stopped_early_exports_the_resolution_it_reached(tmp_path, images):
    config = growing(image_size=64, grow_from=8, steps=15)  # 8 -> 16 -> 32 (from step 11) -> 64
    trainer = Trainer(config)
    big = torch.randint(0, 256, (10, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    list(trainer.run(big, stop_event=_stop_after(12)))
    assert trainer.stage(trainer.step - 1) == Stage(32)
    G = load_generator(trainer.export(tmp_path / "model"))
    assert G.cfg == DCGANConfig(image_size=32, nz=8, ngf=8, ndf=4)  # ngf doubled: the same channel counts
    z = torch.randn(3, 8)
    trainer.ema.set_stage(Stage(32))
    with torch.inference_mode():
        assert torch.allclose(G(z), trainer.ema(z), atol=1e-6)


def test_export_below_the_smallest_model_size_is_explained(tmp_path, images):
    trainer = Trainer(growing())
    list(trainer.run(images, stop_event=_stop_after(2)))
    with pytest.raises(TrainError, match=r"8 px.*step 10"):
        trainer.export(tmp_path / "model")


def test_growth_settings_are_validated():
    with pytest.raises(ValueError, match=r"grow_from must be 0 .* 8, 16"):
        growing(grow_from=32)
    with pytest.raises(ValueError, match="reaches 32 px at step 10: steps must be at least that"):
        growing(steps=9)
    with pytest.raises(ValueError, match="grow_fade_steps"):
        growing(grow_fade_steps=0)


def test_the_estimate_and_eta_count_cheaper_low_resolution_steps(images):
    trainer = Trainer(growing(image_size=64, grow_from=8, steps=20))
    assert trainer.work(0, 5) < trainer.work(15, 20) == 5.0  # the first 5 steps run at 8 and 16 px
    assert 0 < measure_step_seconds(growing(), steps=1)
