"""Tests for `train_bpe`: trained files load into `GPT1Tokenizer` and match HF's BPE."""

import json
import os
import tempfile

import tensorflow as tf
from absl.testing import absltest

from gpt1_keras.tokenizers import GPT1Tokenizer
from gpt1_keras.tokenizers import train_bpe
from tests.tokenizers import reference_encoder as ref


class TrainBpeTest(absltest.TestCase):
    def test_trained_files_load_and_match_hf(self):
        lines = ref.read_tinyshakespeare()
        train, held_out = lines[:20000], lines[20000:24000]
        with tempfile.TemporaryDirectory() as tmp:
            vocab_path, merges_path = train_bpe(
                train, vocabulary_size=2000, output_dir=tmp, normalization="bert"
            )
            with open(vocab_path, encoding="utf-8") as f:
                vocab = json.load(f)
            self.assertEqual(len(vocab), 2000)
            self.assertEqual(vocab["<unk>"], 0)
            tok = GPT1Tokenizer(vocabulary=vocab_path, merges=merges_path, normalization="bert")
            self.assertEqual(tok.vocabulary_size(), 2003)
            self.assertEqual(tok.start_token_id, 2000)
            hf = ref.hf_fast_tokenizer(vocab_path, merges_path)
            ours = tok(tf.constant(held_out)).to_list()
            theirs = hf(held_out, add_special_tokens=False)["input_ids"]
            same = sum(a == b for a, b in zip(ours, theirs))
            self.assertGreaterEqual(same / len(held_out), 0.999)
            # Compression: far fewer tokens than characters on unseen text.
            tokens = sum(len(r) for r in ours)
            chars = sum(len(line) for line in held_out)
            self.assertLess(tokens, chars / 2.5)

    def test_openai_mode_vocab_round_trips(self):
        lines = ref.read_tinyshakespeare()[:5000]
        vocab, merges = train_bpe(lines, vocabulary_size=800)
        self.assertEqual(len(vocab), 800)
        self.assertIn("\n</w>", vocab)
        tok = GPT1Tokenizer(vocabulary=vocab, merges=merges)
        self.assertEqual(tok.newline_token_id, vocab["\n</w>"])
        encoder = ref.OriginalEncoder(use_ftfy=True)
        text = lines[:300]
        # Independent reference: the original encoder's BPE with the trained merges.
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "v.json"), "w", encoding="utf-8") as f:
                json.dump(vocab, f)
            with open(os.path.join(tmp, "m.bpe"), "w", encoding="utf-8") as f:
                f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
            encoder = ref.OriginalEncoder(
                os.path.join(tmp, "v.json"), os.path.join(tmp, "m.bpe")
            )
        self.assertEqual(
            tok(tf.constant(text)).to_list(), [encoder.encode(line) for line in text]
        )

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "vocabulary_size"):
            train_bpe(["a b"], vocabulary_size=1)
        with self.assertRaisesRegex(ValueError, "no words"):
            train_bpe(["", "   "], vocabulary_size=100)


if __name__ == "__main__":
    absltest.main()
