"""gan.explorer.export and web.pagemodels: the page's ONNX export agrees with torch, is cached, is
refused cleanly, and is published (pre-compressed) off the request path."""

from __future__ import annotations

import logging
import sys
import time

import numpy as np
import pytest
import torch

from gan.explorer import export, zoo
from gan.explorer.latent import DirectionConfig
from gan.explorer.model import DCGANConfig, Generator
from web import pagemodels, runtime

pytestmark = pytest.mark.slow
SMALL = DirectionConfig(n_samples=64, k=3)


def tiny_generator(seed: int = 0, **config) -> Generator:
    """A tiny generator whose batch norms have non-trivial statistics (the export folds them)."""
    torch.manual_seed(seed)
    G = Generator(DCGANConfig(**{"image_size": 32, "nz": 8, "ngf": 4, "ndf": 4, **config})).eval()
    for module in G.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    return G


def run_onnx(path, z: torch.Tensor) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"z": z.numpy()})[0]


def torch_levels(G, z: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return export.PageGenerator(G)(z).numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    G = tiny_generator()
    folder = tmp_path_factory.mktemp("export")
    half = export.export_onnx(G, folder / "half.onnx")
    full = export.export_onnx(G, folder / "full.onnx", export.WebExportConfig(fp16_weights=False))
    return G, half, full


@pytest.mark.parametrize("config", [dict(), dict(nc=1), dict(image_size=64, nz=16)])
def test_the_export_draws_what_torch_draws(tmp_path, config):
    G = tiny_generator(1, **config)
    path = export.export_onnx(G, tmp_path / "g.onnx")
    z = torch.randn(16, G.cfg.nz, generator=torch.Generator().manual_seed(2))
    got = np.concatenate([run_onnx(path, row[None]) for row in z])
    want = torch_levels(G, z)
    assert got.shape == want.shape == (16, G.cfg.nc, G.cfg.image_size, G.cfg.image_size)
    assert set(np.unique(got)) <= set(range(256))  # whole 8-bit levels, ready for a canvas
    assert np.abs(got - want).max() <= 1  # fp16 weights move a few values by one level


def weight_bytes(path) -> int:
    import onnx

    return sum(len(init.raw_data) for init in onnx.load(str(path)).graph.initializer)


def test_fp16_weights_halve_the_weights_and_fp32_agrees_exactly(exported):
    G, half, full = exported
    assert weight_bytes(half) < 0.55 * weight_bytes(full)
    z = torch.randn(8, 8, generator=torch.Generator().manual_seed(3))
    want = torch_levels(G, z)
    exact = np.concatenate([run_onnx(full, row[None]) for row in z])
    assert np.abs(exact - want).max() <= 1 and (exact != want).mean() < 0.002  # fp32: rounding ties only


def test_the_export_is_cached_until_the_weights_change(tmp_path):
    G = tiny_generator(2)
    path = tmp_path / zoo.ONNX_FILE
    export.cached_export(G, path)
    stamp = path.stat().st_mtime_ns
    time.sleep(0.01)
    assert export.cached_export(G, path) == path and path.stat().st_mtime_ns == stamp
    with torch.no_grad():
        G.main[0].weight[0, 0, 0, 0] += 1.0
    export.cached_export(G, path)
    assert path.stat().st_mtime_ns != stamp
    assert export.stored_fingerprint(path) == export.fingerprint(G, export.WebExportConfig())
    path.write_bytes(b"not onnx")
    export.cached_export(G, path)  # an unreadable file is exported again
    assert export.stored_fingerprint(path) is not None


def test_a_model_too_heavy_for_a_page_is_refused(tmp_path):
    config = export.WebExportConfig(max_weight_bytes=1000)
    with pytest.raises(export.ExportRefused, match="more than the 0 MB a page should download"):
        export.export_onnx(tiny_generator(), tmp_path / "g.onnx", config)
    assert not (tmp_path / "g.onnx").exists()


def test_without_the_exporter_packages_the_export_is_refused(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # `import onnxscript` raises ImportError
    with pytest.raises(export.ExportRefused, match="onnx and onnxscript"):
        export.cached_export(tiny_generator(), tmp_path / "g.onnx")


def test_export_config_is_checked():
    with pytest.raises(ValueError, match="opset"):
        export.WebExportConfig(opset=9)


def wait_status(models: pagemodels.PageModels, model_id: str, loaded, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = models.describe(model_id, loaded)
        if info["status"] != pagemodels.PENDING:
            return info
        time.sleep(0.1)
    raise AssertionError("the export never finished")


def test_page_models_export_in_the_background_and_publish_compressed(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ATELIER_VENDOR_DIR", str(tmp_path / "vendor"))
    folder = tmp_path / "model"
    tiny_generator(3).save_pretrained(folder)
    loaded = zoo.load(folder, "cpu", SMALL)
    fetched = []
    models = pagemodels.PageModels(runtime_ensure=lambda: fetched.append(1) or tmp_path)
    first = models.describe("upload:tiny", loaded)
    assert first["status"] in (pagemodels.PENDING, pagemodels.READY) and first["runtime"] is None
    info = wait_status(models, "upload:tiny", loaded)
    deadline = time.monotonic() + 30
    while not fetched and time.monotonic() < deadline:  # the runtime's fetch runs in its own thread
        time.sleep(0.01)
    assert info["status"] == pagemodels.READY and fetched == [1]  # the runtime was fetched once, lazily
    published = tmp_path / "cache" / "web" / "models" / f"generator-{info['key']}.onnx"
    assert info["url"] == f"gradio_api/file={published}" and published.is_file()
    assert (folder / zoo.ONNX_FILE).is_file()  # the engine's export, beside the weights and directions
    assert published.with_name(published.name + ".gz").is_file()
    assert info["nz"] == 8 and len(info["directions"]) == SMALL.k and len(info["directions"][0]) == 8
    assert info["directions"][0] == loaded.directions.vectors[0].tolist()  # exact float32 values
    published.unlink()  # swept after a day unused: asked for again, it is published again
    assert wait_status(models, "upload:tiny", loaded)["status"] == pagemodels.READY and published.is_file()


def test_a_refused_model_and_an_offline_runtime_keep_the_server_path(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ATELIER_VENDOR_DIR", str(tmp_path / "vendor"))
    folder = tmp_path / "model"
    tiny_generator(4).save_pretrained(folder)
    loaded = zoo.load(folder, "cpu", SMALL)

    def offline() -> None:
        raise runtime.RuntimeUnavailable("Could not download the runtime (offline)")

    models = pagemodels.PageModels(config=export.WebExportConfig(max_weight_bytes=10), runtime_ensure=offline)
    with caplog.at_level(logging.WARNING):
        assert models.runtime_url() is None
        info = wait_status(models, "upload:tiny", loaded)
        deadline = time.monotonic() + 10
        while "in-page rendering is off" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert info["status"] == pagemodels.REFUSED and info["url"] is None and "page should download" in info["reason"]
    assert "renders on the server only" in caplog.text and "in-page rendering is off" in caplog.text


def test_exports_from_several_threads_at_once_all_succeed(tmp_path):
    """torch.export's tracing state is global: without export.EXPORT_LOCK, 7 of 9 such exports failed."""
    import threading

    failures = []

    def export_twice(i: int) -> None:
        G = tiny_generator(i)
        for j in range(2):
            try:
                export.export_onnx(G, tmp_path / f"g{i}-{j}.onnx", export.WebExportConfig(verify=False))
            except export.ExportRefused as err:
                failures.append(str(err)[:120])

    threads = [threading.Thread(target=export_twice, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [] and len(list(tmp_path.glob("*.onnx"))) == 6
