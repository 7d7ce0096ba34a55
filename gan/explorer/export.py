"""A generator exported to ONNX for the browser (onnxruntime-web): fp16 weights, fp32 arithmetic.

The exported graph is `PageGenerator`: z (1, nz) float32 -> (1, nc, S, S) float32 holding whole
numbers 0..255, the same arithmetic as `latent.to_pil` ((G(z) + 1) / 2, clamp, x255, round half to
even), so the page only copies bytes into a canvas. Weights are stored as float16 (half the bytes
to download) and cast back to float32 by `Cast` nodes at load, so the arithmetic stays fp32: the
only difference from the server's render is the weights' rounding to fp16 (relative error 2^-11),
which moves about 1 % of 8-bit values by one level and none by more (see docs/explore.md).

Export goes through `torch.onnx.export(dynamo=True)`, which needs the packages `onnx` and
`onnxscript`; its optimiser folds each batch norm into the convolution before it. A model that
cannot be exported (a package missing, an exporter error, too many bytes for a page, an output
that disagrees with torch) raises `ExportRefused` with the reason; the caller keeps rendering on
the server. Exports are cached: the file's metadata holds a fingerprint of the weights and of the
export settings, and a file whose fingerprint differs is exported again.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import secrets
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when PageGenerator or the conversion changes: old files are re-exported
FINGERPRINT_KEY = "gan_atelier_fingerprint"


class ExportRefused(RuntimeError):
    """This model cannot be rendered in the page; the message says why (the server still renders it)."""


@dataclass(frozen=True)
class WebExportConfig:
    """How a generator is exported for the page."""

    opset: int = 18
    fp16_weights: bool = True  # half the download; arithmetic stays fp32 (Cast nodes)
    max_weight_bytes: int = 48 * 2**20  # more than this is too much for a page to download
    verify: bool = True  # run the file once (onnx's reference evaluator) and compare with torch
    max_level_diff: int = 2  # what verify tolerates, in 8-bit levels (fp16 weights move about 1 in 100 by 1)

    def __post_init__(self) -> None:
        if not 17 <= self.opset <= 23:
            raise ValueError(f"opset must be between 17 and 23, got {self.opset}.")
        if self.max_weight_bytes < 1:
            raise ValueError(f"max_weight_bytes must be positive, got {self.max_weight_bytes}.")
        if self.max_level_diff < 0:
            raise ValueError(f"max_level_diff must be 0 or more, got {self.max_level_diff}.")


class PageGenerator(nn.Module):
    """G followed by `to_pil`'s arithmetic: z (1, nz) -> 8-bit values 0..255 as float32 (1, nc, S, S)."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        image = (self.G(z) + 1.0) * 0.5  # as latent.generate
        return image.clamp(0, 1).mul(255).round()  # as latent.to_pil (round half to even, like ONNX Round)


def fingerprint(G: nn.Module, config: WebExportConfig) -> str:
    """sha256 of the weights (state dict, in order), the export settings and EXPORT_VERSION."""
    digest = hashlib.sha256(f"{EXPORT_VERSION}:{sorted(asdict(config).items())}".encode())
    for name, tensor in G.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def weight_bytes(G: nn.Module, config: WebExportConfig) -> int:
    """Bytes of weights the page would download (batch-norm buffers fold into the convolutions)."""
    per_value = 2 if config.fp16_weights else 4
    return sum(p.numel() for name, p in G.named_parameters() if not name.endswith(".bias")) * per_value


def require_packages() -> None:
    """Refuse with the fix when the exporter's packages are missing."""
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ExportRefused(f"ONNX export needs the packages onnx and onnxscript ({err.name} is missing; "
                            "pip install -r requirements.txt).") from err


