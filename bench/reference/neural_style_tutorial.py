"""A faithful re-creation of PyTorch's neural-style tutorial (pytorch/tutorials,
advanced_source/neural_style_tutorial.py, by Alexis Jacq), as the reference for bench.style_speed.

Kept as in the tutorial: ContentLoss / StyleLoss modules inserted right after the convolutions
(so they see pre-ReLU outputs), `gram_matrix` divided by a*b*c*d, MSE losses, content at conv_4,
style at conv_1 .. conv_5, the model trimmed after the last loss, ReLUs made out-of-place,
`optim.LBFGS` with its defaults (max_iter=20 per step), the `while run[0] <= num_steps` loop
that counts closure calls, clamping to 0..1 inside the closure, style weight 1e6, content weight 1,
the content image as the starting point. Changed, deliberately and only these: the network is the
project's offline VGG16 (vgg16-hed, torchvision's `vgg16().features` layout) instead of the
downloaded VGG19, with its own input convention in the `Normalization` module (the same
preprocessing the engine uses); images come in as tensors; no matplotlib, no prints; the model's
parameters are frozen (`model.requires_grad_(False)`, as in the tutorial's current version) and the
last loss is recorded.
"""

from __future__ import annotations

import copy
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

content_layers_default = ["conv_4"]
style_layers_default = ["conv_1", "conv_2", "conv_3", "conv_4", "conv_5"]


class ContentLoss(nn.Module):
    def __init__(self, target):
        super().__init__()
        self.target = target.detach()

    def forward(self, input):
        self.loss = F.mse_loss(input, self.target)
        return input


def gram_matrix(input):
    a, b, c, d = input.size()
    features = input.view(a * b, c * d)
    G = torch.mm(features, features.t())
    return G.div(a * b * c * d)


class StyleLoss(nn.Module):
    def __init__(self, target_feature):
        super().__init__()
        self.target = gram_matrix(target_feature).detach()

    def forward(self, input):
        G = gram_matrix(input)
        self.loss = F.mse_loss(G, self.target)
        return input


class Normalization(nn.Module):
    """The tutorial's (img - mean) / std, here with vgg16-hed's convention: img * 255 - RGB mean."""

    def __init__(self, mean, std, scale):
        super().__init__()
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)
        self.scale = scale

    def forward(self, img):
        return (img * self.scale - self.mean) / self.std


def load_vgg16_hed_features(folder) -> tuple[nn.Sequential, dict]:
    """torchvision's vgg16().features with the vgg16-hed weights (conv1_1 flipped to take RGB)."""
    from safetensors.torch import load_file
    from torchvision.models import vgg16

    config = json.loads((folder / "config.json").read_text())
    state = load_file(str(folder / "model.safetensors"))
    state["features.0.weight"] = state["features.0.weight"].flip(1)  # BGR -> RGB input
    cnn = vgg16(weights=None).features
    cnn.load_state_dict({k.removeprefix("features."): v for k, v in state.items()}, strict=True)
    norm = {"mean": config["mean"][::-1], "std": [1.0, 1.0, 1.0], "scale": config["input_range"]}
    return cnn.eval(), norm


def get_style_model_and_losses(cnn, norm, style_img, content_img,
                               content_layers=content_layers_default, style_layers=style_layers_default):
    cnn = copy.deepcopy(cnn)
    normalization = Normalization(norm["mean"], norm["std"], norm["scale"]).to(content_img.device)
    content_losses = []
    style_losses = []
    model = nn.Sequential(normalization)
    i = 0
    for layer in cnn.children():
        if isinstance(layer, nn.Conv2d):
            i += 1
            name = f"conv_{i}"
        elif isinstance(layer, nn.ReLU):
            name = f"relu_{i}"
            layer = nn.ReLU(inplace=False)
        elif isinstance(layer, nn.MaxPool2d):
            name = f"pool_{i}"
        elif isinstance(layer, nn.BatchNorm2d):
            name = f"bn_{i}"
        else:
            raise RuntimeError(f"Unrecognized layer: {layer.__class__.__name__}")
        model.add_module(name, layer)
        if name in content_layers:
            target = model(content_img).detach()
            content_loss = ContentLoss(target)
            model.add_module(f"content_loss_{i}", content_loss)
            content_losses.append(content_loss)
        if name in style_layers:
            target_feature = model(style_img).detach()
            style_loss = StyleLoss(target_feature)
            model.add_module(f"style_loss_{i}", style_loss)
            style_losses.append(style_loss)
    for i in range(len(model) - 1, -1, -1):
        if isinstance(model[i], ContentLoss) or isinstance(model[i], StyleLoss):
            break
    model = model[:(i + 1)]
    return model, style_losses, content_losses


def get_input_optimizer(input_img):
    optimizer = optim.LBFGS([input_img.requires_grad_()])
    return optimizer


def run_style_transfer(cnn, norm, content_img, style_img, input_img, num_steps=300,
                       style_weight=1000000, content_weight=1, stamps=None):
    """Run the style transfer; returns (image, closure calls, final total loss).
    `stamps` (ours, for timing): a list that gets time.perf_counter() after each closure call."""
    model, style_losses, content_losses = get_style_model_and_losses(cnn, norm, style_img, content_img)
    input_img.requires_grad_(True)
    model.eval()
    model.requires_grad_(False)
    optimizer = get_input_optimizer(input_img)
    run = [0]
    last = [float("nan")]
    while run[0] <= num_steps:

        def closure():
            with torch.no_grad():
                input_img.clamp_(0, 1)
            optimizer.zero_grad()
            model(input_img)
            style_score = 0
            content_score = 0
            for sl in style_losses:
                style_score += sl.loss
            for cl in content_losses:
                content_score += cl.loss
            style_score *= style_weight
            content_score *= content_weight
            loss = style_score + content_score
            loss.backward()
            run[0] += 1
            last[0] = loss.item()
            if stamps is not None:
                stamps.append(time.perf_counter())
            return style_score + content_score

        optimizer.step(closure)
    with torch.no_grad():
        input_img.clamp_(0, 1)
    return input_img, run[0], last[0]


def reference_loss_fn(cnn, norm, content_img, style_img, style_weight=1000000, content_weight=1):
    """The tutorial's total loss (style_weight * style + content_weight * content) as a function of an image."""
    model, style_losses, content_losses = get_style_model_and_losses(cnn, norm, style_img, content_img)
    model.requires_grad_(False)

    def loss(image) -> float:
        with torch.no_grad():
            model(image.clamp(0, 1))
        style = sum(float(sl.loss) for sl in style_losses)
        content = sum(float(cl.loss) for cl in content_losses)
        return style_weight * style + content_weight * content

    return loss
