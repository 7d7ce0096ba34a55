"""Explore in the page: the hidden values and the events that let the browser draw slider moves itself.

web/explore.js does the drawing; this module gives it what it needs through Gradio:
- `Carriers.model` (hidden gr.JSON): the model's description from web.pagemodels (ONNX and runtime
  URLs, shape, GANSpace directions), sent when the model changes;
- `Carriers.latent` (hidden gr.JSON): the current z before edits (the seed's, or a projection's), the
  server's raw-z edits and the model's key, sent whenever the server sets the picture (start, seed,
  reset, recipe, model, projection, grid pick); slider moves never change z, so /generate omits it;
- `Scrub.ends` (hidden gr.JSON): the z of the interpolation's seeds, for the scrub slider `t`;
- hidden buttons whose click is the server render (`/generate`, `/scrub`): the page clicks them when
  it cannot draw (model not loaded yet, no WASM) and, for the picture, once after the sliders rest.
Slider events are `fn=None, js=...`: they send no request. JSON floats are the exact float32 values.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from gan.explorer import latent as L
from ui.forms import on

PICTURE_ID, SYNC_ID = "explore-picture", "explore-sync"
SCRUB_ID, SCRUB_SYNC_ID = "explore-scrub", "explore-scrub-sync"
STATUS = '<div id="explore-page-status-text" class="atelier-page-status"></div>'


@dataclass
class Carriers:
    """The main picture's hidden carriers."""

    model: gr.JSON
    latent: gr.JSON
    sync: gr.Button


@dataclass
class Scrub:
    """The interpolation's scrub slider, its picture and its carriers."""

    ends: gr.JSON
    t: gr.Slider
    image: gr.Image
    sync: gr.Button


def build_carriers() -> Carriers:
    """The line saying where slider moves are drawn (filled in by the page) and the hidden carriers."""
    gr.HTML(STATUS, padding=False)
    return Carriers(model=gr.JSON(visible=False, elem_id="explore-page-model",
                                  label="In-page model: ONNX and runtime URLs, shape, directions"),
                    latent=gr.JSON(visible=False, elem_id="explore-page-latent",
                                   label="In-page latent: z before edits, raw-z edits, model key"),
                    sync=gr.Button("Render on the server", visible="hidden", elem_id=SYNC_ID))


def build_scrub() -> Scrub:
    """The scrub slider and its picture (inside the interpolation panel)."""
    ends = gr.JSON(visible=False, elem_id="explore-page-ends", label="The interpolation seeds' z, for the scrub")
    with gr.Row():
        t = gr.Slider(0.0, 1.0, value=0.0, step=0.005, label="Scrub along the path (t): drawn live",
                      elem_id="explore-t", scale=3)
        image = gr.Image(label="At t", format="png", type="filepath", interactive=False, height=200,
                         elem_id=SCRUB_ID, scale=1, buttons=[])
    return Scrub(ends=ends, t=t, image=image,
                 sync=gr.Button("Render t on the server", visible="hidden", elem_id=SCRUB_SYNC_ID))


def latent_payload(key: str, recipe: L.Recipe, nz: int, edits: dict[int, float]) -> dict:
    """What Carriers.latent holds: the model key, z before edits (exact float32 values), raw-z edits."""
    z = L.base_latent(recipe, nz)[0]
    return {"key": key, "z": z.tolist(), "edits": {str(i): float(v) for i, v in edits.items()}}


def ends_payload(key: str, nz: int, end_seed: int, start_seed: int | None) -> dict:
    """What Scrub.ends holds: the z of the interpolation's end seed and, if set, of its start seed."""
    end = L.sample_z(int(end_seed), nz)[0].tolist()
    start = None if start_seed is None else L.sample_z(int(start_seed), nz)[0].tolist()
    return {"key": key, "end_z": end, "start_z": start}


def js_call(kind: str, view: str, image_id: str, sync_id: str, fields: list[tuple[str, int]],
            settle: bool = False) -> str:
    """A `js=` handler: gathers the inputs into named fields and calls window.atelierExplore.<kind>;
    without the module (it failed to load) it clicks the server render instead."""
    parts, i = [], 0
    for name, count in fields:
        parts.append(f"{name}: v[{i}]" if count == 1 else f"{name}: v.slice({i}, {i + count})")
        i += count
    values = "{" + ", ".join(parts) + "}"
    extra = f", {str(settle).lower()}" if kind == "input" else ""
    return (f"(...v) => {{ const A = window.atelierExplore; "
            f"if (A) A.{kind}('{view}', '{image_id}', '{sync_id}', {values}{extra}); "
            f"else if ('{kind}' === 'input') document.getElementById('{sync_id}')?.click(); return []; }}")


def wire_js(triggers: list, inputs: list, fields: list[tuple[str, int]], kind: str, view: str,
            settle: bool = False) -> None:
    """A browser-only event: no handler, so no request (Gradio makes it private); `kind` is "input"
    (a slider moved) or "latent" (the server set the picture). The js function gets the inputs in order."""
    image_id, sync_id = (PICTURE_ID, SYNC_ID) if view == "main" else (SCRUB_ID, SCRUB_SYNC_ID)
    named = {f"v{i}": widget for i, widget in enumerate(inputs)}  # names only order them: nothing reads them
    on(triggers, None, inputs=named, api_name=f"page_{kind}_{view}", js=js_call(kind, view, image_id, sync_id,
                                                                                 fields, settle))
