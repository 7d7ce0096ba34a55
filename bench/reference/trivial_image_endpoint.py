"""The floor of a Gradio round trip: an endpoint that only returns a fixed 256 px PNG.

It was measured before Explore had any code (~37 ms p50 over plain HTTP on the 2-core machine);
the latency benchmark launches it beside the app so both are timed under the same load.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import gradio as gr
from PIL import Image


def build_trivial_demo() -> gr.Blocks:
    """A Blocks app with one endpoint, /generate, returning the same 256 px PNG file every call."""
    folder = Path(tempfile.mkdtemp(prefix="trivial-endpoint-"))
    picture = folder / "picture.png"
    buf = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").resize((256, 256)).save(buf, format="PNG")
    picture.write_bytes(buf.getvalue())
    with gr.Blocks() as demo:
        value = gr.Slider(0, 1, value=0.5, label="value")
        image = gr.Image(format="png", type="filepath")
        value.input(lambda _v: str(picture), inputs=value, outputs=image, api_name="generate",
                    show_progress="hidden")
    demo.allowed_paths = [str(folder)]
    return demo
