"""Style tab, instant half: the feed-forward picture under live sliders, the presets, the before / after store.

Widgets <-> `style.instant` only. The live path (`Style.live` wired in ui/style.py) validates the settings,
paints with the style vectors cached by the engine (a strength move recomputes no vector), publishes a JPEG
(~1 ms to encode at 384 px, where a PNG takes ~40 ms) and returns its path. One intra-op thread per picture
on a CPU (`InstantConfig.cpu_threads`), as Explore does. The API endpoints /stylize_instant and
/stylize_preset paint the same way, without the live path's gentleness about missing inputs.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import gradio as gr
import torch
from PIL import Image

from common.device import intra_op_threads
from style import instant
from ui.context import AppContext
from ui.files import KEEP_S, publish
from ui.forms import Values
from ui.style_view import COMPARISONS, UI, StyleView
from weights.fetch import WeightsUnavailable

log = logging.getLogger(__name__)
PICTURE_NAME = "instant.jpg"  # the download name of the instant picture


def publish_jpeg(image: Image.Image, name: str, quality: int = 95) -> str:
    """A picture published as a JPEG of this quality (publish_image's default, 75, shows on brush strokes)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return publish(buffer.getvalue(), name)


def open_picture(image: Any, what: str) -> Image.Image:
    """A PIL image from Gradio's value (PIL already, or a path through the API), or a gr.Error naming it."""
    if isinstance(image, Image.Image):
        return image
    try:
        with Image.open(image) as opened:
            return opened.convert("RGB")
    except (OSError, ValueError, TypeError) as err:
        raise gr.Error(f"The {what} could not be read as a picture ({err}).") from err


def picked_paintings(styles: list, blends: list) -> tuple[list[Image.Image], list[float]]:
    """The filled painting slots and their blend weights (empty lists when none is filled)."""
    picked = [(open_picture(image, "painting"), float(weight)) for image, weight in zip(styles, blends, strict=True)
              if image is not None and float(weight) > 0]
    return [image for image, _ in picked], [weight for _, weight in picked]


def check_weights(weights: list) -> None:
    """Blend and mix weights are finite and 0 or more (NaN / inf only come through the API), else gr.Error."""
    try:
        bad = [w for w in weights if w is not None and not 0 <= float(w) < math.inf]
    except (TypeError, ValueError) as err:
        raise gr.Error(f"Weights must be numbers: {err}") from err
    if bad:
        raise gr.Error(f"Weights must be numbers of 0 or more, not {bad[0]}.")


def preset_mix(p: Values) -> dict[int, float]:
    """The mixer's values -> {preset index: weight} (the engine checks the range and the total)."""
    mix: dict[int, float] = {}
    for preset, weight in zip(p.presets, p.preset_weights, strict=True):
        if preset is not None:
            mix[int(preset)] = mix.get(int(preset), 0.0) + float(weight)
    return mix


def fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """An RGB copy at `size` (the before / after slider wants two pictures of one size)."""
    rgb = image.convert("RGB")
    return rgb if rgb.size == size else rgb.resize(size, Image.LANCZOS)


@functools.lru_cache(maxsize=2)
def thumbnail_bytes(side: int, device: str) -> tuple[bytes, ...]:
    """The presets' thumbnails as JPEG bytes, computed once per process (the engine caches the pictures)."""
    out = []
    for picture in instant.preset_thumbnails(side, device):
        buffer = io.BytesIO()
        picture.convert("RGB").save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return tuple(out)


class InstantPainter:
    """The instant picture's handlers, bound to the app context and the tab's widgets."""

    def __init__(self, ctx: AppContext, view: StyleView) -> None:
        self.ctx, self.v = ctx, view

    def pictures(self, request: gr.Request | None) -> dict:
        """This session's photo, instant and refined pictures, for the before / after slider."""
        state = self.ctx.sessions.get(request.session_hash if request else None)
        return state.extras.setdefault("style_pictures", {})

    def config(self, look: Values) -> instant.InstantConfig:
        """The look form -> InstantConfig, or a gr.Error with the engine's sentence."""
        try:
            return instant.InstantConfig(strength=float(look.strength), preserve_colours=bool(look.preserve_colours),
                                         size=int(look.size))
        except (ValueError, OverflowError, TypeError) as err:  # NaN / inf only come through the API
            raise gr.Error(str(err)) from err

    def run(self, paint: Callable[[instant.InstantConfig, torch.device], Image.Image],
            config: instant.InstantConfig) -> tuple[Image.Image, float]:
        """(picture, seconds) of one engine call on the app's device, its errors as gr.Error."""
        device = self.ctx.device
        started = time.perf_counter()
        try:
            with intra_op_threads(config.cpu_threads if device.type == "cpu" else None):
                picture = paint(config, device)
        except (ValueError, WeightsUnavailable) as err:
            raise gr.Error(str(err)) from err
        return picture, time.perf_counter() - started

    def paintings(self, p: Values, look: Values) -> dict:
        """Paint p.content with p's paintings (gr.Error when something is missing)."""
        config = self.config(look)
        if p.content is None:
            raise gr.Error("Add a photo first (content).")
        check_weights(p.blends)
        styles, weights = picked_paintings(p.styles, p.blends)
        if not styles:
            raise gr.Error("Add at least one painting with a blend weight above 0.")
        photo = open_picture(p.content, "photo")
        picture, seconds = self.run(lambda c, d: instant.paint(photo, styles, weights, c, d), config)
        what = "1 painting" if len(styles) == 1 else f"{len(styles)} paintings blended"
        return self.shown(photo, picture, seconds, what, config)

    def presets(self, content: Any, p: Values, look: Values) -> dict:
        """Paint the photo with the mixer's presets (gr.Error when something is missing)."""
        config = self.config(look)
        if content is None:
            raise gr.Error("Add a photo first (content).")
        check_weights(p.preset_weights)
        mix = preset_mix(p)
        photo = open_picture(content, "photo")
        picture, seconds = self.run(lambda c, d: instant.paint_preset(photo, mix, c, d), config)
        named = " + ".join(f"{w:g} × preset {i}" for i, w in mix.items() if w > 0)
        return self.shown(photo, picture, seconds, named or "presets", config)

    def shown(self, photo: Image.Image, picture: Image.Image, seconds: float, what: str,
              config: instant.InstantConfig) -> dict:
        """The picture published, and one line that says what it is."""
        status = (f"**{picture.width}×{picture.height} px** (photo {photo.width}×{photo.height}) · {what} · "
                  f"strength {config.strength:g}{' · photo colours' if config.preserve_colours else ''} · "
                  f"painted in {seconds * 1000:.0f} ms on {self.ctx.device.type.upper()}")
        return {"photo": photo, "picture": picture, "path": publish_jpeg(picture, PICTURE_NAME),
                "status": status}

    def updates(self, request: gr.Request | None, shown: dict, compare: str | None) -> dict:
        """Widget updates for a painted picture; it also becomes the session's instant picture."""
        store, key = self.pictures(request), instant.picture_key(shown["photo"])
        if store.get("photo_key") != key:
            store.pop("refined", None)  # another photo: the old refinement compares with nothing here
        store.update(photo=shown["photo"], photo_key=key, instant=shown["picture"])
        out = {self.v.instant.picture: shown["path"], self.v.instant.status: shown["status"]}
        if compare == COMPARISONS[0]:  # photo | instant follows the picture
            out[self.v.before_after] = (self.photo_path(store, shown["picture"].size), shown["path"])
        return out

    @staticmethod
    def photo_path(store: dict, size: tuple[int, int]) -> str:
        """The photo at the picture's size, published once per photo and size while a slider moves (a resize
        and an encode saved per move), again after half of KEEP_S (a named file is served for KEEP_S)."""
        cached = store.get("photo_shown")
        if cached is None or cached[:2] != (store["photo_key"], size) or time.monotonic() - cached[3] > KEEP_S / 2:
            path = publish_jpeg(fit(store["photo"], size), "photo.jpg")
            cached = store["photo_shown"] = (store["photo_key"], size, path, time.monotonic())
        return cached[2]

    def stylize_instant(self, request: gr.Request, style_2: Any = None, style_3: Any = None, **given: Any) -> dict:
        """The photo painted at once in the blended style of the paintings (no optimisation)."""
        p = self.v.paintings.read(given, style_2=style_2, style_3=style_3)
        return self.updates(request, self.paintings(p, self.v.instant.look.read(given)), None)

    def stylize_preset(self, request: gr.Request, **given: Any) -> dict:
        """The photo painted at once with a mix of the 26 presets."""
        look, p = self.v.instant.look.read(given), self.v.presets.form.read(given)
        return self.updates(request, self.presets(given["content"], p, look), None)

    def live(self, request: gr.Request, style_2: Any = None, style_3: Any = None, **given: Any) -> dict:
        """A slider moved or a picture changed: repaint, or say what is missing (no error toast mid-way)."""
        look = self.v.instant.look.read(given)
        self.config(look)  # bad numbers are errors even before a photo is there
        p, mixer = self.v.paintings.read(given, style_2=style_2, style_3=style_3), self.v.presets.form.read(given)
        check_weights([*p.blends, *mixer.preset_weights])
        status = self.v.instant.status
        if p.content is None:
            return {status: "Pick a photo (or click an example): the picture appears here."}
        if given["source"] == "presets":
            shown = self.presets(p.content, mixer, look)
        elif not picked_paintings(p.styles, p.blends)[0]:
            return {status: "Add a painting (or click a preset): the picture appears here."}
        else:
            shown = self.paintings(p, look)
        return self.updates(request, shown, given["compare"])

    def use_paintings(self, style_1: Any = None, style_2: Any = None, style_3: Any = None) -> Any:
        """A painting was added: paint with the paintings (a cleared slot changes nothing)."""
        if all(s is None for s in (style_1, style_2, style_3)):
            return gr.skip()
        return {self.v.instant.source: "paintings"}

    def pick_preset(self, evt: gr.SelectData, preset_weight_1: float) -> dict:
        """A click on the gallery: that preset in the mixer's first slot, and paint with the presets."""
        form = self.v.presets.form
        return {form.presets[0]: int(evt.index), form.preset_weights[0]: preset_weight_1 or 1.0,
                self.v.instant.source: "presets"}

    def gallery(self) -> dict:
        """The 26 thumbnails as published files (painted once per process), or a note when the weights are missing."""
        try:
            with intra_op_threads(instant.InstantConfig().cpu_threads if self.ctx.device.type == "cpu" else None):
                pictures = thumbnail_bytes(UI.thumbnail_side, str(self.ctx.device))
        except WeightsUnavailable as err:
            log.warning("preset thumbnails: %s", err)
            return {self.v.presets.gallery: gr.update(label=f"Presets unavailable: {err}")}
        items = [(publish(data, f"preset-{i}.jpg"), label)
                 for i, (data, label) in enumerate(zip(pictures, instant.preset_labels(), strict=True))]
        return {self.v.presets.gallery: items}
