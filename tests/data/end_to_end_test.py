"""The data pipelines with the real `GPT1Tokenizer` and the shipped assets."""

import itertools
import os

import numpy as np
import tensorflow as tf

from gpt1_keras.data import lm_dataset
from gpt1_keras.data import task_dataset
from gpt1_keras.tokenizers.gpt1_tokenizer import GPT1Tokenizer


class EndToEndTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tokenizer = GPT1Tokenizer()
        with open(lm_dataset.default_corpus_path(), encoding="utf-8") as f:
            cls.lines = [line.rstrip("\n") for line in
                         itertools.islice(f, 120)]

    def expected_stream(self, lines):
        ids = self.tokenizer(tf.constant(lines))
        stream = []
        for row in ids.to_list():
            if row:
                stream += row + [self.tokenizer.newline_token_id]
        return np.array(stream, np.int32)

    def test_default_corpus_is_shipped(self):
        path = lm_dataset.default_corpus_path()
        self.assertGreater(os.path.getsize(path), 1_000_000)
        self.assertEqual(self.lines[0], "First Citizen:")

    def test_lm_windows_from_the_default_corpus(self):
        T = 32
        ds = lm_dataset.make_lm_dataset(
            lm_dataset.default_corpus_path(), self.tokenizer,
            sequence_length=T, batch_size=4, shuffle=False,
            lines_per_chunk=64)
        x, y, w = next(iter(ds))
        stream = self.expected_stream(self.lines)
        self.assertGreater(len(stream), 4 * T + 1)
        self.assertAllEqual(x["token_ids"], stream[:4 * T].reshape(4, T))
        self.assertAllEqual(y, stream[1:4 * T + 1].reshape(4, T))
        self.assertAllEqual(w, np.ones((4, T), np.float32))
        # "First Citizen:" then the newline token ("\n</w>", 40477).
        self.assertEqual(x["token_ids"][0, 3], 40477)
        self.assertLess(int(tf.reduce_max(x["token_ids"])),
                        self.tokenizer.vocabulary_size())

    def test_shards_match_text_pipeline(self):
        directory = self.create_tempdir().full_path
        path = os.path.join(directory, "corpus.txt")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(self.lines) + "\n")
        out = os.path.join(directory, "shards")
        lm_dataset.write_token_shards(
            path, self.tokenizer, out, num_shards=2, tokens_per_record=100)
        kwargs = dict(sequence_length=16, batch_size=2, shuffle=False,
                      drop_remainder=False)
        text = list(lm_dataset.make_lm_dataset(
            path, self.tokenizer, **kwargs).as_numpy_iterator())
        shards = list(lm_dataset.make_lm_dataset_from_shards(
            os.path.join(out, "*.tfrecord"), **kwargs).as_numpy_iterator())
        self.assertLen(shards, len(text))
        for (xa, ya, wa), (xb, yb, wb) in zip(text, shards):
            self.assertAllEqual(xa["token_ids"], xb["token_ids"])
            self.assertAllEqual(ya, yb)
            self.assertAllEqual(wa, wb)
        stream = self.expected_stream(self.lines)
        got = np.concatenate([x["token_ids"][x["padding_mask"]]
                              for x, _, _ in text])
        self.assertAllEqual(got, stream[:-1])

    def test_task_transforms_with_special_tokens(self):
        tok = self.tokenizer
        premise, hypothesis = "a man is sleeping .", "a person rests ."
        ds = task_dataset.make_task_dataset(
            ([premise], [hypothesis], [1]), tok, "entailment",
            sequence_length=16, batch_size=1)
        x, y = next(ds.as_numpy_iterator())
        a = tok(tf.constant([premise])).to_list()[0]
        b = tok(tf.constant([hypothesis])).to_list()[0]
        want = ([tok.start_token_id] + a + [tok.delimiter_token_id] + b
                + [tok.classify_token_id])
        ids, mask = x["token_ids"][0], x["padding_mask"][0]
        self.assertAllEqual(ids[:len(want)], want)
        self.assertAllEqual(ids[len(want):],
                            [tok.pad_token_id] * (16 - len(want)))
        self.assertEqual(mask.sum(), len(want))
        self.assertEqual(
            [tok.start_token_id, tok.delimiter_token_id,
             tok.classify_token_id], [40478, 40479, 40480])
        self.assertAllEqual(y, [1])

    def test_multiple_choice_truncation_with_real_tokens(self):
        tok = self.tokenizer
        context = " ".join(self.lines[:40])
        ds = task_dataset.make_task_dataset(
            ([context], [["yes .", "no , never ."]], [1]), tok,
            "multiple_choice", sequence_length=24, batch_size=1)
        x, _ = next(ds.as_numpy_iterator())
        ids, mask = x["token_ids"][0], x["padding_mask"][0]
        self.assertEqual(ids.shape, (2, 24))
        self.assertTrue(mask.all())  # the long context fills every row
        self.assertAllEqual(ids[:, -1], [tok.classify_token_id] * 2)
        for k, choice in enumerate(["yes .", "no , never ."]):
            c = tok(tf.constant([choice])).to_list()[0]
            self.assertAllEqual(ids[k, -len(c) - 1:-1], c)
            self.assertEqual(ids[k, -len(c) - 2], tok.delimiter_token_id)


if __name__ == "__main__":
    tf.test.main()
