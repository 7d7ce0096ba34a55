"""GAN Atelier: assembles the Explore, Train and Style tabs into one Gradio app.

`python app.py` fetches missing weights (lazily, as Hugging Face Spaces runs no Makefile) and
serves on http://127.0.0.1:7860 (0.0.0.0 on Spaces); `python app.py --mcp` (or GRADIO_MCP_SERVER=true)
also serves generate, grid, interpolate, stylize and stylize_instant as MCP tools at /gradio_api/mcp/.
All logic lives in ui/ (widgets, one idiom: ui/forms.py) and in the engines gan/ and style/.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass

from common import zerogpu

zerogpu.prepare()  # on a ZeroGPU Space, `spaces` must patch torch before anything probes CUDA

import gradio as gr

from ui import explore, files, style, train
from ui.context import AppContext
from web import assets, serving

TITLE = "GAN Atelier"
INTRO = ("Play with generative image models: explore a pretrained DCGAN's latent space, "
         "watch a GAN learn from your own images, and paint photos in the style of a painting.")
MCP_ENV = "GRADIO_MCP_SERVER"  # Gradio's own switch: "true" serves the MCP server too (`python app.py --mcp`)


@dataclass
class Tabs:
    """The three tabs' handlers (each holds its widgets as `.v`)."""

    explore: explore.Explore
    train: train.Train
    style: style.Style


def build_tabs(ctx: AppContext) -> Tabs:
    """The three tabs, built and wired inside the current gr.Blocks (build_demo adds the page-load events)."""
    with gr.Tabs() as tabs:
        with gr.Tab("Explore", id="explore"):
            explorer = explore.build_explore_tab(ctx)
        with gr.Tab("Train", id="train"):
            trainer = train.build_train_tab(ctx, explorer, tabs)
        with gr.Tab("Style", id="style"):
            stylist = style.build_style_tab(ctx)
    return Tabs(explorer, trainer, stylist)


def build_demo(ctx: AppContext | None = None) -> gr.Blocks:
    """Build the whole app (nothing is launched)."""
    ctx = ctx or AppContext()
    # delete_cache: every hour, drop cached files older than an hour (uploads, results); ui/files.py
    # relies on this schedule for its promise that a named file stays readable for an hour.
    with gr.Blocks(title=TITLE, delete_cache=files.DELETE_CACHE) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        tabs = build_tabs(ctx)
        explore.wire_page_load(tabs.explore, demo)
        train.wire_page_load(tabs.train, demo)
        style.wire_page_load(tabs.style, demo)

        def on_unload(request: gr.Request) -> None:
            ctx.sessions.unload(request.session_hash)  # closed after a grace period unless it comes back

        demo.unload(on_unload)
    return demo


MAX_UPLOAD = "500mb"  # per file; ingest applies its own finer caps
# Gradio fires `demo.unload` when a client's heartbeat connection drops. gradio_client reads that stream with
# a 20 s timeout and gives up for good on the first one; Gradio's default of one heartbeat every 15 s lets an
# event-loop stall of just over 5 s drop a live client, every 5 s needs one of over 15 s (docs/reliability.md:
# one stall of 8 s or 12 s unloaded 2 or 5-6 of 12 live clients at 15 s, none at 5 s). The grace period in
# ui/context.py covers the longer stalls.
HEARTBEAT_S = "5"


def serve(demo: gr.Blocks, server_name: str, server_port: int, mcp: bool | None = None, in_page: bool | None = None,
          **launch_kwargs) -> None:
    """Enable the queue and launch with the app's limits (used by main() and the tests).

    `mcp`: also serve the API's tools over MCP at /gradio_api/mcp/ (None: Gradio reads $GRADIO_MCP_SERVER).
    `in_page`: Explore draws slider moves in the browser (None: yes, unless $ATELIER_IN_PAGE is 0).
    """
    # show_error: the message of every refused input reaches the visitor and API clients.
    os.environ.setdefault("GRADIO_HEARTBEAT_INTERVAL", HEARTBEAT_S)  # read by Gradio per heartbeat connection
    demo.queue(default_concurrency_limit=4, max_size=64)
    if serving.in_page_enabled() if in_page is None else in_page:
        # Only the runtime's and the published files' folders become public; a middleware serves them
        # pre-compressed with immutable caching, and the page's script goes into the head.
        gr.set_static_paths(assets.public_roots())
        launch_kwargs = {"head": serving.head_html(), "app_kwargs": {"middleware": [serving.middleware()]},
                         **launch_kwargs}
    demo.launch(server_name=server_name, server_port=server_port, max_file_size=MAX_UPLOAD,
                footer_links=["api", "gradio", "settings"], show_error=True, mcp_server=mcp, **launch_kwargs)


def main(argv: list[str] | None = None) -> None:
    """Build and launch on 127.0.0.1:7860 (0.0.0.0 on Hugging Face Spaces); `--mcp` also serves MCP."""
    parser = argparse.ArgumentParser(description=TITLE)
    parser.add_argument("--mcp", action="store_true", default=None,
                        help=f"also serve the stateless API calls as MCP tools (or set {MCP_ENV}=true)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    on_spaces = os.environ.get("SYSTEM") == "spaces"
    host = "0.0.0.0" if on_spaces else os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    serve(build_demo(), host, int(os.environ.get("GRADIO_SERVER_PORT", "7860")), mcp=args.mcp)


if __name__ == "__main__":
    main()
