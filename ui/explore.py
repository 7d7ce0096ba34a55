"""Explore tab: a pretrained DCGAN's latent space under sliders (widgets <-> gan.explorer.latent / gan.explorer.zoo).

The slider path is kept short: the model and its directions come from zoo's cached loader, the
handler renders one 64 px image under `inference_mode`, publishes the PNG bytes (ui/files.py) and
returns the path (so the served file is exactly `recipe_png`'s bytes). Slider events use
`.input` with `trigger_mode="always_last"` and no progress overlay, so dragging never queues up.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from common.device import intra_op_threads
from gan.explorer import latent as L
from gan.explorer import zoo
from gan.explorer.model import ModelLoadError
from ui import explore_page as page
from ui import explore_project, files
from ui.context import AppContext
from ui.handlers import with_request
from web.pagemodels import PageModels
from weights.fetch import WeightsUnavailable

LIMITS = L.ExploreLimits()
USER_ERRORS = (ValueError, ModelLoadError, WeightsUnavailable, zoo.UnknownModel, zoo.HubUnavailable)
HELP = ("Pick a seed (or roll the dice), then move the sliders. Directions are the main axes of "
        "variation the generator has learned (GANSpace); the percentage is each one's share of the "
        "variance of the first layer's activations. Raw z edits single latent components.")


@dataclass
class ExploreHandles:
    """What the app needs from Explore: its model picker, a session's choices, the page-load event."""

    model: gr.Dropdown
    choices: Callable[[str | None], list[str]]
    on_start: Callable[..., list]  # first picture and slider labels once the page opens
    start_outputs: list[gr.components.Component]


@dataclass
class _Widgets:
    """The Explore widgets, filled in by the _build_* helpers and read by _wire."""

    model: gr.Dropdown
    seed: gr.Number
    dice: gr.Button
    truncation: gr.Slider
    directions: list[gr.Slider]
    raw_page: gr.Dropdown
    raw: list[gr.Slider]
    raw_edits: gr.State
    shown_model: gr.State  # the model whose labels the sliders show: tells picker changes from echoes
    # The picture column, the models box, the grid and the interpolation panel (built afterwards).
    upscale: Any = None
    size: Any = None
    image: Any = None
    reset: Any = None
    recipe: Any = None
    load_recipe: Any = None
    recipe_file: Any = None
    hub_repo: Any = None
    hub_button: Any = None
    upload: Any = None
    grid_button: Any = None
    grid: Any = None
    grid_seeds: Any = None
    start_seed: Any = None
    end_seed: Any = None
    frames: Any = None
    fps: Any = None
    method: Any = None
    keep: Any = None
    interp_button: Any = None
    animation: Any = None
    strip: Any = None
    interp_files: Any = None
    # In-page rendering (ui.explore_page) and the projected latent (a photo's z, or None).
    projected: Any = None
    page_model: Any = None
    page_latent: Any = None
    sync: Any = None
    ends: Any = None
    t: Any = None
    scrub: Any = None
    scrub_sync: Any = None

    def recipe_inputs(self) -> list:
        """Inputs of every handler that needs the current recipe."""
        return [self.model, self.seed, self.truncation, self.upscale, self.size, self.raw_page,
                self.raw_edits, *self.directions, *self.raw, self.projected]

    def all_controls(self) -> list:
        """Outputs that set the whole state (load recipe, reset, model change)."""
        return [self.model, self.seed, self.truncation, self.upscale, self.size, self.raw_page,
                self.raw_edits, self.shown_model, *self.directions, *self.raw, self.projected,
                self.page_model, self.page_latent, self.image, self.recipe]

    def page_fields(self) -> tuple[list, list[tuple[str, int]]]:
        """The inputs web/explore.js reads for the main picture, and their names."""
        inputs = [self.page_model, self.page_latent, self.truncation, self.upscale, self.size, self.raw_page,
                  *self.directions, *self.raw]
        names = [("model", 1), ("latent", 1), ("truncation", 1), ("upscale", 1), ("size", 1), ("page", 1),
                 ("directions", len(self.directions)), ("raw", len(self.raw))]
        return inputs, names


