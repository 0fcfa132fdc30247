"""Fine-tuning tasks: file readers, the task registry and metrics (NumPy / stdlib)."""

from gpt1_keras.tasks.base import DataError
from gpt1_keras.tasks.base import Examples
from gpt1_keras.tasks.metrics import compute_metrics
from gpt1_keras.tasks.registry import TASKS
from gpt1_keras.tasks.registry import TaskSpec
from gpt1_keras.tasks.registry import csv_task
from gpt1_keras.tasks.registry import get_task
