"""Benchmarks: our code against faithful re-creations of the reference programs, same process."""

import socket


def free_port() -> int:
    """A free TCP port on loopback (benchmarks only ever talk to 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
