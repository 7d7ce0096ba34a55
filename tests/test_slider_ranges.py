"""Every slider and number box takes its range and default from the engine's config and limits.

The test walks every Slider and Number of the built app, so a new one fails here until it is checked
against its config (or listed as a UI-only choice with the reason).
"""

from __future__ import annotations

import math

import gradio as gr
import pytest
import torch

from gan.explorer import latent as L
from gan.explorer.model import SUPPORTED_SIZES
from gan.explorer.projection import ProjectionConfig
from gan.train import LIMITS as TRAIN_LIMITS
from gan.train import TrainConfig
from gan.train.config import LOSSES
from gan.train.progressive import start_resolutions
from gan.train.variants import D_ARCHS, D_NORMS, G_ARCHS
from style.transfer import INITS, OPTIMISERS, StyleConfig
from style.transfer import LIMITS as STYLE_LIMITS
from ui.context import AppContext, SessionStore


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from app import build_tabs

    ctx = AppContext(device=torch.device("cpu"), sessions=SessionStore(root=tmp_path_factory.mktemp("runtime")))
    with gr.Blocks() as demo:
        tabs = build_tabs(ctx)
    return demo, tabs


def explore_expected(tabs) -> dict:
    """widget -> (minimum, maximum, default) from ExploreLimits, Recipe and Interpolation."""
    lim, r, i = L.ExploreLimits(), tabs.explore.v.recipe, tabs.explore.v.interpolation.form
    expected = {r.truncation: (lim.truncation_min, lim.truncation_max, lim.truncation_default),
                r.seed: (0, L.MAX_SEED, L.Recipe().seed),
                i.frames: (lim.frames_min, lim.frames_max, lim.frames_default),
                i.fps: (lim.fps_min, lim.fps_max, lim.fps_default),
                # UI choices within Interpolation's seed range: -1 means "the current picture", 1 a first target
                i.start_seed: (-1, L.MAX_SEED, -1), i.end_seed: (0, L.MAX_SEED, 1)}
    expected.update(dict.fromkeys(r.directions, (-lim.direction_max, lim.direction_max, 0.0)))
    expected.update(dict.fromkeys(r.raw, (-lim.raw_max, lim.raw_max, 0.0)))
    # The scrub slider: a fraction of the path (interpolation_point takes 0..1), from the start.
    expected[tabs.explore.v.interpolation.scrub.t] = (0.0, 1.0, 0.0)
    # Projection steps: ProjectionConfig's default and maximum; the minimum 10 is a UI choice (steps of 10).
    project = ProjectionConfig()
    expected[tabs.explore.v.project.steps] = (10, project.steps_max, project.steps)
    return expected


def train_expected(tabs) -> dict:
    """The settings form: gan.train.LIMITS and TrainConfig() by field name (seed: no limit, 0 and up)."""
    defaults, expected = TrainConfig(), {}
    for name, widget in tabs.train.v.settings.widgets().items():
        if isinstance(widget, (gr.Slider, gr.Number)):
            low, high = TRAIN_LIMITS.get(name, (0, None))
            expected[widget] = (low, high, getattr(defaults, name))
    return expected


def style_expected(tabs) -> dict:
    """style.limits.StyleLimits (inside style.transfer.LIMITS) and StyleConfig() / InstantConfig() defaults; the
    weight sliders hold log10 of StyleConfig's weights."""
    from style.instant import InstantConfig
    from style.limits import StyleLimits
    from ui.style_view import EXPONENTS

    v, d, ui, cpu = tabs.style.v, StyleConfig(), StyleLimits(), torch.device("cpu")
    f, look, mixer = v.form, v.instant.look, v.presets.form
    expected = {f.iterations: (*ui.iterations, d.iterations), f.size: (*ui.size(cpu), d.size),
                f.style_scale: (*STYLE_LIMITS["style_scale"], d.style_scale),
                look.strength: ui.strength(), look.size: ui.instant_size(cpu)}
    for name, (low, high) in EXPONENTS.items():
        weight = getattr(d, name.removeprefix("log10_"))
        expected[getattr(f, name)] = (low, high, round(math.log10(weight), 2))
    # Blend and preset-mix weights: a UI-only choice (the engines take any positive weights and normalise them).
    expected.update({s: (*ui.weight_range, 1.0 if i == 0 else 0.5) for i, s in enumerate(f.blends)})
    expected.update({s: (*ui.weight_range, 1.0 if i == 0 else 0.0) for i, s in enumerate(mixer.preset_weights)})
    assert ui.strength() == (0.0, InstantConfig().max_strength, InstantConfig().strength)
    return expected


