"""Optional Hugging Face ZeroGPU support: `gpu(duration=...)` marks a handler that does GPU work.

On a Space (SYSTEM=spaces) with the `spaces` package installed, it is `spaces.GPU(duration=...)`, which
attaches a GPU for the duration of each call (generators included); everywhere else it changes nothing.
Applied in ui/ to the heavy handlers only, never in the engines (they know nothing of Spaces).
"""

from __future__ import annotations

import importlib
import os
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


def _unchanged(fn: F) -> F:
    return fn


def gpu(duration: int = 60) -> Callable[[F], F]:
    """`spaces.GPU(duration=duration)` on a ZeroGPU Space, else a decorator that returns fn as it is."""
    if os.environ.get("SYSTEM") != "spaces":
        return _unchanged
    try:
        spaces = importlib.import_module("spaces")
    except ImportError:  # a Space without ZeroGPU (CPU or a dedicated GPU) does not need it
        return _unchanged
    return spaces.GPU(duration=duration)
