"""Training GPT-1: schedules, optimizer, checkpoints, callbacks, the `model.fit` trainer,
and the pretraining recipe (`pretraining`).

Backend-independent except `tf_distribute` (TensorFlow-only, imported on demand by
`distribution` when the Keras backend is TensorFlow).
"""

from gpt1_keras.training.callbacks import NonFiniteLossError
from gpt1_keras.training.checkpointing import CheckpointError
from gpt1_keras.training.checkpointing import CheckpointManager
from gpt1_keras.training.distribution import Distribution
from gpt1_keras.training.distribution import make_distribution
from gpt1_keras.training.optimizers import GPT1Adam
from gpt1_keras.training.optimizers import build_optimizer
from gpt1_keras.training.pretraining import RECIPES
from gpt1_keras.training.pretraining import PretrainConfig
from gpt1_keras.training.pretraining import pretrain
from gpt1_keras.training.schedules import WarmupCosineDecay
from gpt1_keras.training.schedules import WarmupLinearDecay
from gpt1_keras.training.schedules import warmup_cosine
from gpt1_keras.training.schedules import warmup_linear
from gpt1_keras.training.trainer import TrainConfig
from gpt1_keras.training.trainer import TrainResult
from gpt1_keras.training.trainer import train
