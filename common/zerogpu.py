"""Optional Hugging Face ZeroGPU support, and the rules it imposes on where GPU work may happen.

On a ZeroGPU Space (SYSTEM=spaces, SPACES_ZERO_GPU set, the `spaces` package installed) a GPU exists
only inside functions decorated with `spaces.GPU`, each call run in a forked worker process for at
most its `duration`, out of a daily quota of minutes per visitor. Hence:

- `prepare()` imports `spaces` before anything touches CUDA (app.py calls it first);
- `main_device()` is the CPU there: the main process (slider renders, training threads, session
  state) must not use CUDA, and a training run outlives any call and any visitor's quota;
- `gpu(duration)` decorates the one kind of call that gains from a GPU and fits a call: a style
  transfer run (ui/style.py), which asks `call_device()` for the GPU inside the call;
- state set inside a decorated call stays in the worker, so a Stop button cannot use a
  `threading.Event` there: `StopFlag` is a file, seen by the main process and the worker alike.

Everywhere else (a laptop, a CPU Space, a dedicated-GPU Space) `gpu` changes nothing and
`main_device`/`call_device` are `common.device.pick_device`. Nothing happens at import.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def active() -> bool:
    """True on a ZeroGPU Space (Spaces sets SPACES_ZERO_GPU there) with the `spaces` package present."""
    if os.environ.get("SYSTEM") != "spaces" or not os.environ.get("SPACES_ZERO_GPU"):
        return False
    try:
        importlib.import_module("spaces")
    except ImportError:
        return False
    return True


def prepare() -> None:
    """Import `spaces` first on a ZeroGPU Space: it must patch torch before CUDA is first probed."""
    active()


def main_device():
    """The device of the main process: the CPU on ZeroGPU, else cuda -> mps -> cpu."""
    import torch

    from common.device import pick_device

    return torch.device("cpu") if active() else pick_device()


def call_device(default):
    """The device inside a `gpu`-decorated call: the GPU on ZeroGPU, else `default` (the app's)."""
    import torch

    return torch.device("cuda") if active() else default


def _unchanged(fn: F) -> F:
    return fn


def gpu(duration: int | Callable[..., int] = 60) -> Callable[[F], F]:
    """`spaces.GPU(duration=duration)` on a ZeroGPU Space, else a decorator that returns fn as it is.
    `duration` may be a function of the handler's arguments (seconds), as spaces.GPU allows."""
    if not active():
        return _unchanged
    return importlib.import_module("spaces").GPU(duration=duration)


class StopFlag:
    """A stop request kept in memory and as a file in an existing folder (a session's), so that a
    forked ZeroGPU worker sees what the main process set. Has the `is_set` / `set` / `clear` of the
    `threading.Event` that the engines poll."""

    def __init__(self, path: Path) -> None:
        self.path, self._local = Path(path), threading.Event()

    def set(self) -> None:
        self._local.set()
        try:
            self.path.touch()
        except FileNotFoundError:  # the folder is gone (a closed session): memory is enough then
            pass

    def clear(self) -> None:
        self._local.clear()
        self.path.unlink(missing_ok=True)

    def is_set(self) -> bool:
        return self._local.is_set() or self.path.exists()
