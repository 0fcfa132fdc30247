"""The tf.data LM pipeline feeding a Keras model on the JAX backend."""

import os

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.data import lm_dataset
from tests.data.fake_tokenizer import FakeTokenizer


class LMDatasetJaxTest(absltest.TestCase):

    def test_numpy_batches_feed_fit(self):
        if keras.backend.backend() != "jax":
            self.skipTest("needs KERAS_BACKEND=jax")
        path = os.path.join(self.create_tempdir().full_path, "a.txt")
        with open(path, "w") as f:
            f.write("\n".join(" ".join(map(str, range(i, i + 4)))
                              for i in range(1, 400, 4)))
        ds = lm_dataset.make_lm_dataset(
            path, FakeTokenizer(), sequence_length=8, batch_size=4, seed=0)

        x, y, w = next(ds.as_numpy_iterator())
        self.assertIsInstance(x["token_ids"], np.ndarray)
        self.assertEqual(x["token_ids"].dtype, np.int32)
        self.assertEqual(x["padding_mask"].dtype, np.bool_)
        self.assertEqual(w.dtype, np.float32)
        np.testing.assert_array_equal(x["token_ids"][:, 1:], y[:, :-1])

        token_ids = keras.Input((8,), dtype="int32", name="token_ids")
        padding_mask = keras.Input((8,), dtype="bool", name="padding_mask")
        h = keras.layers.Embedding(FakeTokenizer().vocabulary_size(), 8)(
            token_ids)
        h = h * keras.ops.expand_dims(
            keras.ops.cast(padding_mask, "float32"), -1)
        logits = keras.layers.Dense(FakeTokenizer().vocabulary_size())(h)
        model = keras.Model(
            {"token_ids": token_ids, "padding_mask": padding_mask}, logits)
        model.compile(
            optimizer="adam",
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(ds, epochs=2, verbose=0)
        losses = history.history["loss"]
        self.assertTrue(np.all(np.isfinite(losses)))
        self.assertLess(losses[-1], losses[0])
        # The model ran on JAX arrays, fed from tf.data.
        out = model(x)
        self.assertIn("jax", type(out).__module__)


if __name__ == "__main__":
    absltest.main()