class _Explore:
    """Handlers bound to the app context (device, sessions)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.pages = PageModels()  # which models the browser can render itself (ONNX exports)
        self.n_controls = 0  # outputs of the whole-state handlers, set when the events are wired

    def choices(self, session_hash: str | None) -> list[str]:
        """Pretrained ids first, then the session's own models (trained, uploaded, from the Hub)."""
        return zoo.pretrained_ids() + list(self.ctx.sessions.models(session_hash))

    def model(self, model_id: str, request: gr.Request | None) -> zoo.LoadedModel:
        """The loaded model for a picker value, or a gr.Error naming the fix."""
        session = request.session_hash if request else None
        try:
            return zoo.load(zoo.resolve(model_id, self.ctx.sessions.models(session)), self.ctx.device)
        except USER_ERRORS as err:
            raise gr.Error(str(err)) from err

    def recipe(self, args: tuple, nz: int) -> tuple[L.Recipe, dict[int, float]]:
        """Widget values (in recipe_inputs order) -> Recipe and the merged raw-z edits."""
        model_id, seed, psi, upscale, size, page, edits = args[:7]
        n, per_page = LIMITS.n_direction_sliders, LIMITS.raw_per_page
        dirs, raw = args[7:7 + n], args[7 + n:7 + n + per_page]
        projected = args[7 + n + per_page] if len(args) > 7 + n + per_page else None
        edits = L.merge_raw_edits(edits or {}, int(page or 0), list(raw), nz)
        try:
            recipe = L.Recipe(model=model_id, seed=int(seed or 0), truncation=float(psi),
                              directions=tuple(float(v) for v in dirs), raw=tuple(edits.items()),
                              upscale=upscale, size=int(size), z=tuple(projected or ()))
        except (ValueError, TypeError) as err:
            raise gr.Error(str(err)) from err
        return recipe, edits

    def save_file(self, data: bytes, name: str) -> str:
        """Publish bytes under a readable download name (ui/files.py: complete, never rewritten); the path."""
        return files.publish(data, name)

    def render(self, recipe: L.Recipe, request: gr.Request | None) -> str:
        """Recipe -> path of its PNG."""
        loaded = self.model(recipe.model, request)
        try:
            with intra_op_threads(LIMITS.cpu_threads if self.ctx.device.type == "cpu" else None):
                png = L.recipe_png(loaded.G, recipe, loaded.directions)
            return self.save_file(png, f"seed-{recipe.seed}.png")
        except ValueError as err:
            raise gr.Error(str(err)) from err

    def on_generate(self, *args, request: gr.Request = None):
        """Sliders / seed / display options -> image, recipe JSON, raw-z edits."""
        loaded = self.model(args[0], request)
        recipe, edits = self.recipe(args, loaded.G.cfg.nz)
        return self.render(recipe, request), recipe.to_json(), edits

    def on_new_latent(self, *args, request: gr.Request = None):
        """A seed picked in the grid (or its neighbour of a projection): as on_generate, and the new z
        before edits for the page (slider moves never change it, so /generate does not send it)."""
        loaded = self.model(args[0], request)
        recipe, edits = self.recipe(args, loaded.G.cfg.nz)
        latent = page.latent_payload(self.pages.fingerprint(loaded), recipe, loaded.G.cfg.nz, edits)
        return self.render(recipe, request), recipe.to_json(), edits, latent

    def on_new_seed(self, *args, request: gr.Request = None):
        """A seed typed or rolled: the seed's z replaces a projected one."""
        return *self.on_new_latent(*args[:-1], None, request=request), None

    def on_ends(self, model_id: str, end_seed: float, start_seed: float, request: gr.Request = None) -> dict:
        """The interpolation's seeds' z, for the page's scrub slider."""
        loaded = self.model(model_id, request)
        start = None if start_seed in (None, "", -1) else int(start_seed)
        return page.ends_payload(self.pages.fingerprint(loaded), loaded.G.cfg.nz, int(end_seed or 0), start)

    def on_scrub(self, *args, request: gr.Request = None) -> str:
        """The picture at fraction t of the interpolation path, rendered on the server."""
        t, end_seed, start_seed, method, keep = args[:5]
        loaded = self.model(args[5], request)
        recipe, _ = self.recipe(args[5:], loaded.G.cfg.nz)
        try:
            job = L.Interpolation(start=recipe, end_seed=int(end_seed), method=method, keep_edits=bool(keep),
                                  start_seed=None if start_seed in (None, "", -1) else int(start_seed))
            z = L.interpolation_point(loaded.G, job, float(t), loaded.directions)
        except (ValueError, TypeError) as err:
            raise gr.Error(str(err)) from err
        image = L.generate(loaded.G, z)[0]
        return self.save_file(L.png_bytes(L.to_pil(image, 256, recipe.upscale)), "scrub.png")

    def on_dice(self) -> int:
        """A fresh random seed."""
        return random.randint(0, 99_999)

    def on_raw_page(self, page: int, edits: dict, model_id: str, request: gr.Request = None):
        """Show another page of raw-z components: relabel the sliders and show that page's deltas."""
        nz = self.model(model_id, request).G.cfg.nz
        values = L.raw_edits_for_page(edits or {}, int(page), LIMITS.raw_per_page)
        return [gr.update(value=v, label=f"z[{int(page) + j}] +", visible=int(page) + j < nz)
                for j, v in enumerate(values)]

    def state_updates(self, recipe: L.Recipe, request: gr.Request | None) -> list:
        """Values for all_controls() that show `recipe` (sliders relabelled for its model)."""
        loaded = self.model(recipe.model, request)
        nz, share = loaded.G.cfg.nz, loaded.directions.variance_share.tolist()
        dirs = list(recipe.directions) + [0.0] * LIMITS.n_direction_sliders
        edits = dict(recipe.raw)
        first = min(edits, default=0) // LIMITS.raw_per_page * LIMITS.raw_per_page
        pages = L.raw_pages(nz, LIMITS.raw_per_page)
        dir_updates = [gr.update(value=dirs[i], label=_direction_label(i, share), visible=i < len(share))
                       for i in range(LIMITS.n_direction_sliders)]
        raw_updates = [gr.update(value=v, label=f"z[{first + j}] +", visible=first + j < nz)
                       for j, v in enumerate(L.raw_edits_for_page(edits, first, LIMITS.raw_per_page))]
        model_update = gr.update(value=recipe.model, choices=self.choices(request.session_hash if request else None))
        key = self.pages.fingerprint(loaded)
        return [model_update, recipe.seed, recipe.truncation, recipe.upscale, str(recipe.size),
                gr.update(choices=pages, value=first), edits, recipe.model, *dir_updates, *raw_updates,
                list(recipe.z) or None, self.pages.describe(recipe.model, loaded),
                page.latent_payload(key, recipe, nz, edits), self.render(recipe, request), recipe.to_json()]

    def on_load_recipe(self, text: str, request: gr.Request = None) -> list:
        """Recipe JSON -> every control, and the image it describes."""
        try:
            recipe = L.Recipe.from_json(text or "")
        except (ValueError, TypeError) as err:
            raise gr.Error(f"Cannot load this recipe: {err}") from err
        return self.state_updates(recipe, request)

    def on_load_recipe_file(self, path: str, request: gr.Request = None) -> list:
        """A recipe .json file -> every control, and the image."""
        return self.on_load_recipe(Path(path).read_text(encoding="utf-8"), request)

    def on_reset(self, model_id: str, seed: float, upscale: str, size: str, request: gr.Request = None) -> list:
        """Back to the plain seed: truncation 1, every direction and raw-z delta 0."""
        return self.state_updates(L.Recipe(model=model_id, seed=int(seed or 0), upscale=upscale,
                                           size=int(size)), request)

    def on_model(self, model_id: str, shown: str | None, seed: float, upscale: str, size: str,
                 request: gr.Request = None) -> list:
        """Switch model (picked, uploaded, from the Hub or the Train tab): relabel the sliders, reset edits."""
        if model_id == shown:  # the picker echoing a recipe load or a reset: nothing to switch
            return [gr.skip()] * self.n_controls
        return self.on_reset(model_id, seed, upscale, size, request)

    def on_grid(self, *args, request: gr.Request = None):
        """16 seeds from the current seed on (or 16 neighbours of a projection), with the current edits:
        gallery items and what each cell is (its seed, and its own z around a projection)."""
        loaded = self.model(args[0], request)
        recipe, _ = self.recipe(args, loaded.G.cfg.nz)
        seeds = [recipe.seed + i for i in range(LIMITS.grid_size)]
        bases = L.grid_bases(recipe, loaded.G.cfg.nz, LIMITS.grid_size, self.ctx.device)
        images = L.generate(loaded.G, L.edit_z(bases, recipe, loaded.directions))
        if recipe.z:
            names = ["your projection"] + [f"near it · seed {s}" for s in seeds[1:]]
            cells = [{"seed": recipe.seed, "z": row.cpu().tolist()} for row in bases]
        else:
            names, cells = [f"seed {s}" for s in seeds], [{"seed": s, "z": None} for s in seeds]
        items = [(files.publish_image(L.to_pil(img, 128, recipe.upscale), f"seed-{s}.webp"), name)
                 for img, s, name in zip(images, seeds, names)]
        return items, cells

    def on_pick(self, cells: list[dict], evt: gr.SelectData) -> tuple[int, list[float] | None]:
        """Clicking a grid cell makes it the current picture: its seed, and its own z if it has one."""
        cell = cells[evt.index] if cells else {"seed": 0, "z": None}
        return int(cell["seed"]), cell["z"]

    def on_interpolate(self, *args, request: gr.Request = None):
        """Current latent -> another seed: animated GIF, WebP, frame strip and the files to download."""
        end_seed, start_seed, frames, method, keep, fps = args[:6]
        loaded = self.model(args[6], request)
        recipe, _ = self.recipe(args[6:], loaded.G.cfg.nz)
        recipe = replace(recipe, size=min(recipe.size, 256))  # a 512 px GIF of 46 frames weighs megabytes
        try:
            job = L.Interpolation(start=recipe, end_seed=int(end_seed), frames=int(frames), method=method,
                                  keep_edits=bool(keep), fps=int(fps),
                                  start_seed=None if start_seed in (None, "", -1) else int(start_seed))
        except (ValueError, TypeError) as err:
            raise gr.Error(str(err)) from err
        pictures = L.interpolate(loaded.G, job, loaded.directions)
        first, last = job.endpoints()
        stem = f"seed-{first.seed}-to-{last.seed}"
        gif = self.save_file(L.animation_bytes(pictures, job.fps, "gif"), f"{stem}.gif")
        webp = self.save_file(L.animation_bytes(pictures, job.fps, "webp"), f"{stem}.webp")
        strip = self.save_file(L.png_bytes(L.frame_strip(pictures)), f"{stem}-strip.png")
        return gif, strip, [gif, webp, strip]

    def on_load_hub(self, repo_id: str, request: gr.Request = None):
        """Download a mixin-format generator from the Hub and add it to this session's models."""
        return self.add_session_model(f"hub:{(repo_id or '').strip()}",
                                      lambda: zoo.download_from_hub(repo_id or ""), request)

    def on_upload_model(self, files: list[str] | str, request: gr.Request = None):
        """An uploaded zip (or config.json + model.safetensors) becomes one of this session's models."""
        files = [files] if isinstance(files, str) else list(files or [])
        if not files:
            raise gr.Error("Choose a .zip (or config.json and model.safetensors) to upload.")
        session = self.ctx.sessions.get(request.session_hash if request else None)
        name = Path(files[0]).stem[:40] or "model"
        dest = session.directory / "models" / f"{name}-{len(session.models)}"
        return self.add_session_model(f"upload:{name}", lambda: zoo.unpack_upload(
            [Path(f) for f in files], dest), request, cleanup=dest)

    def add_session_model(self, label: str, get_folder: Callable[[], Path], request: gr.Request | None,
                          cleanup: Path | None = None):
        """Fetch/unpack a model folder, load it strictly, register it, select it in the picker."""
        session = request.session_hash if request else None
        try:
            folder = get_folder()
            zoo.load(folder, self.ctx.device)
        except USER_ERRORS as err:
            if cleanup is not None:
                shutil.rmtree(cleanup, ignore_errors=True)
            raise gr.Error(str(err)) from err
        self.ctx.sessions.add_model(session, label, folder)
        gr.Info(f"Loaded {label}.")
        return gr.update(choices=self.choices(session), value=label)

    def on_start(self, request: gr.Request = None) -> list:
        """Page load: this session's model choices, slider labels, the first image, the scrub's seeds."""
        recipe = L.Recipe(model=zoo.pretrained_ids()[0], size=512)
        scrub = self.render(replace(recipe, size=256), request)  # t = 0: the current picture
        *controls, image, text = self.state_updates(recipe, request)
        return [*controls, self.on_ends(recipe.model, 1, -1, request), scrub, image, text]


