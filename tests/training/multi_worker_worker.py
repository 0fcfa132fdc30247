"""One worker of `multi_worker_test`: trains a few steps under MultiWorkerMirroredStrategy.

Reads `TF_CONFIG` from the environment; writes its final trainable weights to
`argv[2]` (`.npz`) so the test can compare the workers. `argv[1]` is the shared model
directory (only the chief writes there).
"""

import sys

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.training import TrainConfig
from gpt1_keras.training import make_distribution
from gpt1_keras.training import train

_T = 8


def dataset_fn(input_context):
    # Each worker reads its own half of the windows (like make_lm_dataset's sharding).
    rng = np.random.default_rng(0)
    windows = rng.integers(0, 50, (32, _T + 1)).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((
        {"token_ids": windows[:, :-1], "padding_mask": np.ones((32, _T), "int32")},
        windows[:, 1:],
        np.ones((32, _T), "float32"),
    ))
    ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id).repeat()
    return ds.batch(input_context.get_per_replica_batch_size(8), drop_remainder=True)


def build_model():
    keras.utils.set_random_seed(0)
    return GPT1CausalLM.from_architecture("gpt1_tiny", num_layers=1, max_sequence_length=_T)


def main(model_dir, weights_path):
    distribution = make_distribution("multi_worker")
    config = TrainConfig(
        model_dir=model_dir, train_steps=4, global_batch_size=8, sequence_length=_T,
        learning_rate=1e-2, warmup_steps=1, steps_per_epoch=2, checkpoint_every=2,
        verbose=0,
    )
    result = train(build_model, dataset_fn, config, distribution=distribution)
    np.savez(weights_path,
             step=result.final_step, is_chief=distribution.is_chief,
             replicas=distribution.num_replicas,
             **{f"w{i}": ops.convert_to_numpy(v)
                for i, v in enumerate(result.model.trainable_variables)})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
