"""Explore tab: a pretrained DCGAN's latent space under sliders (widgets <-> gan.explorer.latent / zoo).

The slider path is kept short: the model and its directions come from zoo's cached loader, the handler
renders one 64 px image under `inference_mode`, publishes its PNG bytes (ui/files.py) and returns the path,
so the served file is exactly `recipe_png`'s bytes. Slider moves go to the browser first (ui/explore_page.py,
web/explore.js): once the model is loaded there it draws them without a request, and the server renders
(`/generate`, `trigger_mode="always_last"`, no progress overlay) when the sliders rest, or at once before.
The widgets are in ui/explore_view.py; the idiom (forms, `on`, updates by widget) is ui/forms.py's.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr

from common.device import intra_op_threads
from gan.explorer import latent as L
from gan.explorer import zoo
from gan.explorer.model import ModelLoadError
from ui import explore_page, explore_project
from ui.context import AppContext
from ui.explore_paint import build_paint_it
from ui.explore_view import LIMITS, ExploreView, build_view, direction_label
from ui.files import publish, publish_image
from ui.forms import Values, on
from web.pagemodels import PageModels
from weights.fetch import WeightsUnavailable

USER_ERRORS = (ValueError, ModelLoadError, WeightsUnavailable, zoo.UnknownModel, zoo.HubUnavailable)
HELP = ("Pick a seed (or roll the dice), then move the sliders. Directions are the main axes of "
        "variation the generator has learned (GANSpace); the percentage is each one's share of the "
        "variance of the first layer's activations. Raw z edits single latent components.")


class Explore:
    """The tab's handlers, bound to the app context and the tab's widgets."""

    def __init__(self, ctx: AppContext, view: ExploreView) -> None:
        self.ctx, self.v = ctx, view
        self.pages = PageModels()  # which models the browser can draw itself (their ONNX exports)

    def choices(self, session_hash: str | None) -> list[str]:
        """Pretrained ids first, then the session's own models (trained, uploaded, from the Hub)."""
        return zoo.pretrained_ids() + list(self.ctx.sessions.models(session_hash))

    def load(self, model_id: str, request: gr.Request | None) -> zoo.LoadedModel:
        """The loaded model for a picker value, or a gr.Error naming the fix."""
        try:
            return zoo.load(zoo.resolve(model_id, self.ctx.sessions.models(_session(request))), self.ctx.device)
        except USER_ERRORS as err:
            raise gr.Error(str(err)) from err

    def recipe(self, r: Values, nz: int) -> tuple[L.Recipe, dict[int, float]]:
        """The recipe form's values -> Recipe and the raw-z edits of every page merged."""
        try:
            edits = L.merge_raw_edits(parse_edits(r.raw_edits), int(r.raw_page or 0), list(r.raw), nz)
            recipe = L.Recipe(model=r.model, seed=int(r.seed or 0), truncation=float(r.truncation),
                              directions=tuple(float(v) for v in r.directions), raw=tuple(edits.items()),
                              upscale=r.upscale, size=int(r.size), z=parse_z(r.z))
        except (ValueError, TypeError) as err:
            raise gr.Error(str(err)) from err
        return recipe, edits

    def render(self, recipe: L.Recipe, loaded: zoo.LoadedModel) -> str:
        """Recipe -> path of its PNG."""
        try:
            with intra_op_threads(LIMITS.cpu_threads if self.ctx.device.type == "cpu" else None):
                png = L.recipe_png(loaded.G, recipe, loaded.directions)
        except ValueError as err:
            raise gr.Error(str(err)) from err
        return publish(png, f"seed-{recipe.seed}.png")

    def generate(self, request: gr.Request, **given: Any) -> dict:
        """Sliders, seed and display options -> the picture, its recipe JSON and the merged raw-z edits."""
        r = self.v.recipe.read(given)
        loaded = self.load(r.model, request)
        recipe, edits = self.recipe(r, loaded.G.cfg.nz)
        return {self.v.picture.image: self.render(recipe, loaded), self.v.picture.recipe: recipe.to_json(),
                self.v.recipe.raw_edits: json.dumps(edits)}

    def new_latent(self, request: gr.Request, **given: Any) -> dict:
        """As generate, and the new z before edits for the page (a grid pick; slider moves never change z)."""
        r = self.v.recipe.read(given)
        loaded = self.load(r.model, request)
        recipe, edits = self.recipe(r, loaded.G.cfg.nz)
        return {self.v.picture.image: self.render(recipe, loaded), self.v.picture.recipe: recipe.to_json(),
                self.v.recipe.raw_edits: json.dumps(edits), self.v.page.latent: self.latent(loaded, recipe, edits)}

    def new_seed(self, request: gr.Request, **given: Any) -> dict:
        """A seed typed or rolled: its z replaces a projected one."""
        return {**self.new_latent(request, **{**given, "z": ""}), self.v.recipe.z: ""}

    def latent(self, loaded: zoo.LoadedModel, recipe: L.Recipe, edits: dict[int, float]) -> dict:
        """The page's latent carrier for a recipe."""
        return explore_page.latent_payload(self.pages.fingerprint(loaded), recipe, loaded.G.cfg.nz, edits)

    def ends(self, request: gr.Request, model: str, end_seed: float, start_seed: float) -> dict:
        """The interpolation's seeds' z, for the page's scrub slider."""
        loaded = self.load(model, request)
        start = None if start_seed in (None, "", -1) else int(start_seed)
        payload = explore_page.ends_payload(self.pages.fingerprint(loaded), loaded.G.cfg.nz, int(end_seed or 0), start)
        return {self.v.interpolation.scrub.ends: payload}

    def scrub(self, request: gr.Request, t: float, end_seed: float, start_seed: float, method: str,
              keep_edits: bool, **given: Any) -> dict:
        """The picture at fraction t of the interpolation's path, rendered on the server (256 px)."""
        r = self.v.recipe.read(given)
        loaded = self.load(r.model, request)
        recipe, _ = self.recipe(r, loaded.G.cfg.nz)
        try:
            job = L.Interpolation(start=recipe, end_seed=int(end_seed), method=method, keep_edits=bool(keep_edits),
                                  start_seed=None if start_seed in (None, "", -1) else int(start_seed))
            z = L.interpolation_point(loaded.G, job, float(t), loaded.directions)
        except (ValueError, TypeError) as err:
            raise gr.Error(str(err)) from err
        picture = L.to_pil(L.generate(loaded.G, z)[0], 256, recipe.upscale)
        return {self.v.interpolation.scrub.image: publish(L.png_bytes(picture), "scrub.png")}

    def dice(self) -> dict:
        """A fresh random seed."""
        return {self.v.recipe.seed: random.randint(0, 99_999)}

    def raw_page(self, request: gr.Request, raw_page: int, raw_edits: str, model: str) -> dict:
        """Show another page of raw-z components: relabel the sliders and show that page's deltas."""
        nz = self.load(model, request).G.cfg.nz
        try:
            first = int(raw_page)
            values = L.raw_edits_for_page(parse_edits(raw_edits), first, LIMITS.raw_per_page)
        except (ValueError, TypeError) as err:
            raise gr.Error(f"raw_page must be a z index and raw_edits a JSON object {{index: delta}}: {err}") from err
        return self.v.recipe.set(raw=[gr.update(value=v, label=f"z[{first + j}] +", visible=first + j < nz)
                                      for j, v in enumerate(values)])

    def show(self, recipe: L.Recipe, request: gr.Request | None) -> dict:
        """Every control set to `recipe` (sliders relabelled for its model), and its picture."""
        loaded = self.load(recipe.model, request)
        nz, share = loaded.G.cfg.nz, loaded.directions.variance_share.tolist()
        dirs = list(recipe.directions) + [0.0] * LIMITS.n_direction_sliders
        edits = dict(recipe.raw)
        first = min(edits, default=0) // LIMITS.raw_per_page * LIMITS.raw_per_page
        raw = L.raw_edits_for_page(edits, first, LIMITS.raw_per_page)
        updates = self.v.recipe.set(
            model=gr.update(value=recipe.model, choices=self.choices(_session(request))),
            seed=recipe.seed, truncation=recipe.truncation, upscale=recipe.upscale, size=str(recipe.size),
            directions=[gr.update(value=dirs[i], label=direction_label(i, share), visible=i < len(share))
                        for i in range(LIMITS.n_direction_sliders)],
            raw_page=gr.update(choices=L.raw_pages(nz, LIMITS.raw_per_page), value=first),
            raw=[gr.update(value=v, label=f"z[{first + j}] +", visible=first + j < nz) for j, v in enumerate(raw)],
            raw_edits=json.dumps(edits), z=json.dumps(list(recipe.z)) if recipe.z else "")
        page = {self.v.page.model: self.pages.describe(recipe.model, loaded),
                self.v.page.latent: self.latent(loaded, recipe, edits)}
        return {**updates, **page, self.v.shown_model: recipe.model, self.v.picture.image: self.render(recipe, loaded),
                self.v.picture.recipe: recipe.to_json()}

    def load_recipe(self, request: gr.Request, recipe: str) -> dict:
        """Recipe JSON -> every control, and the picture it describes."""
        try:
            parsed = L.Recipe.from_json(recipe or "")
        except (ValueError, TypeError) as err:
            raise gr.Error(f"Cannot load this recipe: {err}") from err
        return self.show(parsed, request)

    def load_recipe_file(self, request: gr.Request, recipe_file: str) -> dict:
        """A recipe .json file -> every control, and the picture."""
        return self.load_recipe(request, Path(recipe_file).read_text(encoding="utf-8"))

    def reset(self, request: gr.Request, model: str, seed: float, upscale: str, size: str) -> dict:
        """Back to the plain seed: truncation 1, every direction and raw-z delta 0."""
        try:
            recipe = L.Recipe(model=model, seed=int(seed or 0), upscale=upscale, size=int(size))
        except (ValueError, TypeError) as err:
            raise gr.Error(str(err)) from err
        return self.show(recipe, request)

    def select_model(self, request: gr.Request, model: str, shown_model: str | None, seed: float, upscale: str,
                     size: str) -> Any:
        """Switch model (picked, uploaded, from the Hub or the Train tab): relabel the sliders, reset edits."""
        if model == shown_model:  # the picker echoing a recipe load or a reset: nothing to switch
            return gr.skip()
        return self.reset(request, model, seed, upscale, size)

    def grid(self, request: gr.Request, **given: Any) -> dict:
        """16 seeds from the current one on (around a projection: it and 15 neighbours), with the current
        edits: gallery items and what each cell is (its seed, and its own z around a projection)."""
        r = self.v.recipe.read(given)
        loaded = self.load(r.model, request)
        recipe, _ = self.recipe(r, loaded.G.cfg.nz)
        seeds = [recipe.seed + i for i in range(LIMITS.grid_size)]
        try:
            bases = L.grid_bases(recipe, loaded.G.cfg.nz, LIMITS.grid_size, self.ctx.device)
            images = L.generate(loaded.G, L.edit_z(bases, recipe, loaded.directions))
        except ValueError as err:
            raise gr.Error(str(err)) from err
        if recipe.z:
            names = ["your projection"] + [f"near it · seed {s}" for s in seeds[1:]]
            cells = [{"seed": recipe.seed, "z": row.cpu().tolist()} for row in bases]
        else:
            names, cells = [f"seed {s}" for s in seeds], [{"seed": s, "z": None} for s in seeds]
        items = [(publish_image(L.to_pil(img, 128, recipe.upscale), f"seed-{s}.webp"), name)
                 for img, s, name in zip(images, seeds, names, strict=True)]
        return {self.v.grid.gallery: items, self.v.grid.seeds: cells}

    def pick(self, grid_seeds: list, evt: gr.SelectData) -> dict:
        """Clicking a grid cell makes it the current picture: its seed, and its own z if it has one."""
        cell = grid_seeds[evt.index] if grid_seeds else 0
        cell = cell if isinstance(cell, dict) else {"seed": int(cell), "z": None}
        return {self.v.recipe.seed: int(cell["seed"]), self.v.recipe.z: json.dumps(cell["z"]) if cell["z"] else ""}

    def interpolate(self, request: gr.Request, **given: Any) -> dict:
        """Current latent -> another seed: animated GIF, WebP, frame strip and the files to download."""
        r, j = self.v.recipe.read(given), self.v.interpolation.form.read(given)
        loaded = self.load(r.model, request)
        recipe, _ = self.recipe(r, loaded.G.cfg.nz)
        recipe = replace(recipe, size=min(recipe.size, 256))  # a 512 px GIF of 46 frames weighs megabytes
        try:
            job = L.Interpolation(start=recipe, end_seed=int(j.end_seed), frames=int(j.frames), method=j.method,
                                  keep_edits=bool(j.keep_edits), fps=int(j.fps),
                                  start_seed=None if j.start_seed in (None, "", -1) else int(j.start_seed))
        except (ValueError, TypeError) as err:
            raise gr.Error(str(err)) from err
        pictures = L.interpolate(loaded.G, job, loaded.directions)
        first, last = job.endpoints()
        stem = f"seed-{first.seed}-to-{last.seed}"
        gif = publish(L.animation_bytes(pictures, job.fps, "gif"), f"{stem}.gif")
        webp = publish(L.animation_bytes(pictures, job.fps, "webp"), f"{stem}.webp")
        strip = publish(L.png_bytes(L.frame_strip(pictures)), f"{stem}-strip.png")
        panel = self.v.interpolation
        return {panel.animation: gif, panel.strip: strip, panel.files: [gif, webp, strip]}

    def load_hub(self, request: gr.Request, repo_id: str) -> dict:
        """Download a mixin-format generator from the Hub and add it to this session's models."""
        return self.add_model(f"hub:{(repo_id or '').strip()}", lambda: zoo.download_from_hub(repo_id or ""),
                              request)

    def upload_model(self, request: gr.Request, files: list[str] | str | None) -> dict:
        """An uploaded zip (or config.json + model.safetensors) becomes one of this session's models."""
        files = [files] if isinstance(files, str) else list(files or [])
        if not files:
            raise gr.Error("Choose a .zip (or config.json and model.safetensors) to upload.")
        session = self.ctx.sessions.get(_session(request))
        name = Path(files[0]).stem[:40] or "model"
        dest = session.directory / "models" / f"{name}-{len(session.models)}"
        return self.add_model(f"upload:{name}", lambda: zoo.unpack_upload([Path(f) for f in files], dest),
                              request, cleanup=dest)

    def add_model(self, label: str, get_folder: Callable[[], Path], request: gr.Request | None,
                  cleanup: Path | None = None) -> dict:
        """Fetch / unpack a model folder, load it strictly, register it, select it in the picker."""
        try:
            folder = get_folder()
            zoo.load(folder, self.ctx.device)
        except USER_ERRORS as err:
            if cleanup is not None:
                shutil.rmtree(cleanup, ignore_errors=True)
            raise gr.Error(str(err)) from err
        self.ctx.sessions.add_model(_session(request), label, folder)
        gr.Info(f"Loaded {label}.")
        return {self.v.recipe.model: gr.update(choices=self.choices(_session(request)), value=label)}

    def start(self, request: gr.Request) -> dict:
        """Page load: this session's model choices, slider labels and the first picture."""
        return self.show(self.first_recipe(), request)

    def first_recipe(self) -> L.Recipe:
        """What the page opens on."""
        return L.Recipe(model=zoo.pretrained_ids()[0], size=LIMITS.size_default)

    def start_scrub(self, request: gr.Request) -> dict:
        """After the first picture: the scrub's seeds and its picture at t = 0 (the first picture, smaller)."""
        recipe = self.first_recipe()
        scrub = self.render(replace(recipe, size=256), self.load(recipe.model, request))
        return {**self.ends(request, recipe.model, self.v.interpolation.form.end_seed.value, -1),
                self.v.interpolation.scrub.image: scrub}


