"""Small helpers for wiring handlers to gradio events.

Gradio injects `gr.Request` only into positional parameters: a handler written as
`def on_x(self, *args, request: gr.Request = None)` silently gets `request=None`, so every visitor would
share the anonymous session. `with_request` gives such a handler a fixed positional signature.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable

import gradio as gr


def with_request(fn: Callable, n_inputs: int) -> Callable:
    """Wrap `fn(*values, request=...)` as `wrapper(a0, ..., a{n-1}, request: gr.Request)` for gradio."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    params = [inspect.Parameter(f"a{i}", kind) for i in range(n_inputs)]
    params.append(inspect.Parameter("request", kind, annotation=gr.Request))

    @functools.wraps(fn)
    def wrapper(*args):
        *values, request = args
        return fn(*values, request=request)

    wrapper.__signature__ = inspect.Signature(params)
    wrapper.__annotations__ = {"request": gr.Request}
    del wrapper.__wrapped__  # inspect.signature must see the positional signature, not fn's
    return wrapper
