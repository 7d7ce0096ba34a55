"""GAN Atelier: assembles the Explore, Train and Style tabs into one Gradio app.

`python app.py` fetches missing weights (lazily, as Hugging Face Spaces runs no Makefile) and
serves on http://127.0.0.1:7860 (0.0.0.0 on Spaces). All logic lives in ui/ (widgets) and in
the engines gan/ and style/.
"""

from __future__ import annotations

import logging
import os

from common import zerogpu

zerogpu.prepare()  # on a ZeroGPU Space, `spaces` must patch torch before anything probes CUDA

import gradio as gr

from ui import files
from ui.context import AppContext
from ui.explore import build_explore_tab
from ui.style import build_style_tab
from ui.train import build_train_tab
from web import assets, serving

TITLE = "GAN Atelier"
INTRO = ("Play with generative image models: explore a pretrained DCGAN's latent space, "
         "watch a GAN learn from your own images, and paint photos in the style of a painting.")


def build_demo(ctx: AppContext | None = None) -> gr.Blocks:
    """Build the whole app (nothing is launched)."""
    ctx = ctx or AppContext()
    # delete_cache: every hour, drop cached files older than an hour (uploads, results); ui/files.py
    # relies on this schedule for its promise that a named file stays readable for an hour.
    with gr.Blocks(title=TITLE, delete_cache=files.DELETE_CACHE) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Tabs() as tabs:
            with gr.Tab("Explore", id="explore"):
                explore = build_explore_tab(ctx)
            with gr.Tab("Train", id="train"):
                train = build_train_tab(ctx, explore=explore, tabs=tabs)
            with gr.Tab("Style", id="style"):
                build_style_tab(ctx)
        demo.load(explore.on_start, outputs=explore.start_outputs, api_name="explore_start")
        train.browser_state.render()
        demo.load(train.on_load, train.load_inputs, train.load_outputs, api_name="train_restore")

        def on_unload(request: gr.Request) -> None:
            ctx.sessions.close(request.session_hash)

        demo.unload(on_unload)
    return demo


MAX_UPLOAD = "500mb"  # per file; ingest applies its own finer caps


def serve(demo: gr.Blocks, server_name: str, server_port: int, in_page: bool | None = None,
          **launch_kwargs) -> None:
    """Enable the queue and launch with the app's limits (used by main() and the tests).
    in_page: Explore draws slider moves in the browser (default: unless $ATELIER_IN_PAGE is 0)."""
    # show_error: the message of every refused input reaches the visitor and API clients.
    demo.queue(default_concurrency_limit=4, max_size=64)
    if serving.in_page_enabled() if in_page is None else in_page:
        # Only the runtime's and the published files' folders become public; a middleware serves them
        # pre-compressed with immutable caching, and the page's script goes into the head.
        gr.set_static_paths(assets.public_roots())
        launch_kwargs = {"head": serving.head_html(), "app_kwargs": {"middleware": [serving.middleware()]},
                         **launch_kwargs}
    demo.launch(server_name=server_name, server_port=server_port, max_file_size=MAX_UPLOAD,
                footer_links=["api", "gradio", "settings"], show_error=True, **launch_kwargs)


def main() -> None:
    """Build and launch on 127.0.0.1:7860 (0.0.0.0 on Hugging Face Spaces)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    on_spaces = os.environ.get("SYSTEM") == "spaces"
    host = "0.0.0.0" if on_spaces else os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    serve(build_demo(), host, int(os.environ.get("GRADIO_SERVER_PORT", "7860")))


if __name__ == "__main__":
    main()