def parse_edits(text: str | None) -> dict[int, float]:
    """raw_edits' JSON text -> {z index: delta} (ValueError / TypeError if it is anything else)."""
    edits = json.loads(text or "{}")
    if not isinstance(edits, dict):
        raise ValueError('raw_edits must be a JSON object such as {"12": 1.5}.')
    return {int(i): float(d) for i, d in edits.items()}


def parse_z(text: str | None) -> tuple[float, ...]:
    """The z field's JSON list -> a recipe's z ("" or None: the seed's); ValueError for anything else."""
    if not text:
        return ()
    z = json.loads(text)
    if not isinstance(z, list):
        raise ValueError("z must be a JSON list of numbers (a projection's latent), or empty for the seed's.")
    return tuple(float(v) for v in z)


def _session(request: gr.Request | None) -> str | None:
    return request.session_hash if request else None


GENERATE_DOC = ("Render one face: a seed, truncation ψ, up to 8 GANSpace directions (direction_1 … in standard "
                "deviations) and raw-z deltas (raw_1 … add to z[raw_page] …, raw_edits to any z index); returns the "
                "PNG, its recipe JSON and the raw-z edits.")


PROJECT_DOC = ("Find the latent z whose picture comes closest to a photo (GAN inversion: pixel + VGG16 "
               "perceptual loss, best of several starts). Streams the closest picture so far and a progress line; "
               "the last message also carries the recipe (with its z) to pass to /load_recipe.")


