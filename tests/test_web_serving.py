"""web.runtime (the pinned onnxruntime-web fetch), web.assets and web.serving (pre-compressed files with
immutable cache headers), on a stand-in package tarball and a bare ASGI app, then on the launched app."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import urllib.request

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from web import assets, runtime, serving


def package_tarball(path, files: dict[str, bytes]) -> bytes:
    """An npm-style package tarball (package/dist/...), written to path; returns its bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in {"package/package.json": b"{}", **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


@pytest.fixture
def vendor(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_VENDOR_DIR", str(tmp_path / "vendor"))
    return tmp_path / "vendor"


def stand_in_files() -> dict[str, bytes]:
    return {f"package/dist/{name}": (name.encode() * 4000) for name in runtime.FILES}


def test_the_runtime_is_fetched_checked_unpacked_and_precompressed_once(tmp_path, vendor):
    data = package_tarball(tmp_path / "ort.tgz", {**stand_in_files(), "package/dist/ort.all.mjs": b"x" * 100})
    url, integrity = (tmp_path / "ort.tgz").as_uri(), runtime.integrity_of(data)
    assert "fetched" in runtime.fetch(url, integrity)
    folder = runtime.runtime_dir()
    assert folder == vendor / f"onnxruntime-web-{runtime.VERSION}" and runtime.is_ready()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [runtime.STAMP] + [f"{n}{s}" for n in runtime.FILES for s in ("", ".br", ".gz")])
    wasm = folder / "ort-wasm-simd-threaded.wasm"
    assert gzip.decompress((folder / f"{wasm.name}.gz").read_bytes()) == wasm.read_bytes()
    assert json.loads((folder / runtime.STAMP).read_text())["integrity"] == integrity
    assert "already there" in runtime.fetch(url, integrity)  # idempotent: nothing downloaded again


def test_a_tarball_with_another_hash_or_without_a_file_is_refused(tmp_path, vendor):
    data = package_tarball(tmp_path / "ort.tgz", stand_in_files())
    with pytest.raises(runtime.RuntimeUnavailable, match="does not match the pinned"):
        runtime.fetch((tmp_path / "ort.tgz").as_uri(), runtime.INTEGRITY)
    assert not runtime.runtime_dir().exists()
    files = stand_in_files()
    del files["package/dist/ort-wasm-simd-threaded.wasm"]
    data = package_tarball(tmp_path / "short.tgz", files)
    with pytest.raises(runtime.RuntimeUnavailable, match=r"has no dist/ort-wasm-simd-threaded\.wasm"):
        runtime.fetch((tmp_path / "short.tgz").as_uri(), runtime.integrity_of(data))
    with pytest.raises(runtime.RuntimeUnavailable, match="Could not download"):
        runtime.fetch((tmp_path / "missing.tgz").as_uri(), runtime.INTEGRITY)
    assert not runtime.is_ready()


@pytest.fixture
def public(tmp_path):
    root = tmp_path / "public"
    wasm = root / "rt" / "ort.wasm"
    wasm.parent.mkdir(parents=True)
    wasm.write_bytes(b"\0asm" + bytes(range(256)) * 64)
    assets.precompress(wasm)
    (root / "rt" / ".hidden.js").write_text("secret")
    (tmp_path / "private.txt").write_text("private")
    return root


@pytest.fixture
def client(public):
    async def passthrough(request):
        return PlainTextResponse("passed through", headers={"X-Route": "gradio"})

    app = Starlette(routes=[Route("/{path:path}", passthrough, methods=["GET", "HEAD", "POST"])])
    app.add_middleware(serving.PrecompressedFiles, roots=lambda: [public.resolve()])
    return TestClient(app)


def test_public_files_come_precompressed_with_immutable_caching(client, public):
    wasm = (public / "rt" / "ort.wasm").resolve()
    url = f"{serving.ROUTE}{wasm}"
    for accept, encoding, body in (("gzip, deflate, br", "br", wasm.with_name("ort.wasm.br")),
                                   ("gzip", "gzip", wasm.with_name("ort.wasm.gz")),
                                   ("br;q=0, gzip", "gzip", wasm.with_name("ort.wasm.gz")),
                                   ("identity", None, wasm)):
        response = client.get(url, headers={"Accept-Encoding": accept})
        assert response.status_code == 200 and response.headers.get("content-encoding") == encoding
        assert response.headers["content-type"] == "application/wasm"
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["vary"] == "Accept-Encoding"
        assert int(response.headers["content-length"]) == body.stat().st_size
        if encoding is None:
            assert response.content == wasm.read_bytes()
    head = client.head(url, headers={"Accept-Encoding": "br"})
    assert head.status_code == 200 and head.content == b"" and head.headers["content-encoding"] == "br"


def test_nothing_else_is_served_by_the_middleware(client, public, tmp_path):
    root = public.resolve()
    for path in (tmp_path / "private.txt", root / "rt" / ".." / ".." / "private.txt", root / "rt" / ".hidden.js",
                 root / "rt" / "ort.wasm.br", root / "rt" / "missing.wasm", root):
        response = client.get(f"{serving.ROUTE}{path}")
        assert response.headers.get("x-route") == "gradio", path  # left to Gradio's own checks
        assert "cache-control" not in response.headers
    assert client.post(f"{serving.ROUTE}{root / 'rt' / 'ort.wasm'}").headers.get("x-route") == "gradio"
    assert client.get("/").headers.get("x-route") == "gradio"


def test_accept_encoding_parsing():
    assert serving.accepted_encodings("gzip, deflate, br, zstd") == {"gzip", "deflate", "br", "zstd"}
    assert serving.accepted_encodings("br;q=0, gzip;q=0.5") == {"gzip"}
    assert serving.accepted_encodings("") == set()


def test_published_names_follow_the_content(tmp_path, monkeypatch):
    monkeypatch.setenv("ATELIER_CACHE_DIR", str(tmp_path))
    one = assets.publish_bytes(b"console.log(1);" * 200, "js", "explore", ".js")
    two = assets.publish_bytes(b"console.log(2);" * 200, "js", "explore", ".js")
    assert one != two and one.parent == two.parent == tmp_path / "web" / "js"
    assert one.with_name(one.name + ".br").is_file() and one.with_name(one.name + ".gz").is_file()
    assert assets.publish_bytes(b"console.log(1);" * 200, "js", "explore", ".js") == one


@pytest.mark.integration
@pytest.mark.weights
def test_the_app_serves_the_runtime_and_its_script_with_cache_headers(app_url):
    runtime.ensure()
    wasm = runtime.runtime_dir() / "ort-wasm-simd-threaded.wasm"
    request = urllib.request.Request(f"{app_url}{assets.url_for(wasm)}", headers={"Accept-Encoding": "br, gzip"})
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
        assert response.headers["Content-Encoding"] == "br" and response.headers["Content-Type"] == "application/wasm"
        assert response.headers["Cache-Control"] == serving.IMMUTABLE
    assert body == wasm.with_name(wasm.name + ".br").read_bytes()  # the bytes made at set-up, not on the fly
    with urllib.request.urlopen(f"{app_url}config", timeout=60) as response:
        head = json.load(response)["head"]  # what Gradio puts into the page's <head>
    assert head == f'<script type="module" src="{serving.script_url()}"></script>'


def test_old_published_files_are_swept_but_not_the_one_in_use(tmp_path):
    import os
    import time

    folder = tmp_path / "models"
    folder.mkdir()
    old, used, fresh = folder / "generator-a.onnx", folder / "generator-b.onnx", folder / "generator-c.onnx"
    for path in (old, used, fresh, folder / "generator-a.onnx.br", folder / "generator-b.onnx.br"):
        path.write_bytes(b"x")
    day_ago = time.time() - 2 * 24 * 3600
    for path in folder.iterdir():
        os.utime(path, (day_ago, day_ago))
    os.utime(fresh, None)
    assets.touch(used)  # the page model in use is touched whenever it is described
    gone = assets.sweep(folder, 24 * 3600)
    assert sorted(p.name for p in gone) == ["generator-a.onnx", "generator-a.onnx.br"]
    assert sorted(p.name for p in folder.iterdir()) == ["generator-b.onnx", "generator-b.onnx.br", "generator-c.onnx"]
