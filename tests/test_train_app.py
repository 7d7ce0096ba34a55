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
# /start's parameters are TrainConfig's names (plus the format); tiny nets, many steps: we stop it.
RUN = dict(image_size=32, channels="colour", steps=5000, batch_size=8, ngf=8, ndf=8, nz=16, label_smoothing=0.1,
           diffaugment=True, ema_decay=0.99)


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
    report = client.predict(files=[handle_file(str(p)) for p in image_files], image_size=32, api_name="/upload")
    assert "6 images ready" in report[0] and "readme.txt" in report[0]
    assert "s per step" in report[2]  # the measured time estimate
    job = client.submit(**RUN, api_name="/start")
    live = _wait_for(job, lambda out: _step(out) >= 3)
    assert "Training" in live[0] and "images/s" in live[1]
    assert len(live[2]["data"]) >= 4  # the loss plot has points (2 series x >= 2 steps)

    other = Client(app_url, verbose=False)  # another browser session
    with pytest.raises(Exception, match="Upload some images first"):
        other.predict(**RUN, api_name="/start")  # it cannot see this session's data
    other.predict(files=[handle_file(str(p)) for p in image_files[:3]], image_size=32, api_name="/upload")
    queued = other.submit(**RUN, api_name="/start")
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
        client.predict(repo_id="someone/my-dcgan", token="hf_not_a_token", api_name="/push")
    client.predict(label="My DCGAN", api_name="/export")


def test_resume_after_stop_takes_new_learning_rates_and_refuses_new_shapes(image_files, app_url):
    client = Client(app_url, verbose=False)
    client.predict(files=[handle_file(str(p)) for p in image_files], image_size=32, api_name="/upload")
    job = client.submit(**RUN, api_name="/start")
    _wait_for(job, lambda out: _step(out) >= 2)
    stopped_at = _step(client.predict(api_name="/stop"))
    with pytest.raises(Exception, match="ngf is 8 in this run"):
        client.predict(**{**RUN, "ngf": 16}, api_name="/resume")  # the weights have another shape
    resumed = client.submit(**{**RUN, "lr_d": 5e-5}, api_name="/resume")  # the lesson's remedy when D wins
    _wait_for(resumed, lambda out: _step(out) > stopped_at + 1)
    first = resumed.outputs()[0]  # a run's first update shows the settings it trains with
    assert (first[5], first[6], first[10], first[-1]) == (32, "colour", 5e-5, 0.99)  # size, channels, lr_d, EMA
    assert "Stopped" in client.predict(api_name="/stop")[0]