def wire(ex: Explore, v: ExploreView) -> None:
    """Connect the tab's events (ui/forms.py's `on`: inputs by name, one api_name each)."""
    r, p = v.recipe, v.picture
    shown = [p.image, p.recipe, r.raw_edits]
    # What a recipe load, a reset or a model switch sets (the page's carriers too).
    everything = [r, v.shown_model, v.page.model, v.page.latent, p.image, p.recipe]
    fast = dict(show_progress="hidden", trigger_mode="always_last", concurrency_limit=2)
    # No ZeroGPU here: a 64 px DCGAN renders 16 images in ~50 ms on a CPU; a GPU call would queue longer.
    # Slider moves reach the browser (wire_page); it clicks the hidden sync button for a server render.
    on(v.page.sync.click, ex.generate, inputs=r, outputs=shown, api_name="generate", doc=GENERATE_DOC, tool=True,
       **fast)
    new_seed = [*shown, v.page.latent, r.z]
    on(r.seed.input, ex.new_seed, inputs=r, outputs=new_seed, api_name="generate_seed", **fast)
    dice = on(v.controls.dice.click, ex.dice, outputs=[r.seed], api_name="dice", show_progress="hidden")
    on(dice, ex.new_seed, inputs=r, outputs=new_seed, api_name="generate_after_dice", **fast)
    on(r.raw_page.input, ex.raw_page, inputs={"raw_page": r.raw_page, "raw_edits": r.raw_edits, "model": r.model},
       outputs=r.raw, api_name="raw_page", show_progress="hidden")
    settle = {"model": r.model, "seed": r.seed, "upscale": r.upscale, "size": r.size}
    # .change, not .input: the Train tab, uploads and the Hub set the picker's value too.
    on(r.model.change, ex.select_model, inputs={**settle, "shown_model": v.shown_model}, outputs=everything,
       api_name="select_model")
    on(p.reset.click, ex.reset, inputs=settle, outputs=everything, api_name="reset")
    on(p.load_recipe.click, ex.load_recipe, inputs={"recipe": p.recipe}, outputs=everything, api_name="load_recipe",
       doc="Set every control to a recipe (the JSON /generate returns) and render its picture.")
    on(p.recipe_file.upload, ex.load_recipe_file, inputs={"recipe_file": p.recipe_file}, outputs=everything,
       api_name="load_recipe_file", doc="The same as /load_recipe, from an uploaded recipe .json file.")
    on(v.models.hub_button.click, ex.load_hub, inputs={"repo_id": v.models.hub_repo}, outputs=[r.model],
       api_name="load_hub", doc="Add a DCGAN from the Hugging Face Hub (config.json + model.safetensors) to "
       "this session's models; returns the label to pass as `model`.")
    on(v.models.upload.upload, ex.upload_model, inputs={"files": v.models.upload}, outputs=[r.model],
       api_name="upload_model", doc="Add an uploaded model (.zip of a save_pretrained folder, or config.json + "
       "model.safetensors; pickles are refused) to this session's models; returns its label.")
    g = v.grid
    on(g.button.click, ex.grid, inputs=r, outputs=[g.gallery, g.seeds], api_name="grid", tool=True,
       doc=f"{LIMITS.grid_size} faces from `seed` on (seed, seed + 1, …) with the same edits, as a gallery.")
    pick = on(g.gallery.select, ex.pick, inputs={"grid_seeds": g.seeds}, outputs=[r.seed, r.z],
              api_name="pick_from_grid", show_progress="hidden")
    on(pick, ex.new_latent, inputs=r, outputs=[*shown, v.page.latent], api_name="generate_after_pick", **fast)
    i = v.interpolation
    on(i.button.click, ex.interpolate, inputs=[r, i.form], outputs=[i.animation, i.strip, i.files],
       api_name="interpolate", tool=True, doc="Animate from the picture of these settings (or from start_seed) to "
       "end_seed: a looping GIF, a frame strip, and the GIF / WebP / strip files.")
    path = {name: getattr(i.form, name) for name in ("end_seed", "start_seed", "method", "keep_edits")}
    on(i.scrub.sync.click, ex.scrub, inputs=[r, {**path, "t": i.scrub.t}], outputs=[i.scrub.image], api_name="scrub",
       doc="The picture at fraction t (0..1) of the path /interpolate animates.", **fast)
    on([i.form.end_seed.change, i.form.start_seed.change, r.model.change], ex.ends,
       inputs={"model": r.model, "end_seed": i.form.end_seed, "start_seed": i.form.start_seed},
       outputs=[i.scrub.ends], api_name="interpolation_ends", show_progress="hidden")
    wire_page(v)
    wire_projection(ex, v, everything)


