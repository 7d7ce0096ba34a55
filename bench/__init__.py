"""Benchmarks: our code against faithful re-creations of the reference programs, same process."""

import importlib.util
import socket


def free_port() -> int:
    """A free TCP port on loopback (benchmarks only ever talk to 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def skipped_row(what: str, missing: str) -> dict:
    """A row that says why it was not measured (e.g. a GPU box without gradio installed)."""
    return {"what": what, "note": f"skipped: the Python package {missing!r} is not installed here"}


def has_module(name: str) -> bool:
    """Whether `import name` would find a module, without importing it (a broken one counts as absent)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False
