"""GAN Atelier: assembles the Explore, Train and Style tabs into one Gradio app.

`python app.py` fetches missing weights (lazily, as Hugging Face Spaces runs no Makefile) and
serves on http://127.0.0.1:7860 (0.0.0.0 on Spaces). All logic lives in ui/ (widgets) and in
the engines gan/ and style/.
"""

from __future__ import annotations

import logging
import os

import gradio as gr

from ui.context import AppContext
from ui.explore import build_explore_tab
from ui.style import build_style_tab
from ui.train import build_train_tab

TITLE = "GAN Atelier"
INTRO = ("Play with generative image models: explore a pretrained DCGAN's latent space, "
         "watch a GAN learn from your own images, and paint photos in the style of a painting.")


def build_demo(ctx: AppContext | None = None) -> gr.Blocks:
    """Build the whole app (nothing is launched)."""
    ctx = ctx or AppContext()
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Tabs() as tabs:
            with gr.Tab("Explore", id="explore"):
                explore = build_explore_tab(ctx)
            with gr.Tab("Train", id="train"):
                build_train_tab(ctx, explore=explore, tabs=tabs)
            with gr.Tab("Style", id="style"):
                build_style_tab(ctx)

        def on_unload(request: gr.Request) -> None:
            ctx.sessions.close(request.session_hash)

        demo.unload(on_unload)
    return demo


def main() -> None:
    """Build and launch with the queue enabled."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    on_spaces = os.environ.get("SYSTEM") == "spaces"
    demo = build_demo()
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name="0.0.0.0" if on_spaces else os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))


if __name__ == "__main__":
    main()
