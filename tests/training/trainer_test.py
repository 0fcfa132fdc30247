"""The model.fit trainer on every backend: fit, checkpoints, resume, NaN stop."""

import functools
import os
import unittest

import keras
import numpy as np
import tensorflow as tf
from absl.testing import absltest
from keras import ops

from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.training import NonFiniteLossError
from gpt1_keras.training import TrainConfig
from gpt1_keras.training import train

_T = 8


def _dataset_fn(input_context):
    """A fixed 32-window 'corpus' of a 20-token language, repeated forever."""
    rng = np.random.default_rng(0)
    windows = rng.integers(0, 20, (32, _T + 1)).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((
        {"token_ids": windows[:, :-1], "padding_mask": np.ones((32, _T), "int32")},
        windows[:, 1:],
        np.ones((32, _T), "float32"),
    )).repeat()
    batch = 4 if input_context is None else input_context.get_per_replica_batch_size(4)
    return ds.batch(batch, drop_remainder=True)


def _build_model(dropout=0.1):
    keras.utils.set_random_seed(0)
    return GPT1CausalLM.from_architecture("gpt1_tiny", num_layers=1, max_sequence_length=_T,
                                    dropout=dropout)


def _config(model_dir, **overrides):
    values = dict(
        model_dir=model_dir, train_steps=6, global_batch_size=4, sequence_length=_T,
        learning_rate=1e-2, warmup_steps=1, steps_per_epoch=3, validation_steps=2,
        checkpoint_every=2, keep_checkpoints=2, verbose=0,
    )
    values.update(overrides)
    return TrainConfig(**values)


class PoisonAt(keras.callbacks.Callback):
    """Sets a weight to NaN before the update that would make `iterations == step`."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_begin(self, batch, logs=None):
        if int(ops.convert_to_numpy(self.model.optimizer.iterations)) == self.step - 1:
            weight = self.model.trainable_variables[0]
            weight.assign(ops.full(weight.shape, float("nan")))


class CrashAt(keras.callbacks.Callback):
    """Raises before the update that would make `iterations == step` (a crash)."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_begin(self, batch, logs=None):
        if int(ops.convert_to_numpy(self.model.optimizer.iterations)) == self.step - 1:
            raise RuntimeError(f"crash before step {self.step}")


def _weights(model):
    return [ops.convert_to_numpy(v) for v in model.trainable_variables]


class TrainerTest(absltest.TestCase):
    def test_fit_checkpoints_and_resumes(self):
        model_dir = self.create_tempdir().full_path
        result = train(_build_model, _dataset_fn, _config(model_dir), val_dataset_fn=_dataset_fn)
        self.assertEqual((result.initial_step, result.final_step), (0, 6))
        self.assertEqual([e["step"] for e in result.history], [3, 6])
        first, last = result.history
        # It learns: measured 9.32 -> 8.73 nats, 1.9 under the uniform distribution's
        # log(40481) = 10.6 (the model moves its mass onto the language's 20 tokens).
        self.assertLess(last["val_loss"], first["val_loss"] - 0.3)
        self.assertLess(last["val_loss"], np.log(40481) - 1.5)
        self.assertGreater(result.tokens_per_second, 0)
        self.assertEqual(
            sorted(os.listdir(os.path.join(model_dir, "checkpoints"))),
            ["ckpt-000000004.json", "ckpt-000000004.npz",
             "ckpt-000000006.json", "ckpt-000000006.npz"],
        )
        self.assertTrue(os.listdir(os.path.join(model_dir, "logs")))

        # Same directory, more steps: continues at 6, never redoes steps 1-6.
        more = train(_build_model, _dataset_fn, _config(model_dir, train_steps=8),
                     val_dataset_fn=_dataset_fn)
        self.assertEqual((more.initial_step, more.final_step), (6, 8))
        self.assertEqual([e["step"] for e in more.history], [3, 6, 8])

    def _assert_resumed_run_equals_an_uninterrupted_one(self, dropout):
        # Same config (so the same schedule) for both; one run crashes before step 5 and
        # is restarted from its step-4 checkpoint: the data position, the optimizer
        # state and (with dropout) the dropout masks must all resume.
        build = functools.partial(_build_model, dropout=dropout)
        straight = train(build, _dataset_fn, _config(self.create_tempdir().full_path))
        model_dir = self.create_tempdir().full_path
        with self.assertRaisesRegex(RuntimeError, "crash before step 5"):
            train(build, _dataset_fn, _config(model_dir), callbacks=[CrashAt(5)])
        resumed = train(build, _dataset_fn, _config(model_dir))
        self.assertEqual((resumed.initial_step, resumed.final_step), (4, 6))
        initial = _weights(build())
        self.assertGreater(max(float(np.abs(a - b).max())
                               for a, b in zip(_weights(straight.model), initial)), 1e-3)
        for a, b in zip(_weights(straight.model), _weights(resumed.model)):
            np.testing.assert_array_equal(b, a)

    def test_resumed_run_equals_an_uninterrupted_one_without_dropout(self):
        self._assert_resumed_run_equals_an_uninterrupted_one(dropout=0.0)

    def test_resumed_run_equals_an_uninterrupted_one_with_dropout(self):
        self._assert_resumed_run_equals_an_uninterrupted_one(dropout=0.1)

    def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(self):
        model_dir = self.create_tempdir().full_path
        with self.assertRaisesRegex(
            NonFiniteLossError, r"became nan at step 5.*ckpt-000000004\.npz"
        ):
            train(_build_model, _dataset_fn, _config(model_dir, train_steps=9),
                  callbacks=[PoisonAt(5)])
        checkpoints = sorted(os.listdir(os.path.join(model_dir, "checkpoints")))
        self.assertEqual(checkpoints[-1], "ckpt-000000004.npz")
        with np.load(os.path.join(model_dir, "checkpoints", checkpoints[-1])) as data:
            for key in data.files:
                if data[key].dtype.kind == "f":
                    self.assertTrue(np.isfinite(data[key]).all(), key)
        # The run can continue from there (the poison is gone).
        result = train(_build_model, _dataset_fn, _config(model_dir, train_steps=6))
        self.assertEqual((result.initial_step, result.final_step), (4, 6))

    def test_batch_must_split_over_replicas(self):
        from gpt1_keras.training import Distribution

        with self.assertRaisesRegex(ValueError, r"batch_size=4 is not divisible by the 3 replicas"):
            train(_build_model, _dataset_fn, _config(self.create_tempdir().full_path),
                  distribution=Distribution(name="fake", num_replicas=3))


if __name__ == "__main__":
    absltest.main()