def wire_page(v: ExploreView) -> None:
    """Browser-only events (no request): slider moves and new server pictures go to web/explore.js."""
    r, i = v.recipe, v.interpolation
    inputs = [v.page.model, v.page.latent, r.truncation, r.upscale, r.size, r.raw_page, *r.directions, *r.raw]
    fields = [("model", 1), ("latent", 1), ("truncation", 1), ("upscale", 1), ("size", 1), ("page", 1),
              ("directions", len(r.directions)), ("raw", len(r.raw))]
    sliders = [s.input for s in (r.truncation, *r.directions, *r.raw)] + [r.upscale.input, r.size.input]
    explore_page.wire_js(sliders, inputs, fields, "input", "main", settle=True)
    explore_page.wire_js([v.page.latent.change], inputs, fields, "latent", "main")
    scrub_inputs = [*inputs, i.scrub.ends, i.scrub.t, i.form.method, i.form.keep_edits]
    scrub_fields = [*fields, ("ends", 1), ("t", 1), ("method", 1), ("keep", 1)]
    explore_page.wire_js([i.scrub.t.input, i.form.method.input, i.form.keep_edits.input], scrub_inputs, scrub_fields,
                         "input", "scrub")
    explore_page.wire_js([i.scrub.ends.change], scrub_inputs, scrub_fields, "latent", "scrub")


