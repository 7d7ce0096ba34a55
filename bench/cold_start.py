"""Cold start: seconds from `python app.py` to the first served page, against a trivial Gradio app.

Both are started as fresh processes (imports included) on a free loopback port; we poll `/`
until it answers 200, then read the process's peak RSS (VmHWM) and stop it.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench import free_port, has_module, skipped_row

ROOT = Path(__file__).resolve().parent.parent


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def time_to_first_page(script: Path, timeout: float = 120.0) -> tuple[float, float | None]:
    """Start `python script` and return (seconds until GET / is 200, peak RSS in MB)."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < timeout:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    if resp.status == 200:
                        return time.perf_counter() - started, _peak_rss_mb(proc.pid)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        raise TimeoutError(f"{script.name} served no page within {timeout:.0f} s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run(quick: bool = False) -> list[dict]:
    """Median of a few cold starts each, ours then the reference, alternating."""
    if not has_module("gradio"):
        return [skipped_row("cold start to first page", "gradio")]
    repeats = 1 if quick else 3
    ours, ref, mem = [], [], []
    for _ in range(repeats):
        seconds, rss = time_to_first_page(ROOT / "app.py")
        ours.append(seconds)
        mem.append(rss or 0.0)
        ref.append(time_to_first_page(ROOT / "bench" / "reference" / "trivial_app.py")[0])
    o, r = statistics.median(ours), statistics.median(ref)
    return [{"what": "cold start to first page", "ours": o, "reference": r, "unit": "s",
             "ratio": r / o, "device": "cpu", "peak_mem_mb": max(mem),
             "note": f"target <= 5 s; spread {min(ours):.2f}-{max(ours):.2f} s; reference = trivial gradio app"}]


def main() -> None:
    """Print the rows."""
    for row in run():
        print(row)


if __name__ == "__main__":
    main()
