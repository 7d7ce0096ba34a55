"""Train's live panel without a server: KID and coverage plots from the measured steps, progressive growing's
resolution and fade-in in the progress line, the quality line and the feature-space collapse warning."""

from __future__ import annotations

import gradio as gr
import pytest

from gan.train.health import FEATURE_COLLAPSE_ADVICE
from gan.train.metrics import TrainStep
from ui.train_jobs import JobView
from ui.train_view import build_view, frames, show_job


def history(steps: int = 1000, every: int = 250) -> list[dict]:
    lines = [{"step": s, "loss_d": 1.0, "loss_g": 2.0, "d_x": 0.6, "d_g_z": 0.4} for s in range(1, steps + 1)]
    for line in lines[every - 1 :: every]:
        line.update(kid=3000.0 / line["step"], kid_std=1.0, coverage=line["step"] / 2000, real_coverage=0.9, kid_s=2.0)
    return lines


@pytest.fixture(scope="module")
def view():
    with gr.Blocks():
        return build_view(sign_in=False)


def test_kid_and_coverage_come_from_every_measured_step_even_when_the_losses_are_thinned():
    plots = frames(history())
    assert len(plots["loss"]) < 2 * 1000  # thinned to MAX_POINTS steps per series
    assert plots["kid"]["step"].tolist() == [250, 500, 750, 1000]  # none thinned away
    assert plots["kid"]["value"].tolist() == pytest.approx([12.0, 6.0, 4.0, 3.0])
    assert set(plots["coverage"]["series"]) == {"coverage (samples)", "coverage (your images' own)"}
    assert frames(history(10, every=100))["kid"].empty  # nothing measured yet: an empty plot


def test_the_live_panel_shows_growth_quality_and_the_collapse_warning(view):
    rec = TrainStep(400, 2000, 1.0, 2.0, 0.6, 0.4, 50.0, 60.0, 10.0, resolution=32, fade_in=0.25, growing=True)
    warning = FEATURE_COLLAPSE_ADVICE.format(cov=0.1, real=0.9)
    job = JobView("running", rec, None, -1, history(400), warnings=[warning])
    shown = show_job(view, job, -1)
    assert "growing: 32 px, fading in: 0.25" in shown[view.live.progress]
    status = shown[view.live.status]
    assert "KID x 1000 12 (± 1) at step 250" in status and "your images' own: 0.90" in status
    assert "Possible mode collapse" in status and "neighbourhoods in feature space" in status
    assert shown[view.live.kid_plot]["step"].tolist() == [250]
    plain = TrainStep(400, 2000, 1.0, 2.0, 0.6, 0.4, 50.0, 60.0, 10.0, resolution=64)
    assert "growing" not in show_job(view, JobView("running", plain, None, -1, history(400)), -1)[view.live.progress]
