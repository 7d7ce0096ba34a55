"""Streaming images for data sets larger than memory: a folder of images or WebDataset-style tar shards.

A *shard* is one plain tar file of images (`000001.jpg`, `000002.png`, ...; other members such as
WebDataset's `.cls` / `.json` are ignored) or, for a folder, a group of `FILES_PER_SHARD` files.
Each rank and each DataLoader worker reads only its own shards (a rank takes every world_size-th
shard, its workers split those), in an order reshuffled every epoch, through a small shuffle buffer.
Images are decoded and resized by `gan.ingest.data.decode` (the same as the in-memory ingest) and arrive as
uint8 batches (N, C, S, S). Tar members are read with the stdlib `tarfile` in stream mode and never
extracted; a member that escapes the archive, a link, a device, a nested archive or one over the
size cap is skipped with a reason, as is anything that does not decode. Duplicates are not looked
for here (that needs every image in memory).
"""

from __future__ import annotations

import logging
import random
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from gan.ingest.data import IngestConfig, decode
from gan.ingest.sources import Refused, checked_size, read_file, walk

log = logging.getLogger(__name__)

FILES_PER_SHARD = 64
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
ARCHIVE_SUFFIXES = (".zip", ".jar", ".7z", ".rar", ".tar", ".gz", ".tgz")


class StreamError(ValueError):
    """A streamed data set that cannot feed training (no shards, or no usable image in a pass)."""


@dataclass(frozen=True)
class Shard:
    """A tar file, or a group of image files in a folder."""

    tar: Path | None = None
    files: tuple[tuple[Path, str], ...] = ()  # (path, name relative to the folder)

    @property
    def label(self) -> str:
        return str(self.tar) if self.tar else f"{len(self.files)} files from {self.files[0][1]}"


def find_shards(sources: list[Path], files_per_shard: int = FILES_PER_SHARD) -> list[Shard]:
    """Tar files given directly or found in folders; loose images in folders, grouped into shards."""
    tars, files = [], []
    for source in sources:
        if source.is_file():
            (tars if tarfile.is_tarfile(source) else files).append((source, source.name))
        elif source.is_dir():
            for path, rel in walk(source):
                is_tar = path.suffix.lower() == ".tar" and not path.is_symlink()
                (tars if is_tar else files).append((path, rel))
        else:
            raise StreamError(f"{source}: no such file or folder.")
    images = [(p, n) for p, n in files if p.suffix.lower() in IMAGE_SUFFIXES]
    shards = [Shard(tar=p) for p, _ in tars]
    shards += [Shard(files=tuple(images[i : i + files_per_shard])) for i in range(0, len(images), files_per_shard)]
    if not shards:
        raise StreamError("No tar shard and no image file was found to stream from.")
    return shards


def tar_problem(member: tarfile.TarInfo, config: IngestConfig) -> Refused | None:
    """Why a tar member must not be read (the checks gan.ingest.sources makes for zip members), or None."""
    raw = member.name.replace("\\", "/")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":") or ".." in PurePosixPath(raw).parts:
        return Refused("path escapes the archive", "unsafe archive member")
    if member.issym() or member.islnk():
        return Refused("link refused", "unsafe archive member")
    if not member.isreg():
        return Refused("not a regular file", "unsafe archive member")
    if raw.lower().endswith(ARCHIVE_SUFFIXES):
        return Refused("nested archive ignored", "nested archive")
    if member.size > config.max_upload_bytes:
        return Refused(f"too big ({member.size:,} bytes; the limit is {config.max_upload_bytes:,})", "too big")
    return None


def read_tar(path: Path, config: IngestConfig) -> Iterator[tuple[str, object]]:
    """(member name, uint8 array | Refused) for each image-named member of one tar, in order."""
    try:
        with tarfile.open(path, mode="r|*") as tf:  # stream mode: one pass, nothing extracted
            for member in tf:
                if member.isdir() or not member.name.lower().endswith(IMAGE_SUFFIXES):
                    continue  # WebDataset side files (.cls, .json, .txt) and folders
                problem = tar_problem(member, config)
                if problem:
                    yield member.name, problem
                    continue
                yield member.name, _decode(tf.extractfile(member).read(member.size + 1), config)
    except (tarfile.TarError, OSError, EOFError) as err:
        yield path.name, Refused(f"damaged tar shard ({err})", "damaged")


