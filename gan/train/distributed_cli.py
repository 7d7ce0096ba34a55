"""`python -m gan.train` under torchrun (several processes) or with `--stream`: the DistributedTrainer path.

`gan.train.cli.main` comes here when WORLD_SIZE > 1 (torchrun sets it) or when `--stream` is given.
Every rank runs this; rank 0 alone prints, draws the progress bar and writes (checkpoints, samples,
metrics, plots, the exported model). See docs/distributed.md for the commands.
"""

from __future__ import annotations

import argparse
import signal
import tempfile
import threading
from pathlib import Path

import torch
from tqdm import tqdm

from common.device import describe
from gan.train.checkpoint import CHECKPOINT_FILE, read_config
from gan.ingest.data import IngestConfig
from gan.train.distributed import DistEnv, DistributedTrainer, device_for, launched_by_torchrun, setup, teardown
from gan.train.plot import metrics_plot
from gan.ingest.streaming import count_images, find_shards, make_loader
from gan.train.trainer import suggest_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of this path (the rest are gan.train.cli's)."""
    parser.add_argument("--stream", action="store_true",
                        help="stream images from tar shards / a folder with DataLoader workers instead of "
                             "loading the set into memory (for sets larger than memory)")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers per process with --stream")
    parser.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across GPUs under torchrun (CUDA)")


def wanted(args: argparse.Namespace) -> bool:
    """Whether this run goes the DistributedTrainer way (torchrun, or --stream)."""
    return launched_by_torchrun() or getattr(args, "stream", False)


def _shape(args: argparse.Namespace, over: dict) -> tuple[int, int]:
    """Image size and channels: from the checkpoint when resuming, else the options."""
    if args.resume and (args.out / CHECKPOINT_FILE).is_file():
        saved = read_config(args.out)
        return saved["image_size"], saved["nc"]
    return over.get("image_size", 64), over.get("nc", 3)


def _in_memory(args: argparse.Namespace, env: DistEnv, size: int, nc: int) -> torch.Tensor:
    """Every rank ingests the same sources (deterministic); only rank 0 keeps the report in --out."""
    from gan.ingest.data import ingest

    config = IngestConfig(image_size=size, channels=nc)
    sources = [Path(p) for p in args.data]
    if env.is_main:
        dataset = ingest(sources, args.out / "ingest", config)
        print(dataset.report.summary())
        return dataset.images
    with tempfile.TemporaryDirectory() as scratch:
        return ingest(sources, Path(scratch), config).images


def _trainer(args: argparse.Namespace, env: DistEnv, device: torch.device, n_images: int) -> DistributedTrainer:
    """Fresh, or resumed from --out's checkpoint (written by any number of ranks)."""
    from gan.train.cli import _overrides

    over = _overrides(args)
    if args.resume and (args.out / CHECKPOINT_FILE).is_file():
        return DistributedTrainer.resume(args.out, device=device, steps=over.get("steps"), env=env,
                                         sync_bn=args.sync_bn)
    size, nc = over.pop("image_size", 64), over.pop("nc", 3)
    config = suggest_config(n_images, device, size, nc, **over)
    return DistributedTrainer(config, device=device, out_dir=args.out, env=env, sync_bn=args.sync_bn)


def train(args: argparse.Namespace) -> Path | None:
    """Join the job, train this rank's share, and (rank 0) export; returns the model folder on rank 0."""
    from gan.train.cli import _overrides

    env = DistEnv.from_environ()
    device = device_for(env, args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    setup(env, device)
    try:
        size, nc = _shape(args, _overrides(args))
        if args.stream:
            shards = find_shards([Path(p) for p in args.data])
            n_images = count_images(shards, IngestConfig(image_size=size, channels=nc))
            trainer = _trainer(args, env, device, n_images)
            c = trainer.config
            loader = make_loader(shards, IngestConfig(image_size=c.image_size, channels=c.nc), trainer.local_batch,
                                 env.rank, env.world_size, args.workers, c.seed, pin_memory=device.type == "cuda")
            data = trainer.stream(iter(loader), n_images)
        else:
            images = _in_memory(args, env, size, nc)
            trainer, data = _trainer(args, env, device, len(images)), images
        if env.is_main:
            print(f"Training on {env.world_size} process(es), {describe(device)} each: {trainer.config}")
        _loop(trainer, data, env)
        return _export(args, trainer) if env.is_main else None
    finally:
        teardown()


def _loop(trainer: DistributedTrainer, data, env: DistEnv) -> None:
    """Train with a tqdm bar on rank 0; Ctrl-C / SIGTERM on any rank stops all ranks at one step."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with tqdm(total=trainer.config.steps, initial=trainer.step, unit="step", disable=not env.is_main) as bar:
            for rec in trainer.run(data, stop_event=stop):
                bar.update(rec.step - bar.n)
                bar.set_postfix(loss_d=f"{rec.loss_d:.3f}", loss_g=f"{rec.loss_g:.3f}", img_s=f"{rec.images_per_s:.0f}")
                if rec.warning and env.is_main:
                    tqdm.write(f"warning at step {rec.step}: {rec.warning}")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _export(args: argparse.Namespace, trainer: DistributedTrainer) -> Path:
    """Rank 0: plots and the exported EMA generator (the format the app loads)."""
    metrics_plot(trainer.history).save(args.out / "loss.png")
    metrics_plot(trainer.history, ("d_x", "d_g_z"), title="D(x) and D(G(z))").save(args.out / "d_outputs.png")
    model_dir = trainer.export(args.out / "model", data_credit=args.credit, licence=args.licence)
    print(f"Exported the EMA generator to {model_dir}")
    return model_dir
