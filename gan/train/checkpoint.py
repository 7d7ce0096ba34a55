"""Training checkpoints in safetensors (no pickle): weights, optimiser states, step, config, RNG.

One file `checkpoint.safetensors` holds every tensor under a prefix (`G.`, `D.`, `EMA.`,
`optG.<param index>.<state name>`, `optD...`, `rng`); the small non-tensor parts (the step, the
training config, the optimisers' param_groups) go into the file's string metadata as JSON. It is
written to a temporary name and renamed, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

CHECKPOINT_FILE = "checkpoint.safetensors"


class CheckpointError(ValueError):
    """A checkpoint folder that is missing, unreadable or from another configuration."""


@dataclass
class TrainState:
    """Everything needed to continue a run, as plain tensors and JSON-able values."""

    step: int
    config: dict
    modules: dict[str, dict[str, torch.Tensor]]  # "G" / "D" / "EMA" -> state_dict
    optimizers: dict[str, dict]  # "optG" / "optD" -> optimizer state_dict
    rng: torch.Tensor  # the trainer's torch.Generator state (uint8)


def _flatten(state: TrainState) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """TrainState -> (tensors, string metadata) for safetensors."""
    tensors = {f"{m}.{k}": v.detach().to("cpu").contiguous().clone()
               for m, sd in state.modules.items() for k, v in sd.items()}
    groups = {}
    for name, opt_sd in state.optimizers.items():
        groups[name] = opt_sd["param_groups"]
        for idx, per_param in opt_sd["state"].items():
            for key, value in per_param.items():
                tensors[f"{name}.{idx}.{key}"] = torch.as_tensor(value).detach().to("cpu").contiguous().clone()
    tensors["rng"] = state.rng.to("cpu").contiguous().clone()
    meta = {"step": str(state.step), "config": json.dumps(state.config),
            "param_groups": json.dumps(groups), "format": "gan-atelier-checkpoint-1"}
    return tensors, meta


def save_checkpoint(state: TrainState, directory: Path) -> Path:
    """Write `directory/checkpoint.safetensors` atomically; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors, meta = _flatten(state)
    path = directory / CHECKPOINT_FILE
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def _unflatten(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> TrainState:
    """Inverse of `_flatten`."""
    groups = json.loads(meta["param_groups"])
    modules: dict[str, dict[str, torch.Tensor]] = {"G": {}, "D": {}, "EMA": {}}
    optimizers = {name: {"state": {}, "param_groups": pg} for name, pg in groups.items()}
    for key, value in tensors.items():
        head, _, rest = key.partition(".")
        if head in modules:
            modules[head][rest] = value
        elif head in optimizers:
            idx, _, name = rest.partition(".")
            optimizers[head]["state"].setdefault(int(idx), {})[name] = value
    return TrainState(step=int(meta["step"]), config=json.loads(meta["config"]), modules=modules,
                      optimizers=optimizers, rng=tensors["rng"])


def load_checkpoint(directory: Path) -> TrainState:
    """Read a checkpoint folder written by `save_checkpoint` (safetensors only, never pickle)."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory}: no {CHECKPOINT_FILE} to resume from.")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            meta = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except Exception as err:  # safetensors raises its own SafetensorError / OSError types
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({err}).") from err
    if meta.get("format") != "gan-atelier-checkpoint-1":
        raise CheckpointError(f"{path}: not a GAN Atelier training checkpoint.")
    return _unflatten(tensors, meta)


def read_config(directory: Path) -> dict:
    """Only the training config stored in a checkpoint (no tensors are read)."""
    path = Path(directory) / CHECKPOINT_FILE
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        return json.loads((handle.metadata() or {}).get("config", "{}"))


def adopt_optimizer_state(opt: torch.optim.Optimizer, fused: bool | None) -> None:
    """Fit loaded Adam state to this trainer's parameters and device.

    Checkpoints store contiguous tensors, but on CUDA the parameters are channels_last and fused
    Adam refuses moments of another layout; a checkpoint written on another device also brings
    its own `fused` flag and `step` placement. So: this device's `fused`, moments in the
    parameters' layout, and `step` on the parameters' device only where fused Adam wants it there.
    """
    for group in opt.param_groups:
        group["fused"] = fused
    for param, slots in opt.state.items():
        for key, value in slots.items():
            if not torch.is_tensor(value):
                continue
            if key == "step":
                slots[key] = value.to(param.device if fused else "cpu", torch.float32)
            elif value.shape == param.shape:
                slots[key] = torch.empty_like(param).copy_(value)
