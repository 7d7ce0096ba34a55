"""Run one benchmark in this (fresh) process and write its rows as JSON: `python -m bench._one NAME OUT`.

`python -m bench` starts one such process per benchmark, so that each row's peak memory (the
child's max RSS from `os.wait4`, and on CUDA `torch.cuda.max_memory_allocated`) is its own.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """argv: NAME OUT [--quick]."""
    name, out = argv[0], Path(argv[1])
    rows = importlib.import_module(f"bench.{name}").run(quick="--quick" in argv)
    import torch  # after the run: the benchmark chose its own threads and device

    if torch.cuda.is_available() and torch.cuda.max_memory_allocated() > 0:
        gpu_mb = torch.cuda.max_memory_allocated() / 2**20
        for row in rows:
            row.setdefault("peak_gpu_mb", round(gpu_mb, 1))
    out.write_text(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
