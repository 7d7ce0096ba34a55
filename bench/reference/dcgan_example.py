"""A faithful re-creation of the PyTorch examples DCGAN program (github.com/pytorch/examples, dcgan/main.py).

Same networks (`netG` / `netD` with D's final Sigmoid), same init (`weights_init`), same data pipeline
(`ImageFolder` with Resize + CenterCrop + ToTensor + Normalize(0.5), `DataLoader(shuffle=True,
num_workers=2)`), same loss (`nn.BCELoss`), same optimisers (Adam, lr 2e-4, betas (0.5, 0.999)) and the
same training loop body: D on real, D on fake.detach(), G through D, three `.item()` calls and a print
per iteration. Left out because a benchmark must not time them: argparse, the per-100-iteration
`save_image` calls and the per-epoch `torch.save` checkpoints (those would only slow the reference).
The example is written for 64x64 images only; for the 32 px row the networks drop their widest
stride-2 layer (netG starts at ngf*4, netD ends at ndf*4), the usual CIFAR-10 adaptation and the
same shapes as our 32 px models.
Used only by bench/train_throughput.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import torch
import torch.nn as nn
import torch.optim as optim
import torch.utils.data
import torchvision.datasets as dset
import torchvision.transforms as transforms

nc = 3


def weights_init(m: nn.Module) -> None:
    """The example's custom init: conv N(0, 0.02), batch-norm N(1, 0.02) and bias 0."""
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """The example's netG for 64x64 images (32x32: without its first, widest up-sampling layer)."""

    def __init__(self, nz: int = 100, ngf: int = 64, image_size: int = 64) -> None:
        super().__init__()
        wide = [
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        ] if image_size == 64 else [
            nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        ]
        self.main = nn.Sequential(
            *wide,
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return self.main(input)


class Discriminator(nn.Module):
    """The example's netD for 64x64 images, ending in a Sigmoid (probabilities, for nn.BCELoss);
    for 32x32 without its last, widest down-sampling layer."""

    def __init__(self, ndf: int = 64, image_size: int = 64) -> None:
        super().__init__()
        wide = [
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
        ] if image_size == 64 else [nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False)]
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            *wide, nn.Sigmoid(),
        )

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        output = self.main(input)
        return output.view(-1, 1).squeeze(1)


def make_dataloader(dataroot: str, image_size: int = 64, batch_size: int = 64, workers: int = 2):
    """The example's `--dataset folder` pipeline (ImageFolder wants dataroot/<class>/<images>)."""
    dataset = dset.ImageFolder(root=dataroot, transform=transforms.Compose([
        transforms.Resize(image_size),
        transforms.CenterCrop(image_size),
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    ]))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=int(workers))


def batches_forever(dataloader: Iterable) -> Iterable:
    """Epoch after epoch, as the example's `for epoch ...: for i, data in enumerate(dataloader)` does."""
    while True:
        yield from dataloader


def train(batches: Iterable, steps: int, warmup: int = 2, nz: int = 100, ngf: int = 64, ndf: int = 64,
          lr: float = 2e-4, beta1: float = 0.5, device: str = "cpu", seed: int = 0, verbose: bool = False,
          image_size: int = 64) -> float:
    """Run the example's loop for `warmup + steps` iterations; return images/s over the last `steps`."""
    if image_size not in (32, 64):
        raise ValueError(f"the example's networks exist for 32 and 64 px only, not {image_size}")
    torch.manual_seed(seed)
    device = torch.device(device)
    netG = Generator(nz, ngf, image_size).to(device)
    netG.apply(weights_init)
    netD = Discriminator(ndf, image_size).to(device)
    netD.apply(weights_init)
    criterion = nn.BCELoss()
    real_label, fake_label = 1, 0
    optimizerD = optim.Adam(netD.parameters(), lr=lr, betas=(beta1, 0.999))
    optimizerG = optim.Adam(netG.parameters(), lr=lr, betas=(beta1, 0.999))
    images, started = 0, None
    for i, data in enumerate(batches):
        if i == warmup:
            images, started = 0, time.perf_counter()
        if i == warmup + steps:
            break
        # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        real_cpu = data[0].to(device)
        batch_size = real_cpu.size(0)
        label = torch.full((batch_size,), real_label, dtype=real_cpu.dtype, device=device)
        output = netD(real_cpu)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = output.mean().item()
        noise = torch.randn(batch_size, nz, 1, 1, device=device)
        fake = netG(noise)
        label.fill_(fake_label)
        output = netD(fake.detach())
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = output.mean().item()
        errD = errD_real + errD_fake
        optimizerD.step()
        # (2) Update G network: maximize log(D(G(z)))
        netG.zero_grad()
        label.fill_(real_label)  # fake labels are real for generator cost
        output = netD(fake)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = output.mean().item()
        optimizerG.step()
        line = (f"[{i}] Loss_D: {errD.item():.4f} Loss_G: {errG.item():.4f} "
                f"D(x): {D_x:.4f} D(G(z)): {D_G_z1:.4f} / {D_G_z2:.4f}")
        if verbose:
            print(line)
        images += batch_size
    return images / (time.perf_counter() - started)
