"""A vocabulary of one's own, end to end through the model code (issue #27).

`train_bpe` on the embedded corpus -> a `GPT1CausalLM` whose embedding has the
tokenizer's id count -> `save_to_preset` / `.keras` -> `from_preset` / `load_model`:
the same ids for held-out text and the same logits, on every backend. The tokenizer
found beside a pretrained checkpoint (`checkpoint_tokenizer`) is the one fine-tuning
uses. Mismatches (a tokenizer of another size, a vocabulary without its merges, merges
of another BPE training) are one-line errors naming both sides.
"""

import os

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.data.lm_dataset import default_corpus_path
from gpt1_keras.errors import ConfigError
from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.preprocessing import GPT1CausalLMPreprocessor
from gpt1_keras.tasks.finetuning import checkpoint_tokenizer
from gpt1_keras.tokenizers import GPT1Tokenizer
from gpt1_keras.tokenizers import train_bpe
from gpt1_keras.tokenizers.gpt1_tokenizer import DEFAULT_MERGES
from tests import test_case
from tests.test_case import to_numpy

HELD_OUT = ["Wherefore art thou so merry, good cousin?", "The quick brown fox.\nA second line"]


class CustomVocabularyTest(test_case.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(default_corpus_path(), encoding="utf-8") as f:
            lines = [line for line in f.read().split("\n")[:4000] if line.strip()]
        cls.bpe_dir = os.path.join(absltest.get_default_test_tmpdir(), "bpe")
        cls.vocab_path, cls.merges_path = train_bpe(lines, 300, output_dir=cls.bpe_dir)
        cls.tokenizer = GPT1Tokenizer.from_preset(cls.bpe_dir)

    def _lm(self, tokenizer=None):
        tokenizer = tokenizer or self.tokenizer
        backbone = GPT1Backbone(**{**test_case.TINY_BACKBONE,
                                   "vocabulary_size": tokenizer.vocabulary_size()})
        test_case.assign_random_weights(backbone, seed=1)
        return GPT1CausalLM(backbone, GPT1CausalLMPreprocessor(tokenizer, sequence_length=16))

    def test_tokenizer_is_its_own(self):
        self.assertEqual(self.tokenizer.vocabulary_size(), 303)  # 300 + 3 special tokens
        ids = self.tokenizer(HELD_OUT).to_list()
        self.assertNotEqual(ids, GPT1Tokenizer()(HELD_OUT).to_list())
        self.assertTrue(all(0 <= i < 300 for row in ids for i in row))
        self.assertEqual(self.tokenizer.detokenize(ids[:1]).numpy()[0].decode(),
                         "wherefore art thou so merry , good cousin ?")

    def test_preset_and_keras_file_round_trip(self):
        lm = self._lm()
        x = lm.preprocessor.generate_preprocess(HELD_OUT)
        want_ids = to_numpy(x["token_ids"])
        want = to_numpy(lm(x))
        self.assertEqual(want.shape[-1], 303)

        preset = self.create_tempdir().full_path
        lm.save_to_preset(preset)
        path = os.path.join(self.create_tempdir().full_path, "lm.keras")
        lm.save(path)
        for loaded in (GPT1CausalLM.from_preset(preset),
                       keras.saving.load_model(path, compile=False)):
            self.assertEqual(loaded.preprocessor.tokenizer.vocabulary_size(), 303)
            y = loaded.preprocessor.generate_preprocess(HELD_OUT)
            np.testing.assert_array_equal(to_numpy(y["token_ids"]), want_ids)
            self.assertAllClose(loaded(y), want, atol=1e-6)
        # A copy through the config alone (as the SavedModel export makes one) keeps it.
        copy = GPT1Tokenizer.from_config(
            keras.saving.load_model(path, compile=False).preprocessor.tokenizer.get_config())
        self.assertEqual(copy(HELD_OUT).to_list(), self.tokenizer(HELD_OUT).to_list())

    def test_fine_tuning_takes_the_checkpoints_tokenizer(self):
        lm = self._lm()
        path = os.path.join(self.create_tempdir().full_path, "lm.keras")
        lm.save(path)
        preset = self.create_tempdir().full_path
        lm.save_to_preset(preset)
        want = self.tokenizer(HELD_OUT).to_list()
        run_dir = os.path.dirname(path)  # a run directory: its model.keras
        os.rename(path, os.path.join(run_dir, "model.keras"))
        path = os.path.join(run_dir, "model.keras")
        for source in (path, run_dir, preset):
            self.assertEqual(checkpoint_tokenizer(source)(HELD_OUT).to_list(), want, source)
        # A model file without a preprocessor, or a directory without a tokenizer: none.
        bare = os.path.join(self.create_tempdir().full_path, "bare.keras")
        GPT1CausalLM(lm.backbone).save(bare)
        self.assertIsNone(checkpoint_tokenizer(bare))
        self.assertIsNone(checkpoint_tokenizer(self.create_tempdir().full_path))

    def test_mismatches_name_both_sides(self):
        backbone = GPT1Backbone(**test_case.TINY_BACKBONE)  # 60 ids
        with self.assertRaisesRegex(
                ConfigError, "tokenizer has 303 token ids but the model's vocabulary_size "
                f"is {test_case.TINY_VOCABULARY_SIZE}"):
            GPT1CausalLM(backbone, GPT1CausalLMPreprocessor(self.tokenizer))
        with self.assertRaisesRegex(ConfigError, f"`vocabulary` without `merges`.*"
                                    f"{self.vocab_path}"):
            GPT1Tokenizer(vocabulary=self.vocab_path)
        with self.assertRaisesRegex(
                ConfigError, f"merges \\({DEFAULT_MERGES}\\) do not fit the vocabulary "
                f"\\({self.vocab_path}, 300 tokens\\)"):
            GPT1Tokenizer(vocabulary=self.vocab_path, merges=DEFAULT_MERGES)


if __name__ == "__main__":
    absltest.main()
