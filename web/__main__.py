"""Command line: `python -m web fetch [--force]` (onnxruntime-web for in-page rendering), `python -m web status`."""

from __future__ import annotations

import argparse
import logging
import sys

from web import runtime


def main(argv: list[str] | None = None) -> int:
    """Fetch (idempotently) or report the pinned browser runtime."""
    parser = argparse.ArgumentParser(prog="python -m web", description=__doc__)
    parser.add_argument("command", choices=["fetch", "status"])
    parser.add_argument("--force", action="store_true", help="fetch again even if present")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "status":
        state = "ready" if runtime.is_ready() else "missing"
        print(f"{runtime.PACKAGE} {runtime.VERSION}: {state} ({runtime.runtime_dir()})")
        return 0
    try:
        print(runtime.fetch(force=args.force))
    except runtime.RuntimeUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
