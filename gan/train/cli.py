"""Command line for the trainer: `python -m gan.train --data DIR_OR_ZIP --size 64 --steps 2000 --out runs/NAME`.

Same engine as the Train tab. Every `TrainConfig` field is an option (`--lr-d 1e-4`, `--diffaugment none`);
unset options take the defaults that `suggest_config` picks for the data set size and the device.
Writes into --out: checkpoint.safetensors, metrics.jsonl, samples/step_*.png, loss.png, and at the end
the exported EMA generator in model/ (config.json + model.safetensors + README.md + samples.png).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from dataclasses import fields
from pathlib import Path

import torch
from tqdm import tqdm

from common.device import describe, pick_device
from gan.train.checkpoint import CHECKPOINT_FILE, read_config
from gan.train.plot import metrics_plot
from gan.train.trainer import TrainConfig, Trainer, suggest_config

RENAMED = {"image_size": "size", "nc": "channels"}  # short option names for the two data-shape fields


def build_parser() -> argparse.ArgumentParser:
    """Options: the data, the run folder, and one option per TrainConfig field."""
    parser = argparse.ArgumentParser(prog="python -m gan.train", description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True, help="image folder(s), image files or .zip archives")
    parser.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, samples, metrics, model)")
    parser.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--credit", default="", help="training-data credit for the model card")
    parser.add_argument("--licence", default="other", help="licence id for the model card (e.g. apache-2.0)")
    for f in fields(TrainConfig):
        name = RENAMED.get(f.name, f.name).replace("_", "-")
        kind = str if f.name in ("loss", "diffaugment") else type(f.default)
        parser.add_argument(f"--{name}", dest=f.name, type=kind, default=None,
                            help=f"default: suited to the data set and device ({f.default!r} in TrainConfig)")
    from gan.train import distributed_cli  # --stream, --workers, --sync-bn (torchrun / streaming path)

    distributed_cli.add_arguments(parser)
    return parser


def _overrides(args: argparse.Namespace) -> dict:
    """The TrainConfig fields given on the command line ('none' turns DiffAugment off)."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    if given.get("diffaugment") == "none":
        given["diffaugment"] = ""
    return given


def _load_data(args: argparse.Namespace, size: int, channels: int):
    """Ingest the sources with the shared ingest (report printed, skipped files listed)."""
    from gan.ingest.data import IngestConfig, ingest

    dataset = ingest([Path(p) for p in args.data], args.out / "ingest", IngestConfig(image_size=size, channels=channels))
    print(dataset.report.summary())
    return dataset


def make_trainer(args: argparse.Namespace, n_images: int, device: torch.device) -> Trainer:
    """A fresh trainer, or one resumed from --out (more --steps extends the run; learning rates, loss,
    DiffAugment and the like may change; the networks' shapes may not)."""
    over = _overrides(args)
    if args.resume and (args.out / CHECKPOINT_FILE).is_file():
        return Trainer.resume(args.out, device=device, changes=over)
    if args.resume:
        print(f"No {CHECKPOINT_FILE} in {args.out}: starting a new run.")
    size, nc = over.pop("image_size", 64), over.pop("nc", 3)
    return Trainer(suggest_config(n_images, device, size, nc, **over), device=device, out_dir=args.out)


def train(args: argparse.Namespace) -> Path:
    """Ingest, train with a tqdm bar, write loss.png, export; return the model folder."""
    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    over = _overrides(args)
    if args.resume and (args.out / CHECKPOINT_FILE).is_file():
        over = {**over, **{k: v for k, v in read_config(args.out).items() if k in ("image_size", "nc")}}
    dataset = _load_data(args, over.get("image_size", 64), over.get("nc", 3))
    trainer = make_trainer(args, len(dataset.images), device)
    print(f"Training on {describe(device)}: {trainer.config}")
    stop = threading.Event()
    # Ctrl-C / kill: finish cleanly (checkpoint + export); the previous handlers come back afterwards.
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _loop(trainer, dataset.images, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    metrics_plot(trainer.history).save(args.out / "loss.png")
    metrics_plot(trainer.history, ("d_x", "d_g_z"), title="D(x) and D(G(z))").save(args.out / "d_outputs.png")
    model_dir = trainer.export(args.out / "model", data_credit=args.credit, licence=args.licence)
    print(f"Exported the EMA generator to {model_dir}")
    return model_dir


def _loop(trainer: Trainer, images: torch.Tensor, stop: threading.Event) -> None:
    """Run the trainer under a tqdm bar; print health warnings as they come."""
    with tqdm(total=trainer.config.steps, initial=trainer.step, unit="step") as bar:
        for rec in trainer.run(images, stop_event=stop):
            bar.update(rec.step - bar.n)
            growth = {"px": rec.resolution, "fade_in": f"{rec.fade_in:.2f}"} if rec.growing else {}
            bar.set_postfix(loss_d=f"{rec.loss_d:.3f}", loss_g=f"{rec.loss_g:.3f}", img_s=f"{rec.images_per_s:.0f}",
                            **growth)
            if rec.warning:
                tqdm.write(f"warning at step {rec.step}: {rec.warning}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m gan.train`."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from gan.train import distributed_cli

    try:
        # under torchrun (WORLD_SIZE > 1) or with --stream: DistributedDataParallel / streaming path
        (distributed_cli.train if distributed_cli.wanted(args) else train)(args)
    except ValueError as err:  # config, data and checkpoint errors carry a readable message
        raise SystemExit(f"error: {err}") from err


if __name__ == "__main__":
    main()
