"""GPT1CausalLMPreprocessor: training windows, generation packing, config."""

import keras
import keras_hub
import numpy as np
from absl.testing import absltest

from gpt1_keras.preprocessing.gpt1_causal_lm_preprocessor import GPT1CausalLMPreprocessor
from gpt1_keras.tokenizers import GPT1Tokenizer
from tests.test_case import TestCase

VOCAB = {"<unk>": 0, "a": 1, "b": 2, "a</w>": 3, "b</w>": 4, "ab": 5, "ab</w>": 6, "\n</w>": 7}
MERGES = ["a b</w>", "a b"]


class GPT1CausalLMPreprocessorTest(TestCase):
    def setUp(self):
        super().setUp()
        self.tokenizer = GPT1Tokenizer(vocabulary=VOCAB, merges=MERGES)
        self.preprocessor = GPT1CausalLMPreprocessor(self.tokenizer, sequence_length=5)

    def test_is_a_keras_hub_causal_lm_preprocessor(self):
        self.assertIsInstance(self.preprocessor, keras_hub.models.CausalLMPreprocessor)

    def test_training_call_shifts_by_one_without_start_or_end(self):
        # "ab a b" -> [6, 3, 4]; GPT-1's LM saw raw text: no _start_, no end token.
        x, y, sample_weight = self.preprocessor(["ab a b", "ab ab ab ab ab ab ab"])
        np.testing.assert_array_equal(x["token_ids"], [[6, 3, 4, 0, 0], [6, 6, 6, 6, 6]])
        np.testing.assert_array_equal(x["padding_mask"], [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
        np.testing.assert_array_equal(y, [[3, 4, 0, 0, 0], [6, 6, 6, 6, 6]])
        np.testing.assert_array_equal(sample_weight, [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]])

    def test_generate_preprocess_keeps_the_last_tokens_and_fills_empty_prompts(self):
        x = self.preprocessor.generate_preprocess(["ab a", "", "a a a a a a b"])
        # At most 4 prompt tokens (room for one new token); an empty prompt is "\n".
        np.testing.assert_array_equal(x["token_ids"],
                                      [[6, 3, 0, 0, 0], [7, 0, 0, 0, 0], [3, 3, 3, 4, 0]])
        np.testing.assert_array_equal(x["padding_mask"],
                                      [[1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]])
        wide = self.preprocessor.generate_preprocess(["ab a"], sequence_length=8)
        self.assertEqual(wide["token_ids"].shape, (1, 8))

    def test_start_token_option_and_postprocess(self):
        preprocessor = GPT1CausalLMPreprocessor(self.tokenizer, sequence_length=5,
                                                add_start_token=True)
        start = self.tokenizer.start_token_id
        x = preprocessor.generate_preprocess(["a a a a a b"])
        np.testing.assert_array_equal(x["token_ids"], [[start, 3, 3, 4, 0]])
        x["padding_mask"] = np.array([[1, 1, 1, 1, 1]])
        x["token_ids"] = np.array([[start, 3, 3, 4, 6]])
        self.assertEqual(preprocessor.generate_postprocess(x), ["a a b ab"])

    def test_bad_settings_are_errors(self):
        with self.assertRaisesRegex(ValueError, "no end token.*add_end_token=True"):
            GPT1CausalLMPreprocessor(self.tokenizer, add_end_token=True)
        with self.assertRaisesRegex(ValueError, "sequence_length=1"):
            GPT1CausalLMPreprocessor(self.tokenizer, sequence_length=1)

    def test_config_round_trip(self):
        config = keras.saving.serialize_keras_object(self.preprocessor)
        clone = keras.saving.deserialize_keras_object(config)
        self.assertIsInstance(clone, GPT1CausalLMPreprocessor)
        self.assertEqual(clone.sequence_length, 5)
        for a, b in zip(clone(["ab a b"]), self.preprocessor(["ab a b"])):
            np.testing.assert_array_equal(keras.tree.flatten(a), keras.tree.flatten(b))


if __name__ == "__main__":
    absltest.main()
