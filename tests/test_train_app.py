"""Train tab through gradio_client: upload, train, queue, stop, download, push offline, sessions kept apart."""

from __future__ import annotations

import re
import time
import zipfile

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

pytestmark = pytest.mark.integration
# size, channels, then the settings in ui.train.FIELDS order: steps, batch, lr_g, lr_d, loss, ngf, ndf, nz,
# label smoothing, D-skip threshold, DiffAugment, EMA decay, seed. Tiny nets, many steps: we stop it.
RUN = (32, "colour", 5000, 8, 2e-4, 2e-4, "bce", 8, 8, 16, 0.1, 0.0, True, 0.99, 0)


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    (folder / "readme.txt").write_text("not an image")
    return [*paths, folder / "readme.txt"]


def _wait_for(job, predicate, timeout=180.0):
    """The latest streamed output of a submitted generator event once `predicate` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outputs = job.outputs()
        if outputs and predicate(outputs[-1]):
            return outputs[-1]
        time.sleep(0.5)
    raise AssertionError(f"timed out; last output: {job.outputs()[-1:]}")


def _step(output) -> int:
    """The step shown in the progress bar's text (0 before the first step)."""
    found = re.search(r"step ([\d,]+) /", output[1])
    return int(found.group(1).replace(",", "")) if found else 0


def test_upload_train_stop_download_and_push(client, image_files, app_url):
    report = client.predict(None, [handle_file(str(p)) for p in image_files], 32, "colour", api_name="/upload")
    assert "6 images ready" in report[0] and "readme.txt" in report[0]
    assert "s per step" in report[2]  # the measured time estimate
    job = client.submit(*RUN, api_name="/start")
    live = _wait_for(job, lambda out: _step(out) >= 3)
    assert "Training" in live[0] and "images/s" in live[1]
    assert len(live[2]["data"]) >= 4  # the loss plot has points (2 series x >= 2 steps)

    other = Client(app_url, verbose=False)  # another browser session
    with pytest.raises(Exception, match="Upload some images first"):
        other.predict(*RUN, api_name="/start")  # it cannot see this session's data
    other.predict(None, [handle_file(str(p)) for p in image_files[:3]], 32, "colour", api_name="/upload")
    queued = other.submit(*RUN, api_name="/start")
    waiting = _wait_for(queued, lambda out: "queue" in out[1])
    assert "position 1 in the queue" in waiting[1]  # one job at a time on CPU

    stopped = client.predict(api_name="/stop")
    assert "Stopped" in stopped[0]
    _wait_for(queued, lambda out: _step(out) >= 1)  # the queued session starts once the slot is free
    assert "Stopped" in other.predict(api_name="/stop")[0]

    archive = client.predict(api_name="/download")
    archive = archive["value"] if isinstance(archive, dict) else archive  # the File is also made visible
    with zipfile.ZipFile(archive) as zf:
        assert {"config.json", "model.safetensors", "README.md", "samples.png"} <= set(zf.namelist())
    with pytest.raises(Exception, match="offline"):
        client.predict("someone/my-dcgan", "hf_not_a_token", api_name="/push")
    client.predict("My DCGAN", api_name="/export")


def test_resume_after_stop_takes_new_learning_rates_and_refuses_new_shapes(image_files, app_url):
    client = Client(app_url, verbose=False)
    client.predict(None, [handle_file(str(p)) for p in image_files], 32, "colour", api_name="/upload")
    job = client.submit(*RUN, api_name="/start")
    _wait_for(job, lambda out: _step(out) >= 2)
    stopped_at = _step(client.predict(api_name="/stop"))
    wider = list(RUN)
    wider[7] = 16  # ngf: the weights have another shape
    with pytest.raises(Exception, match="ngf is 8 in this run"):
        client.predict(*wider, api_name="/resume")
    slower_d = list(RUN)
    slower_d[5] = 5e-5  # lr_d: the lesson's remedy when D wins
    resumed = client.submit(*slower_d, api_name="/resume")
    _wait_for(resumed, lambda out: _step(out) > stopped_at + 1)
    assert "Stopped" in client.predict(api_name="/stop")[0]
