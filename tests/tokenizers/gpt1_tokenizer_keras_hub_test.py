"""`GPT1Tokenizer` as a `keras_hub.tokenizers.Tokenizer` (issue #12): API and presets."""

import json
import os

import keras_hub
import tensorflow as tf
from absl.testing import absltest

from gpt1_keras.tokenizers import GPT1Tokenizer

TEXT = ["Hello, world!", "Don't panic."]
IDS = [[3570, 240, 1276, 267], [587, 538, 3627, 239]]
# A tiny BPE: "ab" merges; "c" is not in the vocabulary.
SMALL_VOCABULARY = {"<unk>": 0, "a</w>": 1, "b</w>": 2, "a": 3, "ab</w>": 4}
SMALL_MERGES = ["a b</w>"]


class KerasHubTokenizerTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tokenizer = GPT1Tokenizer()

    def test_is_a_keras_hub_tokenizer(self):
        self.assertIsInstance(self.tokenizer, keras_hub.tokenizers.Tokenizer)
        self.assertEqual(self.tokenizer.tokenize(TEXT).to_list(), IDS)
        self.assertEqual(self.tokenizer(TEXT).to_list(), IDS)
        self.assertEqual(
            self.tokenizer.tokenize(TEXT, sequence_length=5).numpy().tolist(),
            [row + [0] for row in IDS],
        )

    def test_special_tokens(self):
        tokenizer = self.tokenizer
        self.assertEqual(
            sorted(tokenizer.special_tokens),
            sorted(["<unk>", "_start_", "_delimiter_", "_classify_"]),
        )
        self.assertEqual(sorted(tokenizer.special_token_ids), [0, 40478, 40479, 40480])
        self.assertEqual(tokenizer.start_token, "_start_")
        self.assertEqual(tokenizer.token_to_id("_classify_"), tokenizer.classify_token_id)
        self.assertEqual(tokenizer.id_to_token(40479), "_delimiter_")
        with self.assertRaisesRegex(ValueError, "not in the vocabulary"):
            tokenizer.token_to_id("no-such-token")

    def test_preset_round_trip_with_its_own_files(self):
        tokenizer = GPT1Tokenizer(
            vocabulary=SMALL_VOCABULARY, merges=SMALL_MERGES, normalization="bert",
            sequence_length=4,
        )
        directory = os.path.join(self.create_tempdir().full_path, "preset")
        tokenizer.save_to_preset(directory)
        assets = os.path.join(directory, "assets", "tokenizer")
        self.assertEqual(sorted(os.listdir(assets)), ["merges.txt", "vocab.json"])
        with open(os.path.join(assets, "vocab.json")) as f:
            self.assertEqual(json.load(f), SMALL_VOCABULARY)
        with open(os.path.join(assets, "merges.txt")) as f:
            self.assertEqual(f.read().split("\n")[1:-1], SMALL_MERGES)
        restored = GPT1Tokenizer.from_preset(directory)
        self.assertEqual(restored.normalization, "bert")
        self.assertEqual(restored.sequence_length, 4)
        self.assertEqual(restored.get_vocabulary(), tokenizer.get_vocabulary())
        self.assertEqual(restored(["ab a c"]).numpy().tolist(), [[4, 1, 0, 0]])
        # The reloaded tables run in tf.data like the original's.
        ds = tf.data.Dataset.from_tensor_slices(["ab b", "a"]).batch(2).map(restored)
        self.assertEqual(next(iter(ds)).numpy().tolist(), [[4, 2, 0, 0], [1, 0, 0, 0]])

    def test_preset_of_the_default_vocabulary_and_overrides(self):
        directory = self.create_tempdir().full_path
        self.tokenizer.save_to_preset(directory)
        restored = GPT1Tokenizer.from_preset(directory, sequence_length=6)
        self.assertEqual(restored(TEXT).numpy().tolist(), [row + [0, 0] for row in IDS])

    def test_load_assets_replaces_the_tables(self):
        small = GPT1Tokenizer(vocabulary=SMALL_VOCABULARY, merges=SMALL_MERGES)
        directory = self.create_tempdir().full_path
        small.save_assets(directory)
        tokenizer = GPT1Tokenizer()
        tokenizer.load_assets(directory)
        self.assertEqual(tokenizer.vocabulary_size(), 8)
        self.assertEqual(tokenizer.start_token_id, 5)
        self.assertEqual(tokenizer(["ab"]).to_list(), [[4]])


if __name__ == "__main__":
    absltest.main()