def _direction_label(index: int, share: list[float]) -> str:
    pct = f" · {100 * share[index]:.1f}% of variance" if index < len(share) else ""
    return f"Direction {index + 1}{pct}"


def _build_controls() -> _Widgets:
    """Left column: model, seed, truncation, direction and raw-z sliders (created unbound)."""
    model = gr.Dropdown(choices=zoo.pretrained_ids(), value=zoo.pretrained_ids()[0], label="Model",
                        scale=3)
    with gr.Row(equal_height=True):
        seed = gr.Number(value=0, label="Seed", precision=0, minimum=0, maximum=L.MAX_SEED, scale=3,
                         elem_id="explore-seed")
        dice = gr.Button("Random seed", scale=1, min_width=80)
    truncation = gr.Slider(LIMITS.truncation_min, LIMITS.truncation_max, value=LIMITS.truncation_default,
                           step=LIMITS.step, label="Truncation ψ (lower = more average face)",
                           elem_id="explore-truncation")
    with gr.Accordion("Directions (GANSpace)", open=True):
        directions = [gr.Slider(-LIMITS.direction_max, LIMITS.direction_max, value=0.0, step=LIMITS.step,
                                label=f"Direction {i + 1}", elem_id=f"explore-direction-{i + 1}")
                      for i in range(LIMITS.n_direction_sliders)]
    with gr.Accordion("Raw z (single latent components)", open=False):
        raw_page = gr.Dropdown(choices=L.raw_pages(100, LIMITS.raw_per_page), value=0, label="Components")
        raw = [gr.Slider(-LIMITS.raw_max, LIMITS.raw_max, value=0.0, step=LIMITS.step, label=f"z[{j}] +")
               for j in range(LIMITS.raw_per_page)]
    return _Widgets(model=model, seed=seed, dice=dice, truncation=truncation, directions=directions,
                    raw_page=raw_page, raw=raw, raw_edits=gr.State({}), shown_model=gr.State(None))


