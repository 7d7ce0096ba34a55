#!/usr/bin/env bash
# Run the whole benchmark suite on a CUDA GPU and write its table (Markdown + JSON) to a folder.
# Installs nothing: run it where `make install` (or the Space's requirements) already ran.
# Usage: bench/gpu.sh RESULTS_DIR   (about 5-8 minutes on an H100)
set -euo pipefail
out=${1:?usage: bench/gpu.sh RESULTS_DIR}
cd "$(dirname "$0")/.."
py=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
mkdir -p "$out"
"$py" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))" | tee "$out/device.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$out/device.txt" 2>/dev/null || true
ATELIER_DEVICE=cuda PYTHONUNBUFFERED=1 timeout 480 "$py" -m bench --out "$out" 2>&1 | tee "$out/log.txt"
