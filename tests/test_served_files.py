"""Files that responses name arrive whole under concurrency, and stay readable (see ui/files.py).

The stress test aims at the race that tore downloads: many sessions producing *identical* outputs at
the same moment (every visitor starts at seed 0; two trainers with the same data), while clients fetch
and decode every named file and sessions close during the fetches. Through raw HTTP on a launched app
(loopback only), so that every failure of a download is seen, not retried. On the code before ui/files.py
it failed every run (22 to 225 torn or undecodable files of 770 to 3,840; docs/reliability.md).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio
import httpx
import pytest
from PIL import Image

from tests.fuzz_http import upload
from tests.served_http import Tally, call, fetch_image, file_urls, noise_pngs, watched_app
from ui import files

# The recipe form in API order (model, seed, truncation, direction_1..8, upscale, size, raw_page, raw_1..8,
# raw_edits): every visitor's start, seed 0.
GRID_ARGS = ["dcgan-faces-64", 0, 1.0, *[0.0] * 8, "nearest", "512", 0, *[0.0] * 8, "{}", ""]
GRID_CALLS, THREADS = 48, 12
UPLOADERS = 4


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A launched app with its own sessions, and a record of outputs that Gradio wrote in place."""
    with watched_app(tmp_path_factory.mktemp("served-runtime")) as app:
        yield app


@pytest.fixture(scope="module")
def same_images(tmp_path_factory) -> list[Path]:
    return noise_pngs(tmp_path_factory.mktemp("same-images"), 4, seed=3)


def grid_visitor(base: str, tally: Tally) -> None:
    """One fresh session: the default /grid, then every picture it names, downloaded and decoded."""
    with httpx.Client(timeout=120) as http:
        for url in file_urls(call(http, base, "grid", GRID_ARGS)):
            tally.fetch(http, url)


def uploader(ctx, base: str, paths: list[Path], tally: Tally) -> None:
    """Upload the same images as the others (same preview), then close the session during the fetch."""
    session_hash = uuid.uuid4().hex[:12]
    with httpx.Client(timeout=120) as http:
        data = [None, [upload(base, p) for p in paths], 32, "colour"]
        urls = file_urls(call(http, base, "upload", data, session_hash))
        closer = threading.Thread(target=ctx.sessions.close, args=(session_hash,))
        closer.start()  # as demo.unload does when the tab goes
        for url in urls:
            tally.fetch(http, url)
        closer.join()


@pytest.mark.integration
@pytest.mark.weights
@pytest.mark.slow
def test_identical_outputs_from_many_sessions_arrive_whole(served, same_images):
    ctx, _, base, in_place = served
    with httpx.Client(timeout=120) as http:
        call(http, base, "grid", GRID_ARGS)  # warm: the model loads once, outside the measurement
    tally = Tally()
    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        jobs = [pool.submit(uploader, ctx, base, same_images, tally) for _ in range(UPLOADERS)]
        jobs += [pool.submit(grid_visitor, base, tally) for _ in range(GRID_CALLS)]
        for job in jobs:
            job.result()
    print(f"\n{GRID_CALLS} /grid + {UPLOADERS} /upload from {THREADS} threads: {tally.ok} files whole, "
          f"{len(tally.bad)} torn or missing, {time.monotonic() - started:.1f} s")
    assert not tally.bad, f"{len(tally.bad)} bad downloads, e.g. {tally.bad[:5]}"
    assert not in_place, f"outputs that Gradio wrote in place or copied from a session: {sorted(set(in_place))}"
    assert tally.ok == GRID_CALLS * 16 + UPLOADERS  # every named file was fetched


@pytest.mark.integration
@pytest.mark.weights
@pytest.mark.slow
def test_a_picture_named_again_later_outlives_the_cache_sweep(served):
    """The sweep removes cache files older than its age (by ctime): a file named now must be new."""
    from gradio.route_utils import delete_files_created_by_app

    _, demo, base, _ = served
    args = ["dcgan-faces-64", 4242, 1.0, *[0.0] * 8, "nearest", "256", 0, *[0.0] * 8, "{}", ""]
    age = 5  # a stall this long between naming and sweeping would be needed to fail the new code
    with httpx.Client(timeout=120) as http:
        first = file_urls(call(http, base, "generate", args))[0]
        time.sleep(age + 0.5)  # the first file is now older than the sweep's age
        again = file_urls(call(http, base, "generate", args))[0]
        delete_files_created_by_app(demo, age)  # what delete_cache runs every hour, with age=KEEP_S
        fetch_image(http, again)  # named a moment ago: still readable
        assert http.get(first).status_code in (403, 404)  # the sweep did run (on the file named long ago)


def test_published_files_are_whole_fresh_and_in_gradios_cache(tmp_path):
    data = os.urandom(50_000)
    paths = [files.publish(data, "same.bin") for _ in range(3)]
    assert len(set(paths)) == 3  # written once each: no later request rewrites a named file
    for path in map(Path, paths):
        assert path.name == "same.bin" and path.read_bytes() == data
        assert path.is_relative_to(Path(gradio.utils.get_upload_folder()))
        assert not [p for p in path.parent.iterdir() if p.name != "same.bin"]  # no temporary left
    picture = Image.new("RGB", (40, 30), (10, 200, 30))
    for name, fmt in (("a.png", "PNG"), ("a.webp", "WEBP"), ("a.jpg", "JPEG")):
        with Image.open(files.publish_image(picture, name)) as back:
            assert back.format == fmt and back.size == (40, 30)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    import zipfile

    with zipfile.ZipFile(files.publish_zip(tmp_path / "model", "model.zip")) as archive:
        assert archive.namelist() == ["config.json"]
    for bad in ("", "../x.png", "a/b.png", ".hidden"):
        with pytest.raises(ValueError):
            files.publish(b"x", bad)


def test_prune_drops_only_windows_past_the_sweep(monkeypatch, tmp_path):
    monkeypatch.setattr(files, "cache_root", lambda: tmp_path)
    monkeypatch.setattr(files, "_pruned_window", -1)
    now = int(time.time() // files.WINDOW_S)
    every, age = files.DELETE_CACHE
    past_sweep = now - (every + age) // files.WINDOW_S - 2
    for window in (past_sweep, past_sweep + 1, now):
        (tmp_path / str(window) / "f").mkdir(parents=True)
    path = Path(files.publish(b"new", "n.txt"))
    assert sorted(int(p.name) for p in tmp_path.iterdir()) == [past_sweep + 1, now]
    assert path.read_bytes() == b"new"


def test_the_app_sweeps_its_cache_on_the_schedule_the_lifetime_promise_assumes(served):
    _, demo, _, _ = served
    assert demo.delete_cache == files.DELETE_CACHE and files.DELETE_CACHE[1] == files.KEEP_S
