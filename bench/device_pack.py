"""Pack what `bench/gpu.sh` needs beside the code into `.device/` (git-ignored) for a lent GPU box.

A lent GPU machine has PyTorch but no internet, and what travels with the working tree is capped
(64 MiB on ours). The suite needs the fetched models (dcgan-faces-64, 14 MB; the three instant-style
networks, 11 MB; vgg16-hed, 59 MB in fp32): the pack keeps the first ones as they are and stores
VGG16's weights in float16 (29 MB). Loading
upcasts them to float32, so the work per iteration is the same; the values differ by float16
rounding, for ours and the reference alike. Each folder gets a stamp with its own sha256 and says
that it is a benchmark copy.

    python -m bench.device_pack [--out .device]
then, on the GPU box (with `.device` and `runs/emoji-faces` carried): bench/gpu.sh RESULTS_DIR
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from weights.fetch import STAMP, ensure, sha256_file

ROOT = Path(__file__).resolve().parents[1]
AS_IS = ("dcgan-faces-64", "magenta-style-predictor", "magenta-style-painter", "magenta-26-styles")
HALVED = ("vgg16-hed",)


def pack_model(model_id: str, dest: Path, halve: bool) -> int:
    """Copy one fetched model folder into dest/model_id (weights in fp16 if `halve`); bytes written."""
    src, out = ensure(model_id), dest / model_id
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "README.md", "directions.safetensors"):
        if (src / name).is_file():
            shutil.copy2(src / name, out / name)
    weights = out / "model.safetensors"
    if halve:
        state = load_file(str(src / "model.safetensors"))
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        save_file(state, str(weights))
    else:
        shutil.copy2(src / "model.safetensors", weights)
    stamp = json.loads((src / STAMP).read_text())
    stamp.update(model_sha256=sha256_file(weights), benchmark_copy=f"float16 copy of {stamp['model_sha256']}"
                 if halve else "exact copy")
    (out / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    return sum(f.stat().st_size for f in out.iterdir())


def main(argv: list[str] | None = None) -> int:
    """Write the pack and print its size."""
    parser = argparse.ArgumentParser(prog="python -m bench.device_pack", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".device")
    args = parser.parse_args(argv)
    dest = args.out / "weights"
    total = sum(pack_model(m, dest, halve=m in HALVED) for m in AS_IS + HALVED)
    print(f"{dest}: {total / 2**20:.1f} MiB; carry `.device` and `runs/emoji-faces`, run bench/gpu.sh RESULTS_DIR")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
