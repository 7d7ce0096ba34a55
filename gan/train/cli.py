"""Command line for the trainer: `python -m gan.train --data DIR_OR_ZIP --size 64 --steps 2000 --out runs/NAME`.

Same engine as the Train tab. Every `TrainConfig` field is an option (`--lr-d 1e-4`, `--diffaugment none`);
unset options take the defaults that `suggest_config` picks for the data set size and the device.
Writes into --out: checkpoint.safetensors, metrics.jsonl, samples/step_*.png, loss.png, and at the end
the exported EMA generator in model/ (config.json + model.safetensors + README.md + samples.png).

One code path for one process, for torchrun (WORLD_SIZE > 1: every rank runs this, rank 0 alone
prints, draws the progress bar and writes) and for `--stream` (sets larger than memory, read by
DataLoader workers). See docs/distributed.md for the commands.
"""

from __future__ import annotations

import argparse
import logging
import signal
import tempfile
import threading
from dataclasses import fields
from pathlib import Path

import torch
from tqdm import tqdm

from common.device import describe, pick_device
from gan.ingest.data import IngestConfig, ingest
from gan.ingest.streaming import count_images, find_shards, make_loader
from gan.train.checkpoint import CHECKPOINT_FILE, read_config
from gan.train.config import TrainConfig, suggest_config
from gan.train.distributed import DistEnv, device_for, parallel_hook, setup, teardown
from gan.train.feed import BatchStream
from gan.train.metrics import D_OUTPUT_KEYS, LOSS_KEYS
from gan.train.plot import metrics_plot
from gan.train.trainer import Trainer

RENAMED = {"image_size": "size", "nc": "channels"}  # short option names for the two data-shape fields
SHAPE_FIELDS = ("image_size", "nc")


def build_parser() -> argparse.ArgumentParser:
    """Options: the data, the run folder, how to run, and one option per TrainConfig field."""
    parser = argparse.ArgumentParser(prog="python -m gan.train", description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, help="image folder(s), image files or .zip archives")
    parser.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, samples, metrics, model)")
    parser.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--credit", default="", help="training-data credit for the model card")
    parser.add_argument("--licence", default="other", help="licence id for the model card (e.g. apache-2.0)")
    parser.add_argument("--stream", action="store_true",
                        help="stream images from tar shards / a folder with DataLoader workers instead of "
                             "loading the set into memory (for sets larger than memory)")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers per process with --stream")
    parser.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across GPUs under torchrun (CUDA)")
    for f in fields(TrainConfig):
        name = RENAMED.get(f.name, f.name).replace("_", "-")
        kind = str if f.name in ("loss", "diffaugment") else type(f.default)
        parser.add_argument(f"--{name}", dest=f.name, type=kind, default=None,
                            help=f"default: suited to the data set and device ({f.default!r} in TrainConfig)")
    return parser


def config_overrides(args: argparse.Namespace) -> dict:
    """The TrainConfig fields given on the command line ('none' turns DiffAugment off)."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    if given.get("diffaugment") == "none":
        given["diffaugment"] = ""
    return given


def _resuming(args: argparse.Namespace) -> bool:
    return args.resume and (args.out / CHECKPOINT_FILE).is_file()


def _shape(args: argparse.Namespace) -> tuple[int, int]:
    """Image size and channels: the checkpoint's when resuming, else the options (64 px RGB by default)."""
    given = read_config(args.out) if _resuming(args) else config_overrides(args)
    return given.get("image_size", 64), given.get("nc", 3)


def _in_memory(args: argparse.Namespace, env: DistEnv, size: int, nc: int) -> torch.Tensor:
    """Ingest the sources (every rank alike: deterministic); rank 0 keeps the report in --out and prints it."""
    config, sources = IngestConfig(image_size=size, channels=nc), [Path(p) for p in args.data]
    if env.is_main:
        dataset = ingest(sources, args.out / "ingest", config)
        print(dataset.report.summary())
        return dataset.images
    with tempfile.TemporaryDirectory() as scratch:
        return ingest(sources, Path(scratch), config).images