def _build_picture(w: _Widgets) -> None:
    """Right column: the picture, display options, recipe."""
    w.image = gr.Image(label="Picture (download: the arrow, top right)", format="png", type="filepath",
                       interactive=False, height=540, buttons=["download", "fullscreen"],
                       elem_id="explore-picture")
    with gr.Row():
        w.upscale = gr.Radio(list(L.UPSCALE_MODES), value="nearest", label="Upscaling")
        w.size = gr.Radio(["256", "512"], value="512", label="Size (px)")
    w.reset = gr.Button("Reset edits")
    w.page_model, w.page_latent, w.sync = page.build_carriers()
    w.projected = gr.State(None)
    w.recipe = gr.Code(label="Recipe (copy, download, or paste one and press Load)", language="json",
                       interactive=True, lines=3, max_lines=8, wrap_lines=True, elem_id="explore-recipe")
    with gr.Row():
        w.load_recipe = gr.Button("Load recipe")
        w.recipe_file = gr.UploadButton("Load recipe file (.json)", file_types=[".json"], type="filepath")


def _build_models_box(w: _Widgets) -> None:
    """Add a model: from the Hub by repo id, or an uploaded zip / folder files (safetensors only)."""
    with gr.Accordion("Add a model (Hub or upload)", open=False):
        with gr.Row(equal_height=True):
            w.hub_repo = gr.Textbox(label="Hugging Face repo id", placeholder="user/my-dcgan", scale=3)
            w.hub_button = gr.Button("Load from the Hub", scale=1)
        w.upload = gr.File(label="Upload a model: a .zip of a save_pretrained folder, or config.json + "
                           "model.safetensors (pickles are refused)", file_count="multiple",
                           file_types=[".zip", ".json", ".safetensors"], type="filepath", elem_id="explore-upload")


