"""MirroredStrategy over 2 logical CPU devices == one device, on the same global batch."""

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
    return GPT1CausalLM.from_preset("gpt1_tiny", num_layers=1, max_sequence_length=_T,
                                    dropout=0.0)


class MirroredTest(absltest.TestCase):
    def _run(self, strategy):
        distribution = make_distribution(strategy)
        config = TrainConfig(
            model_dir=self.create_tempdir().full_path, train_steps=3, global_batch_size=8,
            sequence_length=_T, learning_rate=1e-2, warmup_steps=0, steps_per_epoch=1,
            checkpoint_every=3, clip_norm=0.5, verbose=0,
        )
        result = train(_build_model, _dataset_fn, config, distribution=distribution)
        weights = [ops.convert_to_numpy(v) for v in result.model.trainable_variables]
        return distribution, [e["loss"] for e in result.history], weights

    def test_two_replicas_match_one_device(self):
        one, one_losses, one_weights = self._run("default")
        two, two_losses, two_weights = self._run("mirrored")
        self.assertEqual((one.num_replicas, two.num_replicas), (1, 2))
        # Same losses step by step (gradient clipping at 0.5 is active, so clipping must
        # see the all-reduced gradient, not each replica's half).
        np.testing.assert_allclose(two_losses, one_losses, rtol=1e-5)
        moved = max(float(np.abs(w).max()) for w in one_weights)
        self.assertGreater(moved, 0)
        for a, b in zip(one_weights, two_weights):
            # float32 sums in a different order (per-replica then all-reduce): ~1e-6.
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=2e-6)


if __name__ == "__main__":
    absltest.main()