def test_style_limits_lie_inside_the_engines_ranges():
    """The Style tab's narrower ranges (style/limits.py) stay inside style.transfer.LIMITS and InstantConfig."""
    from style.instant import InstantConfig
    from style.limits import StyleLimits

    ui, instant = StyleLimits(), InstantConfig()
    for name, (low, high) in (("iterations", ui.iterations), ("size", ui.size_cpu), ("size", ui.size_gpu)):
        assert STYLE_LIMITS[name][0] <= low < high <= STYLE_LIMITS[name][1], name
    for device in ("cpu", "cuda"):
        low, high, default = ui.instant_size(device)
        assert (low, high) == (instant.min_size, instant.max_side(device)) and low <= default <= high
        InstantConfig(size=low), InstantConfig(size=high), InstantConfig(size=default)
    with pytest.raises(ValueError, match="iterations"):
        StyleLimits(iterations=(1, STYLE_LIMITS["iterations"][1] + 1))


def paint_it_expected(demo) -> dict:
    """Explore's "Paint it" strength: StyleLimits.strength(), as the Style tab's."""
    from style.limits import StyleLimits

    sliders = [b for b in demo.blocks.values() if isinstance(b, gr.Slider) and b.label == "Paint strength"]
    assert len(sliders) == 1
    return {sliders[0]: StyleLimits().strength()}


def test_every_slider_reads_its_range_and_default_from_the_config(built):
    demo, tabs = built
    expected = {**explore_expected(tabs), **train_expected(tabs), **style_expected(tabs), **paint_it_expected(demo)}
    for widget, (low, high, default) in expected.items():
        assert (widget.minimum, widget.maximum, widget.value) == (low, high, default), widget.label
    everything = [b for b in demo.blocks.values() if isinstance(b, (gr.Slider, gr.Number))]
    unchecked = [b.label for b in everything if b not in expected]
    assert not unchecked, f"sliders / number boxes not checked against a config: {unchecked}"


def test_choices_and_their_defaults_come_from_the_engines(built):
    _, tabs = built
    lim, r, i = L.ExploreLimits(), tabs.explore.v.recipe, tabs.explore.v.interpolation.form
    assert [c[1] for c in r.upscale.choices] == list(L.UPSCALE_MODES) and r.upscale.value == L.Recipe().upscale
    assert [int(c[1]) for c in r.size.choices] == list(lim.display_sizes) and r.size.value == str(lim.size_default)
    assert set(lim.display_sizes) <= set(L.DISPLAY_SIZES)
    assert (i.method.value, i.keep_edits.value) == (L.Interpolation.method, L.Interpolation.keep_edits)
    data, settings, d = tabs.train.v.data.form, tabs.train.v.settings, TrainConfig()
    assert [c[1] for c in data.image_size.choices] == list(SUPPORTED_SIZES) and data.image_size.value == d.image_size
    assert [c[1] for c in settings.loss.choices] == list(LOSSES) and settings.loss.value == d.loss
    assert settings.diffaugment.value == bool(d.diffaugment)
    for widget, choices, default in ((settings.g_arch, G_ARCHS, d.g_arch), (settings.d_arch, D_ARCHS, d.d_arch),
                                     (settings.d_norm, D_NORMS, d.d_norm)):
        assert [c[1] for c in widget.choices] == list(choices) and widget.value == default, widget.label
    starts = [c[1] for c in settings.grow_from.choices]
    assert starts == [0, *start_resolutions(max(SUPPORTED_SIZES))] and settings.grow_from.value == d.grow_from
    for size in SUPPORTED_SIZES:  # every start the config accepts for some image size is offered
        assert set(start_resolutions(size)) <= set(starts)
    f, s = tabs.style.v.form, StyleConfig()
    assert [c[1] for c in f.optimiser.choices] == list(OPTIMISERS) and f.optimiser.value == s.optimiser
    assert [c[1] for c in f.init.choices] == list(INITS) and f.init.value == s.init
    assert (f.preserve_colours.value, f.backbone.value) == (s.preserve_colours, s.backbone)


def test_the_ends_of_every_range_make_valid_configs(built):
    """Whatever a slider allows, the config accepts (the old Train steps slider stopped at 20,000)."""
    _, tabs = built
    for name, (low, high) in TRAIN_LIMITS.items():
        if name in tabs.train.v.settings.widgets():
            for value in (low, high):
                TrainConfig(**{name: value})
    from style.instant import InstantConfig

    look = tabs.style.v.instant.look
    for value in (look.strength.minimum, look.strength.maximum):
        InstantConfig(strength=float(value))
    for value in (look.size.minimum, look.size.maximum):
        InstantConfig(size=int(value))
    f = tabs.style.v.form
    for widget in (f.iterations, f.size, f.style_scale):
        for value in (widget.minimum, widget.maximum):
            name = next(n for n, w in f.widgets().items() if w is widget)
            StyleConfig(**{name: type(getattr(StyleConfig(), name))(value)})