def _build_grid_and_interpolation(w: _Widgets) -> None:
    """Below: the 16-seed grid and the interpolation panel."""
    with gr.Accordion("Sample grid (click a face to make it current)", open=True):
        w.grid_button = gr.Button("Show 16 seeds from the current one")
        w.grid = gr.Gallery(label="Seeds", columns=8, height=280, allow_preview=False, object_fit="contain",
                            elem_id="explore-grid")
        w.grid_seeds = gr.State([])
    with gr.Accordion("Interpolation", open=True):
        with gr.Row():
            w.start_seed = gr.Number(value=-1, precision=0, minimum=-1, label="From seed (-1 = current image)")
            w.end_seed = gr.Number(value=1, precision=0, minimum=0, label="To seed")
            w.frames = gr.Slider(2, LIMITS.frames_max, value=LIMITS.frames_default, step=1, label="Frames")
            w.fps = gr.Slider(1, 30, value=LIMITS.fps_default, step=1, label="Frames per second")
        with gr.Row():
            w.method = gr.Radio(["slerp", "lerp"], value="slerp", label="Path")
            w.keep = gr.Checkbox(value=True, label="Apply the current edits to both ends")
            w.interp_button = gr.Button("Make animation", variant="primary")
        with gr.Row():
            w.animation = gr.Image(label="Animation (loops)", format="gif", type="filepath", interactive=False,
                                   height=300)
            w.strip = gr.Image(label="Frame strip", format="png", type="filepath", interactive=False, height=300)
        w.interp_files = gr.File(label="Download GIF / WebP / strip", file_count="multiple", interactive=False)
        w.ends, w.t, w.scrub, w.scrub_sync = page.build_scrub()


