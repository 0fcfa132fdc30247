"""tf.data input pipelines for GPT-1 (TensorFlow-only).

- `lm_dataset`: language-model pretraining windows from text files or
  pre-tokenized TFRecord shards.
- `task_dataset`: the GPT-1 fine-tuning input transforms.
"""

from gpt1_keras.data.lm_dataset import default_corpus_path
from gpt1_keras.data.lm_dataset import make_lm_dataset
from gpt1_keras.data.lm_dataset import make_lm_dataset_from_shards
from gpt1_keras.data.lm_dataset import make_token_stream
from gpt1_keras.data.lm_dataset import write_token_shards
from gpt1_keras.data.task_dataset import HEADS
from gpt1_keras.data.task_dataset import make_task_dataset
from gpt1_keras.data.task_dataset import head_inputs
from gpt1_keras.data.task_dataset import pack_segments
from gpt1_keras.data.task_dataset import trim_longest_first