def to_onnx(G: nn.Module, config: WebExportConfig):
    """Trace PageGenerator(G) on the CPU in fp32; returns the onnx ModelProto."""
    model = PageGenerator(copy.deepcopy(G).float().cpu().eval()).eval()
    z = torch.zeros(1, G.cfg.nz)
    for name in ("onnx_ir", "onnxscript"):  # their INFO lines narrate each optimiser pass
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        program = torch.onnx.export(model, (z,), dynamo=True, opset_version=config.opset,
                                    input_names=["z"], output_names=["image"], verbose=False)
    except Exception as err:  # the exporter raises many types (tracing, decomposition, translation)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ExportRefused(f"torch.onnx.export failed: {first[:300]}") from err
    return program.model_proto


def weights_to_fp16(proto) -> None:
    """Store float32 weights as float16 initializers, each cast back to float32 by a Cast node."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    graph = proto.graph
    casts = []
    for init in list(graph.initializer):
        array = numpy_helper.to_array(init)
        if array.dtype != np.float32 or array.size < 2:  # scalars stay: they are not worth a Cast
            continue
        half = numpy_helper.from_array(array.astype(np.float16), f"{init.name}__fp16")
        graph.initializer.remove(init)
        graph.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                      name=f"{init.name}__cast"))
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)  # topological order: the casts feed everything after them


def check_against_torch(G: nn.Module, proto, config: WebExportConfig) -> int:
    """Largest 8-bit difference between the ONNX file (reference evaluator) and torch for one z."""
    from onnx.reference import ReferenceEvaluator

    z = torch.randn(1, G.cfg.nz, generator=torch.Generator("cpu").manual_seed(0))
    with torch.inference_mode():
        want = PageGenerator(copy.deepcopy(G).float().cpu().eval())(z).numpy()
    got = ReferenceEvaluator(proto).run(None, {"z": z.numpy()})[0]
    if got.shape != want.shape:
        raise ExportRefused(f"the exported model gives shape {got.shape}, torch gives {want.shape}.")
    return int(abs(got - want).max())


# torch.export keeps its tracing state in module globals (torch.fx.traceback.current_meta): two exports at
# once in one process (two models picked together, or a test beside the app's background export) broke
# each other with KeyError 'custom' (7 of 9 failed in 3 threads x 3 exports). One export at a time.
EXPORT_LOCK = threading.Lock()


def export_onnx(G: nn.Module, path: Path, config: WebExportConfig = WebExportConfig()) -> Path:
    """Export G for the page to `path` (written atomically); ExportRefused when it cannot be."""
    require_packages()
    import onnx

    size = weight_bytes(G, config)
    if size > config.max_weight_bytes:
        raise ExportRefused(f"its weights weigh {size / 2**20:.0f} MB, more than the "
                            f"{config.max_weight_bytes / 2**20:.0f} MB a page should download.")
    with EXPORT_LOCK:
        proto = to_onnx(G, config)
    if config.fp16_weights:
        weights_to_fp16(proto)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise ExportRefused(f"the exported graph is not valid ONNX ({str(err).splitlines()[0]}).") from err
    if config.verify:
        diff = check_against_torch(G, proto, config)
        if diff > config.max_level_diff:
            raise ExportRefused(f"the exported model's picture differs from torch's by {diff} levels "
                                f"(at most {config.max_level_diff} allowed).")
    onnx.helper.set_model_props(proto, {FINGERPRINT_KEY: fingerprint(G, config)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(proto.SerializeToString())
    tmp.replace(path)  # atomic: a page or a second exporter never reads half a file
    log.info("exported %s for the page (%.1f MB)", path, path.stat().st_size / 2**20)
    return path


def stored_fingerprint(path: Path) -> str | None:
    """The fingerprint written into an exported file, or None (no file, unreadable, older format)."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (OSError, DecodeError) as err:
        log.warning("%s is unreadable (%s); exporting again", path, err)
        return None
    return {p.key: p.value for p in proto.metadata_props}.get(FINGERPRINT_KEY)


def cached_export(G: nn.Module, path: Path, config: WebExportConfig = WebExportConfig()) -> Path:
    """`path` if it holds this G's export with these settings, else export it there first."""
    require_packages()
    if path.is_file() and stored_fingerprint(path) == fingerprint(G, config):
        return path
    return export_onnx(G, path, config)
