"""Training: strategy factory, the distributed loop, optimizers, EMA.

- `strategies`: `get_strategy(name)`, worker facts (`worker_info`);
- `trainer`: `Trainer`, the `strategy.run` training / evaluation loop;
- `trainer_config`: checks of the `trainer` config section;
- `global_batch_optimizer`: `GlobalBatchOptimizer` (global-batch loss,
  clipping of the summed gradient, update);
- `optimizers`, `schedules`: optimizer and learning rate from the config;
- `ema`: `ModelEMA`, a moving average of the weights;
- `checkpointing`: `Checkpointer`, `DataPosition` (exact resume);
- `preemption`: `SigtermWatcher`;
- `progress`: TensorBoard scalars and the progress bar;
- `runtime`: `configure_runtime` (seed, determinism, dtype policy).
"""

from tfaction.training.checkpointing import Checkpointer
from tfaction.training.checkpointing import DataPosition
from tfaction.training.ema import ModelEMA
from tfaction.training.global_batch_optimizer import GlobalBatchOptimizer
from tfaction.training.optimizers import build_optimizer
from tfaction.training.runtime import configure_runtime
from tfaction.training.schedules import build_learning_rate
from tfaction.training.strategies import STRATEGIES
from tfaction.training.strategies import get_strategy
from tfaction.training.strategies import worker_info
from tfaction.training.trainer import Trainer

__all__ = [
    "Checkpointer",
    "DataPosition",
    "GlobalBatchOptimizer",
    "ModelEMA",
    "STRATEGIES",
    "Trainer",
    "build_learning_rate",
    "build_optimizer",
    "configure_runtime",
    "get_strategy",
    "worker_info",
]
