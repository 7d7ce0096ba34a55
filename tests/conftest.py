"""Shared fixtures: the one tiny model, a launched app on a free loopback port, a headless browser."""

from __future__ import annotations

import os
import socket

import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ATELIER_DEVICE", "cpu")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The one tiny DCGAN of the tests (millisecond steps): the model, the trainer and the CLI take it from here.
TINY_MODEL = {"image_size": 32, "nc": 3, "nz": 8, "ngf": 4, "ndf": 4}
TINY_TRAIN = {**TINY_MODEL, "batch_size": 4, "sample_every": 3, "checkpoint_every": 3, "n_samples": 4}


def tiny_train_config(**overrides):
    """A TrainConfig of the tiny model (overrides on top of TINY_TRAIN)."""
    from gan.train import TrainConfig

    return TrainConfig(**{**TINY_TRAIN, **overrides})


def tiny_cli(**overrides) -> list[str]:
    """The tiny model's `python -m gan.train` options (--size 32 --nz 8 ...; overrides as field=value)."""
    from gan.train.cli import RENAMED

    options = []
    for name, value in {**TINY_TRAIN, **overrides}.items():
        options += [f"--{RENAMED.get(name, name).replace('_', '-')}", str(value)]
    return options


def tiny_generator():
    """The tiny generator with seeded weights (the caller's RNG untouched), in eval mode."""
    from gan.explorer.model import Generator

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Generator(tiny_model_config()).eval()


def tiny_model_config(**overrides):
    """The tiny model's DCGANConfig."""
    from gan.explorer.model import DCGANConfig

    return DCGANConfig(**{**TINY_MODEL, **overrides})


@pytest.fixture
def tiny_config():
    """The tiny DCGAN's config."""
    return tiny_model_config()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """The whole app launched once per test session on a free loopback port; yields its URL."""
    os.environ.setdefault("ATELIER_RUNTIME_DIR", str(tmp_path_factory.mktemp("runtime")))
    from app import build_demo, serve

    demo = build_demo()
    port = free_port()
    serve(demo, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="session")
def client(app_url):
    """A gradio_client Client on the launched app."""
    from gradio_client import Client

    return Client(app_url, verbose=False)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium through Playwright (never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh browser page on the app, 1280x900."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.goto(app_url)
    pg.wait_for_selector("text=GAN Atelier", timeout=30_000)
    yield pg
    context.close()


@pytest.fixture(scope="session")
def artifacts_dir():
    """Where tests write screenshots (git-ignored except the README's)."""
    from pathlib import Path

    path = Path(__file__).parent / "artifacts"
    path.mkdir(exist_ok=True)
    return path


def save_readme_screenshot(png: bytes, name: str, colors: int = 160, width: int | None = None) -> None:
    """Refresh docs/<name> (a small palette PNG for the README) only when ATELIER_UPDATE_SCREENSHOTS=1,
    so that an ordinary test run leaves the checkout clean (`make screenshots` sets it)."""
    if os.environ.get("ATELIER_UPDATE_SCREENSHOTS") != "1":
        return
    import io
    from pathlib import Path

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    if width and image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
    target = Path(__file__).resolve().parent.parent / "docs" / name
    image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)


@pytest.fixture
def one_thread():
    """One torch thread for a test of small tensors: faster there, and on a shared 2-core machine two threads
    spin-wait badly (tests opt in with `pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
