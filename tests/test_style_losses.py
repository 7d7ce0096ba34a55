"""Style losses against values computed by hand on tiny tensors."""

from __future__ import annotations

import pytest
import torch

from style import losses


def feats():
    # one image, 2 channels, 2x2 pixels: channel 0 = [1, 2, 3, 4], channel 1 = [0, 1, 0, 1]
    return torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, 1.0]]]])


def test_gram_by_hand():
    # F F^T = [[1+4+9+16, 2+4], [2+4, 0+1+0+1]] = [[30, 6], [6, 2]], divided by H*W = 4
    expected = torch.tensor([[[7.5, 1.5], [1.5, 0.5]]])
    assert torch.allclose(losses.gram(feats()), expected)


def test_gram_is_fp32_for_half_inputs():
    assert losses.gram(feats().half()).dtype == torch.float32


def test_content_loss_by_hand():
    x = torch.tensor([1.0, 2.0]).view(1, 1, 1, 2)
    t = torch.tensor([3.0, 2.0]).view(1, 1, 1, 2)
    # mean((x - t)^2) = (4 + 0) / 2 = 2; mean(t^2) = (9 + 4) / 2 = 6.5
    assert losses.content_loss(x, t).item() == pytest.approx(2 / 6.5, rel=1e-6)


def test_gram_style_loss_by_hand():
    target = torch.eye(2)[None]
    # G - T = [[6.5, 1.5], [1.5, -0.5]] -> mean square (42.25 + 2.25 + 2.25 + 0.25) / 4 = 11.75
    # mean(T^2) = 2 / 4 = 0.5
    assert losses.gram_style_loss(feats(), target).item() == pytest.approx(11.75 / 0.5, rel=1e-6)


def test_losses_are_scale_free():
    x, t = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4)
    assert losses.content_loss(57 * x, 57 * t).item() == pytest.approx(losses.content_loss(x, t).item(), rel=1e-4)
    g = losses.gram(t)
    assert losses.gram_style_loss(57 * x, 57 ** 2 * g).item() == pytest.approx(
        losses.gram_style_loss(x, g).item(), rel=1e-4)


def test_tv_loss_by_hand():
    image = torch.tensor([[0.0, 1.0], [3.0, 5.0]]).view(1, 1, 2, 2)
    # horizontal diffs 1, 2 -> mean square 2.5; vertical diffs 3, 4 -> 12.5
    assert losses.tv_loss(image).item() == pytest.approx(15.0)


def test_sqrtm_newton_schulz():
    a = torch.diag(torch.tensor([4.0, 9.0]))[None]
    assert torch.allclose(losses.sqrtm_newton_schulz(a), torch.diag(torch.tensor([2.0, 3.0]))[None], atol=1e-3)


def test_w2_loss_zero_on_own_statistics_and_positive_elsewhere():
    torch.manual_seed(0)
    f = torch.rand(1, 4, 8, 8)
    target = losses.moment_target(*losses.moments(f))
    assert abs(losses.w2_style_loss(f, target).item()) < 1e-3
    assert losses.w2_style_loss(f * 2 + 1, target).item() > 0.1


def test_self_product_gradient_is_autograds_with_one_product_fewer():
    from style.losses import self_product

    f = torch.randn(2, 5, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(self_product, (f,))
    g = torch.randn(5, 9, requires_grad=True)
    weights = torch.randn(5, 5)  # a non-symmetric upstream gradient: the general case
    (self_product(g) * weights).sum().backward()
    ours = g.grad.clone()
    g.grad = None
    ((g @ g.t()) * weights).sum().backward()
    torch.testing.assert_close(ours, g.grad)