def wire_projection(ex: Explore, v: ExploreView, everything: list) -> None:
    """/project streams the inversion; its recipe then becomes the current picture (/load_projection)."""
    panel = v.project
    projector = explore_project.Projector(ex.ctx, panel, v.picture.recipe, ex.load)
    run = on(panel.run.click, projector.project, inputs={"image": panel.photo, "model": v.recipe.model,
                                                          "steps": panel.steps},
             outputs=[panel.result, panel.status, v.picture.recipe], api_name="project", show_progress="minimal",
             concurrency_limit=1, concurrency_id="projection", doc=PROJECT_DOC)
    on(run, ex.load_recipe, inputs={"recipe": v.picture.recipe}, outputs=everything, api_name="load_projection")
    on(panel.stop.click, projector.stop, outputs=[panel.status], api_name="stop_projection", queue=False,
       doc="Stop this session's /project early; it keeps the closest latent found so far.")


def build_explore_tab(ctx: AppContext) -> Explore:
    """Build and wire the Explore tab inside the current gr.Tab; app.py wires `start` to the page load."""
    view = build_view(HELP)
    explore = Explore(ctx, view)
    wire(explore, view)
    build_paint_it(explore)  # "Paint it" (ui/explore_paint.py): its panel at the end of the tab, /paint_it
    return explore


def wire_page_load(explore: Explore, demo: gr.Blocks) -> None:
    """The first picture and this session's slider labels once the page opens."""
    v = explore.v
    start = on(demo.load, explore.start, outputs=[v.recipe, v.shown_model, v.page.model, v.page.latent,
                                                  v.picture.image, v.picture.recipe], api_name="explore_start")
    # Only then the scrub's: the first picture must not wait for it.
    on(start, explore.start_scrub, outputs=[v.interpolation.scrub.ends, v.interpolation.scrub.image],
       api_name="explore_start_scrub", show_progress="hidden")
