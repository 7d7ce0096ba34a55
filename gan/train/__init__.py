"""Training: `TrainConfig` (every default), `Trainer` (G, D, their optimisers, the loop), losses,
DiffAugment, health checks, checkpoints, model cards, plots, distributed training and the one CLI
(`python -m gan.train`). The names below are the public API; the submodules hold the details.
"""

from gan.train.config import LIMITS, TrainConfig, suggest_config
from gan.train.trainer import Trainer, TrainError, TrainStep, measure_step_seconds, read_metrics

__all__ = ["LIMITS", "TrainConfig", "TrainError", "TrainStep", "Trainer", "measure_step_seconds",
           "read_metrics", "suggest_config"]