def _wire(ex: _Explore, w: _Widgets) -> None:
    """Connect events; every one has an api_name."""
    ex.n_controls = len(w.all_controls())
    fast = dict(show_progress="hidden", trigger_mode="always_last", concurrency_limit=2)
    gen_out = [w.image, w.recipe, w.raw_edits]
    n_recipe = len(w.recipe_inputs())
    on_generate = with_request(ex.on_generate, n_recipe)
    # No ZeroGPU here: a 64 px DCGAN renders 16 images in ~50 ms on a CPU; a GPU call would queue longer.
    on_grid = with_request(ex.on_grid, n_recipe)
    on_interpolate = with_request(ex.on_interpolate, n_recipe + 6)
    _wire_page(ex, w, fast)
    w.sync.click(on_generate, inputs=w.recipe_inputs(), outputs=gen_out, api_name="generate", **fast)
    on_new_seed = with_request(ex.on_new_seed, n_recipe)
    on_new_latent = with_request(ex.on_new_latent, n_recipe)
    seed_out = [*gen_out, w.page_latent, w.projected]
    w.seed.input(on_new_seed, inputs=w.recipe_inputs(), outputs=seed_out, api_name="generate_seed", **fast)
    w.dice.click(ex.on_dice, outputs=w.seed, api_name="dice", show_progress="hidden").then(
        on_new_seed, inputs=w.recipe_inputs(), outputs=seed_out, api_name="generate_after_dice", **fast)
    w.raw_page.input(ex.on_raw_page, inputs=[w.raw_page, w.raw_edits, w.model], outputs=w.raw,
                     api_name="raw_page", show_progress="hidden")
    settle = [w.model, w.seed, w.upscale, w.size]
    # .change, not .input: the Train tab, uploads and the Hub set the picker's value too.
    w.model.change(ex.on_model, inputs=[w.model, w.shown_model, w.seed, w.upscale, w.size],
                   outputs=w.all_controls(), api_name="select_model")
    w.reset.click(ex.on_reset, inputs=settle, outputs=w.all_controls(), api_name="reset")
    w.load_recipe.click(ex.on_load_recipe, inputs=w.recipe, outputs=w.all_controls(), api_name="load_recipe")
    w.recipe_file.upload(ex.on_load_recipe_file, inputs=w.recipe_file, outputs=w.all_controls(),
                         api_name="load_recipe_file")
    w.hub_button.click(ex.on_load_hub, inputs=w.hub_repo, outputs=w.model, api_name="load_hub")
    w.upload.upload(ex.on_upload_model, inputs=w.upload, outputs=w.model, api_name="upload_model")
    w.grid_button.click(on_grid, inputs=w.recipe_inputs(), outputs=[w.grid, w.grid_seeds], api_name="grid")
    w.grid.select(ex.on_pick, inputs=w.grid_seeds, outputs=[w.seed, w.projected], api_name="pick_from_grid",
                  show_progress="hidden").then(on_new_latent, inputs=w.recipe_inputs(),
                                               outputs=[*gen_out, w.page_latent],
                                               api_name="generate_after_pick", **fast)
    interp_in = [w.end_seed, w.start_seed, w.frames, w.method, w.keep, w.fps, *w.recipe_inputs()]
    w.interp_button.click(on_interpolate, inputs=interp_in, outputs=[w.animation, w.strip, w.interp_files],
                          api_name="interpolate")


