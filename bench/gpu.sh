#!/usr/bin/env bash
# Run the whole benchmark suite on a CUDA GPU and write its table (Markdown + JSON) to a folder.
# Installs nothing: run it where `make install` ran, or on a bare GPU box that has PyTorch, after
# `python -m bench.device_pack` here and with `.device` and `runs/emoji-faces` carried along
# (rows that need gradio then say "skipped"). About 5 minutes on an H100; each benchmark is
# stopped after BENCH_EACH_S seconds (default 150) and the whole run after 480 s, keeping the rows so far.
# Usage: bench/gpu.sh RESULTS_DIR [python -m bench options, e.g. --quick or --only style_speed]
# Rehearsal on a machine without CUDA: ALLOW_CPU=1 bench/gpu.sh RESULTS_DIR --quick
set -euo pipefail
out=${1:?usage: bench/gpu.sh RESULTS_DIR [bench options]}
shift
out=$(mkdir -p "$out" && cd "$out" && pwd)
cd "$(dirname "$0")/.."
py=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
if [ -z "${ATELIER_WEIGHTS_DIR:-}" ] && [ -d .device/weights ]; then
  export ATELIER_WEIGHTS_DIR=$PWD/.device/weights  # the pack written by bench/device_pack.py
fi
if [ "${ALLOW_CPU:-0}" = 1 ]; then
  device=cpu
else
  device=cuda
  "$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'"
fi
"$py" -c "import sys, torch; print('python', sys.version.split()[0], '| torch', torch.__version__, '|',
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')" | tee "$out/device.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$out/device.txt" 2>/dev/null || true
ATELIER_DEVICE=$device GRADIO_ANALYTICS_ENABLED=False PYTHONUNBUFFERED=1 timeout 480 \
  "$py" -m bench --out "$out" --timeout-each "${BENCH_EACH_S:-150}" "$@" 2>&1 | tee "$out/log.txt"
