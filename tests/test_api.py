"""The public API: every visible endpoint has named, described parameters; the main ones work by keyword;
two clients are two sessions; the MCP server is off by default and, when on, lists the five tools."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan.explorer.model import Generator
from tests.conftest import free_port

pytestmark = pytest.mark.integration
GENERATED = re.compile(r"^(a\d+|arg\d+|param(eter)?_\d+|value_\d+|input_\d+)$")  # names Gradio makes up
ASSETS = Path(__file__).resolve().parents[1] / "assets"
TOOLS = {"generate", "grid", "interpolate", "stylize", "stylize_instant"}


def visible_endpoints(client) -> dict:
    return client.view_api(return_format="dict", print_info=False)["named_endpoints"]


def test_every_visible_endpoint_has_named_described_parameters(client):
    endpoints = visible_endpoints(client)
    assert {"/generate", "/grid", "/interpolate", "/stylize", "/upload", "/start", "/stop"} <= set(endpoints)
    for api, spec in endpoints.items():
        assert spec.get("description", "").strip(), f"{api} has no description"
        names = [p["parameter_name"] for p in spec["parameters"]]
        assert not [n for n in names if not n or GENERATED.match(n)], f"{api}: generated names in {names}"
        assert len(names) == len(set(names)), f"{api}: duplicate names in {names}"
        labels = [r["label"] for r in spec["returns"]]
        assert not [n for n in labels if GENERATED.match(n)], f"{api}: generated return labels {labels}"
    internal = {"/generate_after_dice", "/generate_after_pick", "/explore_start", "/train_restore", "/retry_start",
                "/halve_batch", "/resume_last", "/style_estimate_after_run"}
    assert not internal & set(endpoints), "internal chain steps must be hidden from the API page"


@pytest.mark.weights
def test_main_endpoints_by_keyword(client, tmp_path):
    from gradio_client import handle_file

    image, recipe, _edits = client.predict(seed=5, api_name="/generate")  # everything else at its default
    assert Image.open(image).size == (512, 512) and json.loads(recipe)["seed"] == 5
    gallery, seeds = client.predict(seed=3, truncation=0.7, direction_2=1.0, size="256", api_name="/grid")
    assert [item["caption"] for item in gallery[:2]] == ["seed 3", "seed 4"]
    assert seeds[:2] == [{"seed": 3, "z": None}, {"seed": 4, "z": None}]
    gif, _strip, files = client.predict(seed=3, end_seed=9, frames=3, fps=5, method="lerp", api_name="/interpolate")
    assert Image.open(gif).n_frames == 4 and len(files) == 3  # 3 frames played forth and back
    out = client.predict(content=handle_file(str(ASSETS / "content" / "astronaut.jpg")),
                         style_1=handle_file(str(ASSETS / "styles" / "hokusai_great_wave.jpg")), iterations=2,
                         size=64, backbone="vgg16-hed", api_name="/stylize")  # the tab's smallest size
    assert "Done" in out[3] and max(Image.open(out[4]).size) == 64


def tiny_images(folder: Path, n: int = 4) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = [folder / f"{i}.png" for i in range(n)]
    for path in paths:
        Image.fromarray(rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)).save(path)
    return paths


def test_train_by_keyword(app_url, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(app_url, verbose=False)
    report = client.predict(files=[handle_file(str(p)) for p in tiny_images(tmp_path)], image_size=32,
                            channels="grey", api_name="/upload")
    assert "4 images ready" in report[0]
    job = client.submit(image_size=32, channels="grey", steps=2, batch_size=4, ngf=4, ndf=4, nz=8, api_name="/start")
    final = job.result(timeout=120)  # 2 steps: the stream ends by itself
    assert "Done" in final[0] and "step 2 / 2" in final[1]
    assert "Done" in client.predict(api_name="/stop")[0]
    client.close()


def tiny_model_zip(tmp_path: Path, config) -> str:
    folder = tmp_path / "tiny"
    Generator(config).save_pretrained(folder)
    return shutil.make_archive(str(tmp_path / "tiny"), "zip", folder)


def test_two_clients_get_two_sessions(app_url, tmp_path, tiny_config):
    """gr.Request reaches the handlers: one client's images and models are not another client's."""
    from gradio_client import Client, handle_file

    owner, stranger = Client(app_url, verbose=False), Client(app_url, verbose=False)
    owner.predict(files=[handle_file(str(p)) for p in tiny_images(tmp_path)], image_size=32, api_name="/upload")
    with pytest.raises(Exception, match="Upload some images first"):
        stranger.predict(image_size=32, steps=1, batch_size=4, ngf=4, ndf=4, nz=8, api_name="/start")
    label = owner.predict(files=[handle_file(tiny_model_zip(tmp_path, tiny_config))], api_name="/upload_model")["value"]
    image, recipe, _ = owner.predict(model=label, seed=1, size="256", api_name="/generate")
    assert json.loads(recipe)["model"] == label and Image.open(image).size == (256, 256)
    with pytest.raises(Exception, match=r"not in the list of choices|nknown model"):
        stranger.predict(model=label, seed=1, size="256", api_name="/generate")
    owner.close()
    stranger.close()


def test_handlers_that_take_values_by_keyword_declare_the_request():
    """A `**values` (or `*args`) handler gets gr.Request only through a declared positional parameter:
    `request=None` after them would silently give every visitor one anonymous session."""
    import inspect

    import gradio as gr

    from app import build_demo

    demo = build_demo()
    checked = 0
    for block_fn in demo.fns.values():
        params = list(inspect.signature(block_fn.fn).parameters.values()) if block_fn.fn else []
        if not any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params):
            continue
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        hints = {p.name: p.annotation for p in positional}
        assert any(h in (gr.Request, "gr.Request") for h in hints.values()), f"/{block_fn.api_name} lacks request"
        checked += 1
    assert checked >= 8  # generate (x3), grid, interpolate, upload, start (x2), resume, stylize ...


def test_mcp_is_off_by_default(app_url):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"{app_url}gradio_api/mcp/schema", timeout=30)
    assert err.value.code == 404


async def list_and_call(url: str) -> tuple[list, object]:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async with streamablehttp_client(url) as (read, write, _), ClientSession(read, write) as session:
        await session.initialize()
        tools = (await session.list_tools()).tools
        called = await session.call_tool("generate", {"seed": 4, "size": "256"})
    return tools, called


@pytest.mark.weights
def test_mcp_server_lists_the_five_tools(tmp_path):
    from app import build_demo, serve
    from ui.context import AppContext, SessionStore

    demo = build_demo(AppContext(sessions=SessionStore(root=tmp_path)))
    port = free_port()
    serve(demo, "127.0.0.1", port, mcp=True, prevent_thread_lock=True, quiet=True)
    try:
        # on a thread of its own: the session's Playwright fixture, once started, keeps an event loop running
        # in this thread, where asyncio.run refuses to start another
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            tools, called = pool.submit(asyncio.run, list_and_call(f"http://127.0.0.1:{port}/gradio_api/mcp/")).result()
    finally:
        demo.close()
    by_name = {tool.name: tool for tool in tools}
    assert set(by_name) == TOOLS
    for tool in tools:
        assert tool.description.strip() and not [n for n in tool.inputSchema["properties"] if GENERATED.match(n)]
    assert {"seed", "truncation", "direction_1", "raw_page"} <= set(by_name["generate"].inputSchema["properties"])
    assert {"content", "style_1", "iterations"} <= set(by_name["stylize"].inputSchema["properties"])
    text = " ".join(getattr(item, "text", "") for item in called.content)
    assert not called.isError and "seed-4.png" in text and '"seed": 4' in text  # the picture and its recipe
