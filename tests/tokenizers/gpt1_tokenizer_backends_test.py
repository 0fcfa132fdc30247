"""`GPT1Tokenizer` in `tf.data` under each Keras backend (KERAS_BACKEND set by Bazel)."""

import keras
import numpy as np
import tensorflow as tf
from absl.testing import absltest

from gpt1_keras.tokenizers import GPT1Tokenizer
from tests.tokenizers import reference_encoder as ref


class BackendTest(absltest.TestCase):
    def test_tf_data_map_matches_hf_reference(self):
        # Batches with and without `<unk>` written in the text (read as id 0, as HF does).
        lines = ref.read_sst2_sentences()[:256]
        lines[40:48] = [line.replace(" the ", " <unk> ") + " <unk>" for line in lines[40:48]]
        tok = GPT1Tokenizer(normalization="bert", sequence_length=64)
        ds = tf.data.Dataset.from_tensor_slices(lines).batch(32)
        ds = ds.map(tok, num_parallel_calls=tf.data.AUTOTUNE)
        got = np.concatenate([batch.numpy() for batch in ds])
        hf = ref.hf_fast_tokenizer()(lines, add_special_tokens=False)["input_ids"]
        expected = np.full((len(lines), 64), tok.pad_token_id)
        for i, ids in enumerate(hf):
            expected[i, : min(64, len(ids))] = ids[:64]
        np.testing.assert_array_equal(got, expected)
        # The dense batches feed a model of the current backend.
        x = keras.ops.convert_to_tensor(got[:4])
        self.assertEqual(tuple(keras.ops.shape(x)), (4, 64))

    def test_eager_call_returns_tf_tensors(self):
        tok = GPT1Tokenizer()
        ids = tok(["Don't stop.", "Caf\u00e9"])
        self.assertIsInstance(ids, tf.RaggedTensor)
        self.assertEqual(
            ids.to_list(), [ref.OriginalEncoder().encode(s) for s in ["Don't stop.", "Caf\u00e9"]]
        )


if __name__ == "__main__":
    absltest.main()
