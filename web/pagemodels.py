"""Which Explore models the page can render itself, and what the page needs to do so.

For a loaded model, `PageModels.describe` returns the small JSON the page reads (through a hidden
gr.JSON): the generator's shape, its GANSpace directions, the URL of its fp16 ONNX export and the
URL of onnxruntime-web. The export (gan.explorer.export, cached beside the directions) and its
publication (a pre-compressed copy under a name derived from the weights' fingerprint) run once
per model in a background thread, so the first picture never waits for them: meanwhile the page
shows the server's renders and polls the URL, which answers 404 until the file is there.
A model that cannot be exported, or a runtime that cannot be fetched, is logged once and the
page keeps the server path.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gan.explorer import export, zoo
from web import assets, runtime

log = logging.getLogger(__name__)

READY, PENDING, REFUSED = "ready", "pending", "refused"
MODELS_FOLDER = "models"
MAX_AGE_S = 24 * 3600  # published models untouched this long are deleted (re-published when asked for)


@dataclass
class _Entry:
    """One model's export state."""

    key: str
    path: Path
    status: str = PENDING
    reason: str = ""


@dataclass
class PageModels:
    """Export and publish models for the page, once each, off the request path."""

    config: export.WebExportConfig = field(default_factory=export.WebExportConfig)
    runtime_ensure: Callable[[], Path] = runtime.ensure  # tests pass a stand-in that never downloads
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _entries: dict[str, _Entry] = field(default_factory=dict)  # keyed by the folder (and device)
    _runtime: str | None = None  # "ready", "missing" (fetch failed: server path), or None (not tried)
    _keys: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary)  # G -> fingerprint

    def runtime_url(self) -> str | None:
        """URL of onnxruntime-web's entry module, or None while it is missing (fetched in the background)."""
        if runtime.is_ready():
            return assets.url_for(runtime.runtime_dir() / runtime.ENTRY)
        with self._lock:
            if self._runtime is None:
                self._runtime = "fetching"
                threading.Thread(target=self._fetch_runtime, name="fetch-ort-web", daemon=True).start()
        return None

    def _fetch_runtime(self) -> None:
        try:
            self.runtime_ensure()
            self._runtime = READY
        except (runtime.RuntimeUnavailable, OSError) as err:
            self._runtime = "missing"
            log.warning("in-page rendering is off, Explore renders every picture on the server: %s", err)

    def fingerprint(self, loaded: zoo.LoadedModel) -> str:
        """The model's export fingerprint (weights + export settings), computed once per generator."""
        key = self._keys.get(loaded.G)
        if key is None:
            key = self._keys[loaded.G] = export.fingerprint(loaded.G, self.config)[:20]
        return key

    def entry(self, loaded: zoo.LoadedModel) -> _Entry:
        """The model's entry, starting its export the first time it is asked for."""
        key = self.fingerprint(loaded)
        path = assets.published_root() / MODELS_FOLDER / f"generator-{key}.onnx"
        with self._lock:
            found = self._entries.get(key)
            if found is not None and (found.status != READY or path.is_file()):
                entry = found
            else:  # new, or swept since: publish (again)
                entry = self._entries[key] = _Entry(key=key, path=path, status=READY if path.is_file() else PENDING)
                if entry.status == PENDING:
                    threading.Thread(target=self._export, args=(loaded, entry), name=f"export-{key[:6]}",
                                     daemon=True).start()
        if entry.status == READY:
            assets.touch(path)  # in use: not swept
        return entry

    def _export(self, loaded: zoo.LoadedModel, entry: _Entry) -> None:
        try:
            source = export.cached_export(loaded.G, zoo.derived_path(loaded.folder, zoo.ONNX_FILE), self.config)
            assets.publish_file(source, MODELS_FOLDER, entry.path.name)
            assets.sweep(entry.path.parent, MAX_AGE_S, keep=entry.path)
            entry.status = READY
        except (export.ExportRefused, OSError) as err:
            entry.status, entry.reason = REFUSED, str(err)
            log.warning("%s renders on the server only: %s", loaded.folder.name, err)

    def describe(self, model_id: str, loaded: zoo.LoadedModel) -> dict:
        """What the page needs to render this model (see the module docstring)."""
        entry = self.entry(loaded)
        cfg = loaded.G.cfg
        return {"model": model_id, "key": entry.key, "status": entry.status, "reason": entry.reason,
                "url": assets.url_for(entry.path) if entry.status != REFUSED else None,
                "runtime": self.runtime_url() if entry.status != REFUSED else None,
                "nz": cfg.nz, "nc": cfg.nc, "image_size": cfg.image_size,
                "directions": loaded.directions.vectors.float().cpu().tolist()}
