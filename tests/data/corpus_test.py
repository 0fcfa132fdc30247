"""Tests for gpt1_keras.data.corpus: UTF-8 reports, line and whole-book splits, counts."""

import os

import numpy as np
import tensorflow as tf
from absl.testing import absltest

from gpt1_keras.data import corpus
from gpt1_keras.errors import ConfigError
from tests.data.fake_tokenizer import FakeTokenizer


def _book(i, paragraphs=3):
    # Single blank lines inside a book; numbers so FakeTokenizer keeps them.
    return "\n\n".join(f"{100 * i + p} {100 * i + p}" for p in range(paragraphs))


class CorpusTest(absltest.TestCase):

    def write(self, name, data):
        path = os.path.join(self.create_tempdir().full_path, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    def test_utf8_report_counts_lines_and_bytes_and_warns(self):
        path = self.write("bad.txt", b"ok\nbad \xff\xfe x\nok\n\xc3\n")
        report = corpus.check_utf8(path)
        self.assertEqual((report.lines, report.bad_lines, report.bad_bytes,
                          report.first_bad_line), (4, 2, 3, 2))
        clean = corpus.check_utf8(self.write("ok.txt", "caf\u00e9\n"))
        self.assertTrue(clean.valid)
        with self.assertLogs(level="WARNING") as logs:
            corpus.warn_invalid_utf8([clean.path, path])
        self.assertLen(logs.records, 1)
        self.assertIn("bad.txt: 2 of 4 lines (3 bytes, first at line 2) are not valid "
                      "UTF-8", logs.output[0])
        self.assertIn("replaced by U+FFFD", logs.output[0])

    def test_split_text_and_the_tf_pipeline_replace_alike(self):
        # The split files (Python's decoder) and training straight from the file
        # (tf.strings.unicode_transcode) must see the same text.
        data = b"a \xff b\n\xe2\x82 euro\nok \xf0\x9f\x98 x \xc3\xa9\n\xed\xa0\x80 surrogate\n"
        path = self.write("bad.txt", data)
        train, valid = corpus.split_lines([path], 0.25, self.create_tempdir().full_path)
        with open(train[0], encoding="utf-8") as f:
            python_lines = f.read().splitlines()
        with open(valid[0], encoding="utf-8") as f:
            python_lines += f.read().splitlines()
        tf_lines = tf.strings.unicode_transcode(
            data.split(b"\n")[:-1], "UTF-8", "UTF-8", errors="replace",
            replacement_char=0xFFFD).numpy()
        self.assertEqual(python_lines, [line.decode("utf-8") for line in tf_lines])

    def test_split_lines_holds_out_the_last_lines(self):
        path = self.write("c.txt", "".join(f"{i}\n" for i in range(20)))
        train, valid = corpus.split_lines([path], 0.25, self.create_tempdir().full_path)
        with open(train[0]) as f:
            self.assertEqual(f.read().split(), [str(i) for i in range(15)])
        with open(valid[0]) as f:
            self.assertEqual(f.read().split(), [str(i) for i in range(15, 20)])
        with self.assertRaisesRegex(ConfigError, r"validation_fraction=0.99 leaves an empty"):
            corpus.split_lines([path], 0.99, self.create_tempdir().full_path)

    def test_split_books_holds_out_whole_books_deterministically(self):
        books = [_book(i) for i in range(1, 9)]
        path = self.write("books.txt", "\n\n\n".join(books) + "\n")
        with open(path) as f:
            self.assertEqual(corpus.split_books_text(f.read()), books)

        def split(seed):
            out = self.create_tempdir().full_path
            train, valid, info = corpus.split_books([path], 3, seed, out)
            texts = []
            for files in (train, valid):
                with open(files[0]) as f:
                    texts.append(corpus.split_books_text(f.read()))
            return texts, info

        (train, valid), info = split(seed=5)
        self.assertLen(valid, 3)
        self.assertEmpty(set(train) & set(valid))
        self.assertCountEqual(train + valid, books)
        self.assertEqual([books[i] for i in info["validation_books"]], valid)
        self.assertEqual(info["books"], 8)
        self.assertEqual(split(seed=5)[0], [train, valid])  # Same seed, same split.
        others = {tuple(split(seed)[1]["validation_books"]) for seed in range(6)}
        self.assertGreater(len(others), 1)  # The seed picks the books.

        for n in (0, 8):
            with self.assertRaisesRegex(ConfigError,
                                        rf"validation_books={n} must be in \[1, 7\].*8 books"):
                corpus.split_books([path], n, 0, self.create_tempdir().full_path)

    def test_book_separator_length(self):
        text = "a\n\nb\n\n\nc\n \n\t\n\n d\n"
        self.assertEqual(corpus.split_books_text(text), ["a\n\nb", "c", " d"])
        self.assertEqual(corpus.split_books_text(text, 3), ["a\n\nb\n\n\nc", " d"])

    def test_token_counts_match_the_stream(self):
        path = self.write("c.txt", "1 2 2\n\n3 \xff\n".encode("latin-1"))
        counts = corpus.token_counts([path], FakeTokenizer(), 904)
        expected = np.bincount([1, 2, 2, 900, 3, 0, 900], minlength=904)
        np.testing.assert_array_equal(counts, expected)


if __name__ == "__main__":
    absltest.main()