def make_trainer(args: argparse.Namespace, n_images: int, device: torch.device, env: DistEnv | None = None) -> Trainer:
    """A fresh trainer, or one resumed from --out (more --steps extends the run; learning rates, loss,
    DiffAugment and the like may change; the networks' shapes may not). Under torchrun, every rank's."""
    env = env or DistEnv()
    parallel = parallel_hook(env, device, args.sync_bn)
    over = config_overrides(args)
    if _resuming(args):
        return Trainer.resume(args.out, device=device, changes=over, parallel=parallel)
    if args.resume and env.is_main:
        print(f"No {CHECKPOINT_FILE} in {args.out}: starting a new run.")
    size, nc = (over.pop(k, default) for k, default in zip(SHAPE_FIELDS, (64, 3), strict=True))
    config = suggest_config(n_images, device, size, nc, **over)
    return Trainer(config, device=device, out_dir=args.out, parallel=parallel)


def _trainer_and_data(args: argparse.Namespace, env: DistEnv,
                      device: torch.device) -> tuple[Trainer, torch.Tensor | BatchStream]:
    """The trainer and what it trains on: the set in memory, or this rank's stream of shards."""
    size, nc = _shape(args)
    if not args.stream:
        images = _in_memory(args, env, size, nc)
        return make_trainer(args, len(images), device, env), images
    shards = find_shards([Path(p) for p in args.data])
    n_images = count_images(shards, IngestConfig(image_size=size, channels=nc))
    trainer = make_trainer(args, n_images, device, env)
    c = trainer.config
    loader = make_loader(shards, IngestConfig(image_size=c.image_size, channels=c.nc), trainer.local_batch,
                         env.rank, env.world_size, args.workers, c.seed, pin_memory=device.type == "cuda")
    return trainer, BatchStream(iter(loader), n_images)


def train(args: argparse.Namespace) -> Path | None:
    """Ingest or stream, train with a tqdm bar, write the plots, export; the model folder (None off rank 0)."""
    env = DistEnv.from_environ()
    device = device_for(env, args.device) if env.distributed else pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    setup(env, device)
    try:
        trainer, data = _trainer_and_data(args, env, device)
        if env.is_main:
            where = describe(device) if not env.distributed else f"{env.world_size} processes, {describe(device)} each"
            print(f"Training on {where}: {trainer.config}")
        _loop(trainer, data, env.is_main)
        return _export(args, trainer) if env.is_main else None
    finally:
        teardown()


def _loop(trainer: Trainer, data: torch.Tensor | BatchStream, main_rank: bool) -> None:
    """Train under a tqdm bar (rank 0's); Ctrl-C / kill finishes cleanly (checkpoint + export), and
    under torchrun any rank's stops all ranks at one step. The previous handlers come back afterwards."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with tqdm(total=trainer.config.steps, initial=trainer.step, unit="step", disable=not main_rank) as bar:
            for rec in trainer.run(data, stop_event=stop):
                bar.update(rec.step - bar.n)
                growth = {"px": rec.resolution, "fade_in": f"{rec.fade_in:.2f}"} if rec.growing else {}
                bar.set_postfix(loss_d=f"{rec.loss_d:.3f}", loss_g=f"{rec.loss_g:.3f}", img_s=f"{rec.images_per_s:.0f}",
                                **growth)
                if rec.warning and main_rank:
                    tqdm.write(f"warning at step {rec.step}: {rec.warning}")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _export(args: argparse.Namespace, trainer: Trainer) -> Path:
    """Rank 0: the plots and the exported EMA generator (the format the app loads)."""
    metrics_plot(trainer.history, LOSS_KEYS).save(args.out / "loss.png")
    metrics_plot(trainer.history, D_OUTPUT_KEYS, title="D(x) and D(G(z))").save(args.out / "d_outputs.png")
    model_dir = trainer.export(args.out / "model", data_credit=args.credit, licence=args.licence)
    print(f"Exported the EMA generator to {model_dir}")
    return model_dir


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m gan.train`."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        train(args)
    except ValueError as err:  # config, data and checkpoint errors carry a readable message
        raise SystemExit(f"error: {err}") from err


if __name__ == "__main__":
    main()