def _wire_page(ex: _Explore, w: _Widgets, fast: dict) -> None:
    """In-page rendering: slider moves go to web/explore.js (no request), which draws them or clicks
    the hidden server render; the scrub slider likewise (ui.explore_page)."""
    inputs, names = w.page_fields()
    sliders = [s.input for s in (w.truncation, *w.directions, *w.raw)] + [w.upscale.input, w.size.input]
    gr.on(sliders, None, inputs=inputs, js=page.js_call("input", "main", page.PICTURE_ID, page.SYNC_ID, names, True))
    w.page_latent.change(None, inputs=inputs, js=page.js_call("latent", "main", page.PICTURE_ID, page.SYNC_ID, names))
    scrub_names = names + [("ends", 1), ("t", 1), ("method", 1), ("keep", 1)]
    scrub_inputs = inputs + [w.ends, w.t, w.method, w.keep]
    gr.on([w.t.input, w.method.input, w.keep.input], None, inputs=scrub_inputs,
          js=page.js_call("input", "scrub", page.SCRUB_ID, page.SCRUB_SYNC_ID, scrub_names))
    w.ends.change(None, inputs=scrub_inputs, js=page.js_call("latent", "scrub", page.SCRUB_ID, page.SCRUB_SYNC_ID,
                                                              scrub_names))
    on_scrub = with_request(ex.on_scrub, len(w.recipe_inputs()) + 5)
    w.scrub_sync.click(on_scrub, inputs=[w.t, w.end_seed, w.start_seed, w.method, w.keep, *w.recipe_inputs()],
                       outputs=w.scrub, api_name="scrub", **fast)
    gr.on([w.end_seed.change, w.start_seed.change, w.model.change], ex.on_ends,
          inputs=[w.model, w.end_seed, w.start_seed], outputs=w.ends, api_name="interpolation_ends",
          show_progress="hidden")


def _wire_projection(ex: _Explore, w: _Widgets, panel: explore_project.ProjectWidgets) -> None:
    """/project streams the inversion; its recipe then becomes the current picture (/load_projection)."""
    projector = explore_project.Projector(ex.ctx, ex.model, ex.save_file)
    run = panel.run.click(projector.project, inputs=[panel.photo, w.model, panel.steps],
                          outputs=[panel.result, panel.status, w.recipe], api_name="project",
                          concurrency_limit=1, concurrency_id="projection", show_progress="minimal")
    run.success(ex.on_load_recipe, inputs=w.recipe, outputs=w.all_controls(), api_name="load_projection")
    panel.stop.click(projector.stop, outputs=panel.status, api_name="stop_projection", queue=False)


def build_explore_tab(ctx: AppContext) -> ExploreHandles:
    """Build the Explore tab inside the current gr.Tab; returns the picker for the other tabs."""
    gr.Markdown(HELP)
    with gr.Row():
        with gr.Column(scale=5):
            w = _build_controls()
            _build_models_box(w)
        with gr.Column(scale=6):
            _build_picture(w)
    project = explore_project.build_panel()
    _build_grid_and_interpolation(w)
    ex = _Explore(ctx)
    _wire(ex, w)
    _wire_projection(ex, w, project)
    return ExploreHandles(model=w.model, choices=ex.choices, on_start=ex.on_start,
                          start_outputs=[*w.all_controls()[:-2], w.ends, w.scrub, w.image, w.recipe])
