"""Training: `TrainConfig` (every default), `Trainer` (G, D, their optimisers, the loop), losses,
DiffAugment, health checks, checkpoints, model cards, plots, distributed training and the one CLI
(`python -m gan.train`). The names below are the public API; the submodules hold the details.
"""

from gan.train.config import LIMITS, TrainConfig, TrainError, suggest_config
from gan.train.feed import BatchStream
from gan.train.metrics import METRIC_KEYS, METRICS_FILE, read_metrics
from gan.train.trainer import Trainer, TrainStep, measure_step_seconds

__all__ = ["LIMITS", "METRICS_FILE", "METRIC_KEYS", "BatchStream", "TrainConfig", "TrainError", "TrainStep",
           "Trainer", "measure_step_seconds", "read_metrics", "suggest_config"]
