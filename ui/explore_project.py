"""Explore: "your photo in the latent space" (widgets <-> gan.explorer.projection).

`/project` (image, model, steps) streams the best latent so far as a picture with a progress line,
then the final picture and its recipe (a Recipe holding the projected z). The Explore tab then
loads that recipe like any other (ui/explore.py chains /load_recipe), so every slider, the grid and
the interpolation work on it. `/stop_projection` ends a run early with the best latent so far.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr
from PIL import Image

from common.backbones import BackboneUnavailable
from gan.explorer import latent as L
from gan.explorer import projection as P
from ui.files import publish

CONFIG = P.ProjectionConfig()
STOP_KEY = "explore_projection_stop"
HONEST = ("**What to expect.** The generator can only draw what it learned: a 64 px DCGAN of "
          "synthetic faces draws small, centred, frontal faces. A close-up portrait comes back as a "
          "face with roughly your pose, framing, skin and hair colours and lighting; identity, glasses, "
          "text, hands and busy backgrounds do not survive, and a photo of something else (a cat, a cup) "
          "becomes the face whose colours and layout come closest. Crop your photo around the face. "
          "With your own trained model, it finds the closest picture that model can make.")


@dataclass
class ProjectPanel:
    """The projection panel."""

    photo: gr.Image
    steps: gr.Slider
    run: gr.Button
    stop: gr.Button
    status: gr.Markdown
    result: gr.Image


def build_panel() -> ProjectPanel:
    """The panel's widgets (inside the Explore tab)."""
    with gr.Accordion("Your photo in the latent space (projection)", open=False):
        gr.Markdown(HONEST)
        with gr.Row():
            photo = gr.Image(label="Your photo (centre-cropped to a square)", type="pil",
                             sources=["upload", "clipboard"], height=260, elem_id="explore-photo")
            result = gr.Image(label="Closest picture the model can make", type="filepath", interactive=False,
                              height=260, elem_id="explore-projection", format="png")
        with gr.Row():
            steps = gr.Slider(10, CONFIG.steps_max, value=CONFIG.steps, step=10, label="Steps (more: closer, slower)",
                              elem_id="explore-projection-steps")
            run = gr.Button("Find my photo in the latent space", variant="primary")
            stop = gr.Button("Stop projecting", variant="stop")
        status = gr.Markdown(elem_id="explore-projection-status", label="Progress")
    return ProjectPanel(photo=photo, steps=steps, run=run, stop=stop, status=status, result=result)


def progress_line(record: P.ProjectionProgress, starts: int) -> str:
    """A progress record in words."""
    what = "Stopped" if record.stopped else "Done" if record.done else "Step"
    return (f"{what} {record.step}/{record.steps} · best of {starts} starts · pixel distance "
            f"{record.pixel:.4f} · perceptual {record.perceptual:.3f} · {record.elapsed_s:.1f} s")


class Projector:
    """The /project and /stop_projection handlers, bound to Explore's model loader and widgets."""

    def __init__(self, ctx, panel: ProjectPanel, recipe_box: gr.Code, load_model: Callable) -> None:
        self.ctx, self.panel, self.recipe_box, self.load_model = ctx, panel, recipe_box, load_model

    def stop_event(self, request: gr.Request | None) -> threading.Event:
        """This session's stop flag (a fresh one for each run)."""
        session = self.ctx.sessions.get(request.session_hash if request else None)
        event = session.extras[STOP_KEY] = threading.Event()
        return event

    def picture(self, loaded, z, name: str) -> str:
        """A latent's picture at 256 px (nearest), published; its path."""
        image = L.generate(loaded.G, z.to(next(loaded.G.parameters()).device))[0]
        return publish(L.png_bytes(L.to_pil(image, 256, "nearest")), name)

    def project(self, request: gr.Request, image: Image.Image | None, model: str, steps: float) -> Iterator[dict]:
        """Photo -> the closest picture so far and a progress line, streamed; the last also sets the recipe."""
        if image is None:
            raise gr.Error("Upload a photo first.")
        loaded = self.load_model(model, request)
        panel = self.panel
        try:
            config = P.ProjectionConfig(steps=int(steps))
            for record in P.project(loaded.G, image, config, self.stop_event(request)):
                out: dict[Any, Any] = {panel.status: progress_line(record, config.starts)}
                if record.done:
                    recipe = L.Recipe(model=model, z=tuple(record.z[0].tolist()), size=512)
                    out[self.recipe_box] = recipe.to_json()
                name = "projection.png" if record.done else "projecting.png"
                out[panel.result] = self.picture(loaded, record.z, name)
                yield out
        except (ValueError, BackboneUnavailable, OSError) as err:
            raise gr.Error(f"Cannot project this photo: {err}") from err

    def stop(self, request: gr.Request) -> dict:
        """End this session's projection early (it keeps the best latent so far)."""
        event = self.ctx.sessions.get(request.session_hash if request else None).extras.get(STOP_KEY)
        if event is not None:
            event.set()
        return {self.panel.status: "Stopping…"}
