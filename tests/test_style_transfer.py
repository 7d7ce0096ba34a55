"""Style engine with the tiny random backbone: features cut, loss falls, colours, scales, stop."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from common.backbones import FeatureExtractor, load_backbone, resolve_backbone
from style.colour import pil_to_tensor, to_yiq
from style.transfer import StyleConfig, fit_size, stylize

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see conftest.one_thread


def synthetic(width: int, height: int, seed: int) -> Image.Image:
    """A smooth colourful test image."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, 4, 4, generator=g)
    big = torch.nn.functional.interpolate(small, size=(height, width), mode="bicubic").clamp(0, 1)
    return Image.fromarray((big[0].permute(1, 2, 0).numpy() * 255).astype("uint8"))


def stripes(size: int = 64) -> Image.Image:
    """A high-frequency style image."""
    x = torch.arange(size)
    pattern = ((x[None, :] // 4 + x[:, None] // 4) % 2).float()
    rgb = torch.stack([pattern, 1 - pattern, pattern * 0.5])
    return Image.fromarray((rgb.permute(1, 2, 0).numpy() * 255).astype("uint8"))


def tiny(**kw) -> StyleConfig:
    # init="content": these tests need no fetched weights (the default start, instant, does).
    base = dict(backbone="tiny-random", size=48, iterations=30, multiscale=False, preview_every=5, init="content")
    base.update(kw)
    return StyleConfig(**base)


def test_features_cut_after_deepest_layer():
    backbone = load_backbone("tiny-random", "cpu", "avg")
    extract = FeatureExtractor(backbone, ["conv1_1", "conv2_1"])
    ran = []
    hooks = [m.register_forward_hook(lambda mod, i, o, k=k: ran.append(k)) for k, m in enumerate(backbone.body)]
    try:
        out = extract(torch.rand(1, 3, 32, 32))
    finally:
        for h in hooks:
            h.remove()
    deepest = backbone.names.index("conv2_1")
    assert len(extract.body) == deepest + 1
    assert max(ran) == deepest  # nothing after conv2_1's ReLU ran
    assert set(out) == {"conv1_1", "conv2_1"}
    assert (out["conv1_1"] >= 0).all()  # post-ReLU activation, not overwritten in place


def test_pre_relu_layer_is_not_clobbered_by_inplace_relu():
    backbone = load_backbone("tiny-random", "cpu", "max")
    out = backbone(torch.rand(1, 3, 16, 16), ["conv1_1_pre", "conv1_1"])
    assert (out["conv1_1_pre"] < 0).any()
    assert torch.equal(out["conv1_1"], out["conv1_1_pre"].clamp(min=0))


def test_backbone_cache_and_auto_resolution():
    assert load_backbone("tiny-random", "cpu", "avg") is load_backbone("tiny-random", "cpu", "avg")
    assert load_backbone("tiny-random", "cpu", "avg") is not load_backbone("tiny-random", "cpu", "max")
    assert resolve_backbone("auto") in ("vgg19-imagenet", "vgg16-hed")
    with pytest.raises(ValueError):
        resolve_backbone("resnet")


def test_total_loss_falls_by_half():
    steps = list(stylize(synthetic(48, 48, 1), [stripes()], None, tiny(style_weight=10.0)))
    first, last = steps[0].losses["total"], steps[-1].losses["total"]
    assert last <= first / 2, (first, last)
    assert steps[-1].done and steps[-1].result.size == (48, 48)
    assert all(0 <= s.iteration <= s.total for s in steps) and steps[-1].eta == pytest.approx(0, abs=1e-6)
    assert any(s.preview is not None for s in steps[:-1])


@pytest.mark.parametrize(("optimiser", "init"), [("adam", "noise"), ("lbfgs", "grey")])
def test_other_optimisers_and_inits_run(optimiser, init):
    steps = list(stylize(synthetic(40, 32, 2), [stripes()], None, tiny(optimiser=optimiser, init=init, iterations=8)))
    assert steps[-1].result.size == (48, 38)
    assert all(torch.isfinite(torch.tensor(s.losses["total"])) for s in steps)


def test_colour_preservation_keeps_content_chroma():
    content = synthetic(48, 48, 3)
    result = list(stylize(content, [stripes()], None, tiny(preserve_colours=True, style_weight=50.0)))[-1].result
    yiq_c, yiq_r = to_yiq(pil_to_tensor(content)), to_yiq(pil_to_tensor(result))
    assert (yiq_c[:, 1:] - yiq_r[:, 1:]).abs().mean() < 0.02  # chroma kept (up to rounding and clamping)
    assert (yiq_c[:, :1] - yiq_r[:, :1]).abs().mean() > 0.02  # while the luminance did change


def test_multiscale_ends_at_requested_size():
    config = tiny(size=80, min_size=32, multiscale=True, iterations=12)
    assert config.scales() == [40, 57, 80]
    assert sum(config.iteration_plan()) == 12 and config.iteration_plan()[-1] < config.iteration_plan()[0]
    steps = list(stylize(synthetic(60, 40, 4), [stripes()], None, config))
    widths = [s.scale[0] for s in steps]
    assert widths == sorted(widths) and widths[0] == 40
    assert steps[-1].result.size == fit_size(60, 40, 80) == (80, 53)


def test_blend_of_two_styles_and_weights_validation():
    steps = list(stylize(synthetic(32, 32, 5), [stripes(), synthetic(32, 32, 6)], [0.7, 0.3], tiny(iterations=3)))
    assert steps[-1].done
    with pytest.raises(ValueError):
        next(stylize(synthetic(32, 32, 5), [stripes()], [1.0, 2.0], tiny()))


def test_stop_returns_current_image():
    stop = threading.Event()
    stop.set()
    steps = list(stylize(synthetic(48, 48, 7), [stripes()], None, tiny(), stop_event=stop))
    assert len(steps) == 1 and steps[0].stopped and steps[0].result.size == (48, 48)


def test_w2_style_loss_runs():
    steps = list(stylize(synthetic(32, 32, 8), [stripes()], None, tiny(style_loss="w2", iterations=6)))
    assert steps[-1].losses["total"] < steps[0].losses["total"]


@pytest.mark.parametrize("bad", [dict(iterations=0), dict(size=8), dict(optimiser="sgd"), dict(init="x"),
                                 dict(style_weight=-1.0), dict(backbone="resnet"), dict(style_scale=10.0)])
def test_config_validation(bad):
    with pytest.raises(ValueError):
        StyleConfig(**bad)


def test_auto_falls_back_without_network_when_vgg19_not_cached(monkeypatch, tmp_path):
    from common.backbones import BackboneUnavailable, build_vgg19_imagenet

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert resolve_backbone("auto") == "vgg16-hed"
    with pytest.raises(BackboneUnavailable, match="not in the torch hub cache"):
        build_vgg19_imagenet("avg", allow_download=False)


def test_bf16_only_on_gpus_with_bf16_tensor_cores(monkeypatch):
    """T4 / V100 (compute capability 7.x) would emulate bf16, slower than fp32: they stay in fp32."""
    from style.transfer import use_bf16

    cuda = torch.device("cuda")
    assert not use_bf16(StyleConfig(), torch.device("cpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for capability, expected in (((7, 5), False), ((8, 0), True), ((9, 0), True)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert use_bf16(StyleConfig(), cuda) is expected
    assert not use_bf16(StyleConfig(bf16_on_gpu=False), cuda)


@pytest.mark.parametrize("init", ["content", "noise"])
def test_stylize_leaves_the_global_rng_alone_and_does_not_depend_on_it(init):
    content, style = synthetic(40, 32, 1), stripes(32)
    results = []
    for global_seed in (1234, 99):
        torch.manual_seed(global_seed)
        before = torch.get_rng_state()
        *_, last = stylize(content, [style], config=tiny(iterations=4, init=init))
        assert torch.equal(torch.get_rng_state(), before)  # a caller's random stream is not reset or consumed
        results.append(np.asarray(last.result))
    assert np.array_equal(results[0], results[1])  # seeded by config.seed alone
