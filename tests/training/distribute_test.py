"""Data parallelism over 2 CPU devices == one device, on the same global batch.

TensorFlow backend: `MirroredStrategy` over 2 logical CPU devices. JAX backend:
`keras.distribution.DataParallel` over 2 XLA:CPU devices (the BUILD target sets
`XLA_FLAGS=--xla_force_host_platform_device_count=2`).
"""

import tensorflow as tf

# Before TensorFlow initialises its devices: 2 logical CPUs.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl.testing import absltest  # noqa: E402
from keras import ops  # noqa: E402

from gpt1_keras.models import GPT1CausalLM  # noqa: E402
from gpt1_keras.training import TrainConfig  # noqa: E402
from gpt1_keras.training import make_distribution  # noqa: E402
from gpt1_keras.training import train  # noqa: E402

_T = 8
_JAX = keras.backend.backend() == "jax"


def _dataset_fn(input_context):
    rng = np.random.default_rng(0)
    windows = rng.integers(0, 50, (16, _T + 1)).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((
        {"token_ids": windows[:, :-1], "padding_mask": np.ones((16, _T), "int32")},
        windows[:, 1:],
        np.ones((16, _T), "float32"),
    )).repeat()
    batch = 8 if input_context is None else input_context.get_per_replica_batch_size(8)
    return ds.batch(batch, drop_remainder=True)


def _build_model():
    keras.utils.set_random_seed(0)
    # No dropout: replicas would draw different masks than the single device.
    return GPT1CausalLM.from_architecture("gpt1_tiny", num_layers=1, max_sequence_length=_T,
                                    dropout=0.0)


def _active_distribution():
    """The distribution Keras applies right now (None: one device)."""
    if _JAX:
        return keras.distribution.distribution()
    return tf.distribute.get_strategy() if tf.distribute.has_strategy() else None


class RecordDistribution(keras.callbacks.Callback):
    """Records the distribution active while `fit` trains."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_train_batch_begin(self, batch, logs=None):
        if _JAX:  # What Keras' JAX trainer shards the batch and the step with.
            self.seen.append(keras.distribution.distribution())
        else:  # The strategy the TF trainer runs the step in.
            strategy = self.model.distribute_strategy
            self.seen.append(strategy if strategy.num_replicas_in_sync > 1 else None)


class DataParallelTest(absltest.TestCase):
    def _run(self, strategy, model_dir=None, train_steps=3, jit_compile=_JAX,
             schedule="cosine"):
        distribution = make_distribution(strategy)
        config = TrainConfig(
            model_dir=model_dir or self.create_tempdir().full_path, train_steps=train_steps,
            global_batch_size=8, sequence_length=_T, learning_rate=1e-2, warmup_steps=0,
            steps_per_epoch=1, checkpoint_every=2, clip_norm=0.5, verbose=0,
            jit_compile=jit_compile, schedule=schedule,
        )
        self.recorder = RecordDistribution()
        result = train(_build_model, _dataset_fn, config, distribution=distribution,
                       callbacks=[self.recorder])
        weights = [ops.convert_to_numpy(v) for v in result.model.trainable_variables]
        return distribution, result, weights

    def test_two_replicas_match_one_device(self):
        two, two_result, two_weights = self._run("mirrored")
        expected = two.keras_distribution if _JAX else two.tf_strategy
        self.assertEqual(self.recorder.seen, [expected] * 3)  # every step split
        # The distribution was scoped to the run: nothing stays set globally, so the
        # one-device run below really runs on one device.
        self.assertIsNone(_active_distribution())
        one, one_result, one_weights = self._run("default")
        self.assertEqual((one.num_replicas, two.num_replicas), (1, 2))
        self.assertEqual(self.recorder.seen, [None] * 3)
        if _JAX:  # The weights really lived on both devices.
            variable = two_result.model.trainable_variables[0]
            self.assertLen(variable.value.sharding.device_set, 2)
        # Same losses step by step (gradient clipping at 0.5 is active, so clipping must
        # see the all-reduced gradient, not each replica's half).
        one_losses = [e["loss"] for e in one_result.history]
        two_losses = [e["loss"] for e in two_result.history]
        np.testing.assert_allclose(two_losses, one_losses, rtol=1e-5)
        initial = [ops.convert_to_numpy(v) for v in _build_model().trainable_variables]
        self.assertGreater(max(float(np.abs(a - b).max()) for a, b in zip(one_weights, initial)),
                           1e-3)  # training moved the weights
        for a, b in zip(one_weights, two_weights):
            # float32 sums in a different order (per-replica then all-reduce): ~1e-6.
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=2e-6)

    def test_resume_matches_uninterrupted(self):
        # A constant learning rate: the 2-step first run has the same schedule as the
        # first 2 steps of the 4-step runs.
        _, _, uninterrupted = self._run("mirrored", train_steps=4, schedule="constant")
        model_dir = self.create_tempdir().full_path
        self._run("mirrored", model_dir=model_dir, train_steps=2, schedule="constant")
        _, resumed, resumed_weights = self._run("mirrored", model_dir=model_dir, train_steps=4,
                                                schedule="constant")
        self.assertEqual((resumed.initial_step, resumed.final_step), (2, 4))
        for a, b in zip(uninterrupted, resumed_weights):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)

    def test_op_by_op_step(self):
        if _JAX:  # Refused before anything is built: it deadlocks in XLA's all-reduce.
            with self.assertRaisesRegex(ValueError, "jit_compile=True"):
                self._run("mirrored", jit_compile=False)
        else:  # TensorFlow runs the uncompiled step under MirroredStrategy.
            _, result, _ = self._run("mirrored", train_steps=1, jit_compile=False)
            self.assertEqual(result.final_step, 1)


if __name__ == "__main__":
    absltest.main()