def read_files(files: tuple[tuple[Path, str], ...], config: IngestConfig) -> Iterator[tuple[str, object]]:
    """(name, uint8 array | Refused) for each file of a folder shard (links and special files refused)."""
    limits = config.limits()
    for path, name in files:
        try:
            checked_size(path, limits)  # refuses symlinks, special files and oversized files
            yield name, _decode(read_file(path, follow=False)(limits.max_upload_bytes), config)
        except Refused as refused:
            yield name, refused


def _decode(data: bytes, config: IngestConfig) -> object:
    """gan.ingest.data.decode -> (C, S, S) uint8 tensor, or the Refused it raised."""
    if not data:
        return Refused("empty file", "empty")
    if len(data) > config.max_upload_bytes:
        return Refused("too big", "too big")
    try:
        array, _ = decode(data, config)
    except Refused as refused:
        return refused
    s = config.image_size
    return torch.from_numpy(array.reshape(s, s, config.channels).transpose(2, 0, 1).copy())


def read_shard(shard: Shard, config: IngestConfig) -> Iterator[tuple[str, object]]:
    """Every candidate image of a shard as (name, tensor | Refused)."""
    return read_tar(shard.tar, config) if shard.tar else read_files(shard.files, config)


class ShardStream(IterableDataset):
    """An endless stream of uint8 images (C, S, S): this rank's and this worker's shards, epoch after epoch."""

    def __init__(self, shards: list[Shard], config: IngestConfig, rank: int = 0, world_size: int = 1,
                 seed: int = 0, buffer: int = 256) -> None:
        if len(shards) < world_size:
            raise StreamError(f"{len(shards)} shard(s) cannot feed {world_size} processes: "
                              "give at least one shard (tar file) per process.")
        self.shards, self.config, self.rank, self.world_size = shards, config, rank, world_size
        self.seed, self.buffer = seed, buffer

    def mine(self, worker: int, workers: int) -> list[Shard]:
        """The shards of one (rank, worker): every world_size-th shard for the rank, then every workers-th."""
        return list(self.shards[self.rank :: self.world_size][worker::workers])

    def __iter__(self) -> Iterator[torch.Tensor]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        shards = self.mine(worker, workers)
        rnd = random.Random(self.seed * 7_919 + self.rank * 104_729 + worker)
        pool: list[torch.Tensor] = []
        while True:  # epochs
            rnd.shuffle(shards)
            got = 0
            for shard in shards:
                for name, item in read_shard(shard, self.config):
                    if isinstance(item, Refused):
                        log.warning("skipped %s: %s", name, item.reason)
                        continue
                    got += 1
                    pool.append(item)
                    if len(pool) >= self.buffer:  # shuffle buffer: mix images across shards
                        yield pool.pop(rnd.randrange(len(pool)))
            if not got:
                raise StreamError(f"No usable image in the shards of rank {self.rank}, worker {worker}.")
            rnd.shuffle(pool)
            keep = min(self.buffer // 2, got // 2)  # small sets: do not hold them back for epochs
            while len(pool) > keep:
                yield pool.pop()


def count_images(shards: list[Shard], config: IngestConfig) -> int:
    """Image-named files and safe tar members over all shards, from headers only (for the model card).

    An upper bound: files that turn out not to decode are only found when they are read.
    """
    total = 0
    for shard in shards:
        if shard.files:
            total += len(shard.files)
            continue
        try:
            with tarfile.open(shard.tar, mode="r:*") as tf:
                total += sum(m.name.lower().endswith(IMAGE_SUFFIXES) and not tar_problem(m, config) for m in tf)
        except (tarfile.TarError, OSError):
            continue  # reported when the shard is read
    return total


def make_loader(shards: list[Shard], config: IngestConfig, batch_size: int, rank: int = 0, world_size: int = 1,
                workers: int = 2, seed: int = 0, pin_memory: bool = False) -> DataLoader:
    """A DataLoader of uint8 batches (batch_size, C, S, S) over this rank's shards, with worker processes."""
    workers = min(workers, len(shards) // world_size)  # every worker must own at least one shard
    stream = ShardStream(shards, config, rank, world_size, seed)
    loader = DataLoader(stream, batch_size=batch_size, num_workers=workers, pin_memory=pin_memory,
                        persistent_workers=workers > 0, prefetch_factor=4 if workers else None)
    return loader
