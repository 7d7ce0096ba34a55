"""The live quality number of a run: KID x 1000 and coverage every `kid_every` steps (see gan/train/kid.py).

The training set's features are computed once per run (at the first measurement, so that a run
that never reaches `kid_every` steps never loads the feature network). Each measurement draws
`kid_samples` images from the EMA generator with a fixed noise set of its own (so that two
measurements differ only by the generator), and costs at most `kid_budget` of the training time:
a due measurement is postponed to the next multiple of `kid_every` while the time spent on
measuring, this one included, would exceed that share of the time spent training. Measured on
this project's 2-core CPU: one measurement (128 images at 64 px) costs as much as 13 training
steps of batch 32 (26 of the CPU default's batch 16), so every 500 steps is under 5 % (docs/train.md).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

import torch

from gan.train.kid import FeatureNet, Quality, QualityMeter

log = logging.getLogger(__name__)

MAX_REAL = 2048  # real images whose features are kept (a random sample of a larger set)


class LiveQuality:
    """Schedules, measures and accounts for the quality measurements of one run."""

    def __init__(self, config, device: torch.device, real_uint8: torch.Tensor, step: int = 0) -> None:
        """`real_uint8`: the training set (N, C, S, S); `step`: where the run (or the resumed run) starts."""
        self.config, self.device = config, device
        self.real_uint8 = real_uint8
        self.meter: QualityMeter | None = None
        self.last_step: int | None = None  # the step of this run's last measurement
        self.next_due = self._grid_after(step)  # the grid step the next measurement waits for
        self.spent_s = 0.0  # seconds spent measuring in this run (features, generation, estimate)
        self.last_cost_s = 0.0  # what the last measurement cost
        self.train_started = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed + 7919)  # a noise set of its own, not the sample grid's
            self.z = torch.randn(config.kid_samples, config.nz)

    def due(self, step: int) -> bool:
        """Whether a measurement is due at `step`: the grid step it waits for has been reached. One process
        flushes exactly there; under torchrun the main rank measures at its first record from there on."""
        return self.config.kid_every > 0 and step >= self.next_due

    def _grid_after(self, step: int) -> int:
        """The first multiple of kid_every after `step`."""
        every = max(self.config.kid_every, 1)
        return (step // every + 1) * every

    def within_budget(self) -> bool:
        """Whether measuring now (expected to cost what the last one did) keeps the measuring time within
        `kid_budget` of the training time. The first measurement, which also builds the meter, always runs;
        a budget of 1 (all of it) is no bound at all, so that a run can measure on every grid step."""
        if self.config.kid_budget >= 1.0:
            return True
        training_s = time.perf_counter() - self.train_started - self.spent_s
        return self.spent_s + self.last_cost_s <= self.config.kid_budget * training_s

    def maybe_measure(self, rec, sample: Callable[[torch.Tensor], torch.Tensor], step: int, monitor,
                      force: bool = False) -> None:
        """Measure into `rec.quality` when due and within the time budget (or when forced), and let the
        health monitor's feature-space collapse alarm see it (its warning goes to `rec.warning`)."""
        if not force:
            if not self.due(step):
                return
            if not self.within_budget():  # wait for the next grid step
                self.next_due = self._grid_after(step)
                return
        rec.quality = self.measure(sample, step)
        rec.warning = rec.warning or monitor.on_quality(step, rec.quality)

    def wants_final(self, step: int) -> bool:
        """Whether a run that ends at `step` should measure its final weights: it measured before, not here."""
        return self.last_step not in (None, step)

    def measure(self, sample: Callable[[torch.Tensor], torch.Tensor], step: int) -> Quality:
        """Build the meter if needed, generate `kid_samples` images with `sample(z)` and measure them."""
        started = time.perf_counter()
        if self.meter is None:
            self.meter = self._build_meter()
        fakes = torch.cat([sample(z) for z in self.z.split(256)])
        quality = self.meter.measure(fakes)
        spent = time.perf_counter() - started
        quality = replace(quality, seconds=spent)  # all of it: generation and a first feature pass too
        self.spent_s += spent
        self.last_cost_s = spent
        self.last_step = step
        self.next_due = self._grid_after(step)
        return quality

    def _build_meter(self) -> QualityMeter:
        """The feature network and the training set's features (a random MAX_REAL of them at most)."""
        from common.backbones import load_backbone

        real = self.real_uint8
        if real.shape[0] > MAX_REAL:
            pick = torch.randperm(real.shape[0], generator=torch.Generator().manual_seed(self.config.seed))
            real = real[pick[:MAX_REAL].to(real.device)]
        net = FeatureNet(load_backbone(self.config.feature_net, self.device))
        meter = QualityMeter(net, real.float().mul(2 / 255).sub(1), seed=self.config.seed)
        log.info("quality meter: %d real images, real-set coverage %.2f", real.shape[0], meter.real_coverage)
        return meter
