"""`python -m bench [--quick] [--slow] [--only NAME ...] [--out DIR]`: run every benchmark, print one table.

Each benchmark module exposes `run(quick: bool) -> list[dict]`; a row has
what, ours, reference, unit, ratio, device (and optionally peak_mem_mb, spread, note).
`ratio` is always "how many times better ours is": reference time / our time, or our
throughput / reference throughput; above 1 means ours wins.
Ours and the reference always run in the same process, one after the other.
Results are also written as JSON (and Markdown) so that two runs can be compared.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCHMARKS = ["explore_latency", "explore_web", "interpolation", "train_throughput", "train_cpu", "ingest",
              "style_speed", "style_instant", "ddp_scaling", "cold_start"]
SLOW = ["train_quality"]  # ~45 minutes: only with --slow or --only
COLUMNS = ["what", "ours", "reference", "unit", "ratio", "device", "peak_mem_mb", "note"]


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return "" if value is None else str(value)


def to_markdown(rows: list[dict]) -> str:
    """One Markdown table of all rows."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def normalise_ratio(row: dict) -> dict:
    """Recompute `ratio` from ours / reference by the unit, so every row reads the same way."""
    ours, ref, unit = row.get("ours"), row.get("reference"), str(row.get("unit", ""))
    if isinstance(ours, (int, float)) and isinstance(ref, (int, float)) and ours > 0 and ref > 0:
        higher_is_better = "/s" in unit  # images/s; times (s, ms, s/iter) are better lower
        row["ratio"] = round(ours / ref if higher_is_better else ref / ours, 3)
    return row


def wait_for_child(proc: subprocess.Popen, timeout_s: float | None) -> tuple[int, object, bool]:
    """Wait for the child (after timeout_s, kill its whole process group: DataLoader workers,
    spawned DDP ranks and app servers too); (exit code, rusage, timed out)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    timed_out = False
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG if deadline else 0)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
                return proc.returncode, usage, timed_out
            if not timed_out and time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                timed_out = True
            time.sleep(0.2)
    except KeyboardInterrupt:  # the child has its own process group: Ctrl-C must reach it from here
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def run_one(name: str, quick: bool, timeout_s: float | None = None) -> list[dict]:
    """One benchmark in a fresh child process; its rows get the child's peak RSS (ours and the
    reference together: they share the process, one after the other). A child that fails or
    outlives `timeout_s` becomes a FAILED row, and the suite goes on."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        proc = subprocess.Popen([sys.executable, "-m", "bench._one", name, str(out)] + (["--quick"] if quick else []),
                                process_group=0)
        code, usage, timed_out = wait_for_child(proc, timeout_s)
        if timed_out:
            return [{"what": name, "note": f"FAILED: still running after {timeout_s:.0f} s, stopped"}]
        if code != 0 or not out.is_file():
            return [{"what": name, "note": f"FAILED: exit status {code} (see the log above)"}]
        rows = json.loads(out.read_text())
    for row in rows:
        row.setdefault("peak_mem_mb", round(usage.ru_maxrss / 1024, 1))  # ru_maxrss is in KiB on Linux
    return rows


def save(rows: list[dict], out: Path, stamp: str, quick: bool) -> None:
    """Write the rows so far as JSON + Markdown (after every benchmark: a run cut short keeps them)."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {"when": stamp, "python": sys.version.split()[0], "machine": platform.processor() or platform.machine(),
            "quick": quick}
    (out / f"bench-{stamp}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (out / f"bench-{stamp}.md").write_text(to_markdown(rows) + "\n")


def run_all(names: list[str], quick: bool, out: Path, timeout_s: float | None = None) -> list[dict]:
    """Run the named benchmarks one process each; a failing one becomes a row that says why."""
    rows: list[dict] = []
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in names:
        started = time.perf_counter()
        rows += [normalise_ratio(row) for row in run_one(name, quick, timeout_s)]
        logging.info("%s took %.0f s", name, time.perf_counter() - started)
        save(rows, out, stamp, quick)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print and save the table."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--only", nargs="*", choices=BENCHMARKS + SLOW, help="run only these")
    parser.add_argument("--slow", action="store_true", help=f"also run the slow ones ({', '.join(SLOW)})")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for JSON + Markdown")
    parser.add_argument("--timeout-each", type=float, default=None, metavar="S",
                        help="stop a benchmark after S seconds (its row says so) and go on with the next")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    rows = run_all(args.only or BENCHMARKS + (SLOW if args.slow else []), args.quick, args.out, args.timeout_each)
    print(to_markdown(rows))
    failed = [r for r in rows if str(r.get("note", "")).startswith("FAILED")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
