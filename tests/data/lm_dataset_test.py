"""Tests for gpt1_keras.data.lm_dataset (with a stand-in tokenizer)."""

import json
import os

import numpy as np
import tensorflow as tf

from gpt1_keras.data import lm_dataset
from tests.data.fake_tokenizer import FakeTokenizer

SEP = FakeTokenizer.newline_token_id
PAD = FakeTokenizer.pad_token_id


def collect(ds):
    """All batches of an LM dataset as numpy arrays (x, mask, y, weight)."""
    xs, masks, ys, weights = [], [], [], []
    for x, y, w in ds.as_numpy_iterator():
        xs.append(x["token_ids"])
        masks.append(x["padding_mask"])
        ys.append(y)
        weights.append(w)
    return tuple(np.concatenate(a) for a in (xs, masks, ys, weights))


def numbered_lines(start, stop, per_line=3):
    """Lines "1 2 3", "4 5 6", ... covering the ids [start, stop)."""
    ids = list(range(start, stop))
    return [" ".join(map(str, ids[i:i + per_line]))
            for i in range(0, len(ids), per_line)]


def expected_stream(lines):
    stream = []
    for line in lines:
        tokens = [int(w) for w in line.split()]
        if tokens:
            stream += tokens + [SEP]
    return np.array(stream, np.int32)


class LMDatasetTest(tf.test.TestCase):

    def write(self, name, lines, directory=None):
        directory = directory or self.create_tempdir().full_path
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def test_windows_are_contiguous_slices_of_the_stream(self):
        lines = numbered_lines(1, 60) + ["", "   "] + numbered_lines(60, 80)
        path = self.write("a.txt", lines)
        T = 8
        ds = lm_dataset.make_lm_dataset(
            path, FakeTokenizer(), sequence_length=T, batch_size=3,
            shuffle=False, drop_remainder=False, lines_per_chunk=4,
        )
        x, mask, y, weight = collect(ds)
        stream = expected_stream(lines)
        # Blank and whitespace-only lines add no separator.
        self.assertEqual(len(stream), 79 + len(numbered_lines(1, 60))
                         + len(numbered_lines(60, 80)))
        num_full = (len(stream) - 1) // T
        self.assertEqual(x.shape, (num_full + 1, T))
        for i in range(num_full):
            self.assertAllEqual(x[i], stream[i * T:i * T + T])
            self.assertAllEqual(y[i], stream[i * T + 1:i * T + T + 1])
        self.assertTrue(mask[:num_full].all())
        # The last partial window: real tokens then padding, weight 0 there.
        rest = len(stream) - 1 - num_full * T
        self.assertAllEqual(x[-1, :rest], stream[num_full * T:-1])
        self.assertAllEqual(y[-1, :rest], stream[num_full * T + 1:])
        self.assertAllEqual(x[-1, rest:], [PAD] * (T - rest))
        self.assertAllEqual(mask[-1], [True] * rest + [False] * (T - rest))
        self.assertAllEqual(weight, mask.astype(np.float32))
        # Every token after the first is a target exactly once.
        self.assertAllEqual(y[mask], stream[1:])

    def test_element_spec(self):
        path = self.write("a.txt", numbered_lines(1, 100))
        ds = lm_dataset.make_lm_dataset(
            path, FakeTokenizer(), sequence_length=8, batch_size=4)
        x, y, w = ds.element_spec
        self.assertEqual(x["token_ids"], tf.TensorSpec([4, 8], tf.int32))
        self.assertEqual(x["padding_mask"], tf.TensorSpec([4, 8], tf.bool))
        self.assertEqual(y, tf.TensorSpec([4, 8], tf.int32))
        self.assertEqual(w, tf.TensorSpec([4, 8], tf.float32))

    def test_files_are_documents_in_glob_order(self):
        directory = self.create_tempdir().full_path
        self.write("b.txt", ["7 8 9"], directory)
        self.write("a.txt", ["1 2", "3"], directory)
        ds = lm_dataset.make_lm_dataset(
            os.path.join(directory, "*.txt"), FakeTokenizer(),
            sequence_length=8, batch_size=1, shuffle=False,
        )
        x, mask, y, _ = collect(ds)
        self.assertAllEqual(x, [[1, 2, SEP, 3, SEP, 7, 8, 9]])
        self.assertAllEqual(y, [[2, SEP, 3, SEP, 7, 8, 9, SEP]])
        self.assertTrue(mask.all())

    def test_custom_separator(self):
        path = self.write("a.txt", ["1 2", "3"])
        ds = lm_dataset.make_lm_dataset(
            path, FakeTokenizer(), sequence_length=4, batch_size=1,
            shuffle=False, separator_id=55,
        )
        x, _, y, _ = collect(ds)
        self.assertAllEqual(x[0], [1, 2, 55, 3])
        self.assertAllEqual(y[0], [2, 55, 3, 55])

    def test_crlf_line_endings(self):
        path = os.path.join(self.create_tempdir().full_path, "dos.txt")
        with open(path, "wb") as f:
            f.write(b"1 2\r\n\r\n3\r\n4")  # no final newline either
        ds = lm_dataset.make_lm_dataset(
            path, FakeTokenizer(), sequence_length=5, batch_size=1,
            shuffle=False)
        x, mask, y, _ = collect(ds)
        self.assertAllEqual(x[0], [1, 2, SEP, 3, SEP])
        self.assertAllEqual(y[0], [2, SEP, 3, SEP, 4])
        self.assertAllEqual(y[1][mask[1]], [SEP])  # the last line ends too

    def test_pipeline_with_only_empty_files_names_itself(self):
        directory = self.create_tempdir().full_path
        self.write("a.txt", ["1 2 3"], directory)
        self.write("b.txt", [""], directory)
        context = tf.distribute.InputContext(2, 1, 2)
        ds = lm_dataset.make_lm_dataset(
            os.path.join(directory, "*.txt"), FakeTokenizer(),
            sequence_length=2, batch_size=2, input_context=context)
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                    "b.txt.*input pipeline 1 of 2"):
            next(iter(ds))

    def test_line_longer_than_context_spans_windows(self):
        path = self.write("a.txt", [" ".join(map(str, range(1, 40)))])
        ds = lm_dataset.make_lm_dataset(
            path, FakeTokenizer(), sequence_length=8, batch_size=1,
            shuffle=False,
        )
        x, mask, y, _ = collect(ds)
        self.assertAllEqual(x[:4].ravel(), np.arange(1, 33))
        self.assertAllEqual(y[4][mask[4]], list(range(34, 40)) + [SEP])

    def test_seed_determinism_and_shuffling(self):
        path = self.write("a.txt", numbered_lines(1, 600))

        def windows(seed, shuffle=True):
            ds = lm_dataset.make_lm_dataset(
                path, FakeTokenizer(), sequence_length=8, batch_size=4,
                shuffle=shuffle, seed=seed, shuffle_buffer_size=1000,
            )
            return collect(ds)[0]

        first, again, other = windows(1), windows(1), windows(2)
        ordered = windows(None, shuffle=False)
        self.assertAllEqual(first, again)
        self.assertNotAllEqual(first, other)
        self.assertNotAllEqual(first, ordered)
        # A shuffle is a permutation of the same windows.
        key = lambda a: sorted(map(tuple, a))  # noqa: E731
        self.assertEqual(key(first), key(ordered))
        self.assertEqual(key(other), key(ordered))

    def test_repeat_reshuffles_each_epoch_without_padding(self):
        path = self.write("a.txt", numbered_lines(1, 200))
        T, B = 8, 4
        ds = lm_dataset.make_lm_dataset(
            path, FakeTokenizer(), sequence_length=T, batch_size=B, seed=3,
            repeat=True, shuffle_buffer_size=4,
        )
        per_epoch = (len(expected_stream(numbered_lines(1, 200))) - 1) // T
        x, mask, y, _ = collect(ds.take(3 * per_epoch // B))
        self.assertTrue(mask.all())
        self.assertAllEqual(x[:, 1:], y[:, :-1])
        self.assertGreater(len({tuple(r) for r in x}), per_epoch)

    def test_input_context_shards_windows_of_a_single_file(self):
        path = self.write("a.txt", numbered_lines(1, 300))
        self.check_sharding(path, expected_files_sharded=False)

    def test_input_context_shards_files(self):
        directory = self.create_tempdir().full_path
        for i in range(4):
            self.write(f"{i}.txt", numbered_lines(100 * i + 1, 100 * i + 90),
                       directory)
        self.check_sharding(os.path.join(directory, "*.txt"),
                            expected_files_sharded=True)

    def check_sharding(self, pattern, expected_files_sharded):
        tokenizer = FakeTokenizer()
        everything = collect(lm_dataset.make_lm_dataset(
            pattern, tokenizer, sequence_length=8, batch_size=1,
            shuffle=False, drop_remainder=False))[0]
        shards = []
        for pipeline in range(2):
            context = tf.distribute.InputContext(
                num_input_pipelines=2, input_pipeline_id=pipeline,
                num_replicas_in_sync=4)
            ds = lm_dataset.make_lm_dataset(
                pattern, tokenizer, sequence_length=8, batch_size=8, seed=5,
                input_context=context, drop_remainder=False)
            # Global batch 8 over 4 replicas: 2 per replica.
            self.assertEqual(ds.element_spec[1].shape.as_list(), [None, 8])
            self.assertEqual(next(iter(ds))[1].shape[0], 2)
            shards.append({tuple(r) for r in collect(ds)[0]})
        self.assertEmpty(shards[0] & shards[1])
        if expected_files_sharded:
            # Each pipeline has its own documents: windows may differ only
            # where documents meet, so compare the tokens covered instead.
            tokens = [set(np.ravel(list(s))) - {SEP, PAD} for s in shards]
            self.assertEmpty(tokens[0] & tokens[1])
            self.assertEqual(tokens[0] | tokens[1],
                             set(everything.ravel()) - {SEP, PAD})
        else:
            self.assertEqual(shards[0] | shards[1],
                             {tuple(r) for r in everything})

    # -- bad input -------------------------------------------------------------

    def test_missing_file_names_the_file(self):
        missing = os.path.join(self.create_tempdir().full_path, "nope.txt")
        with self.assertRaisesRegex(FileNotFoundError, "nope.txt"):
            lm_dataset.make_lm_dataset(missing, FakeTokenizer())

    def test_empty_glob_names_the_pattern(self):
        pattern = os.path.join(self.create_tempdir().full_path, "*.txt")
        with self.assertRaisesRegex(FileNotFoundError, r"\*\.txt.*matches"):
            lm_dataset.make_lm_dataset(pattern, FakeTokenizer())

    def test_directory_is_rejected(self):
        directory = self.create_tempdir().full_path
        with self.assertRaisesRegex(IsADirectoryError, "is a directory"):
            lm_dataset.make_lm_dataset(directory, FakeTokenizer())

    def test_empty_corpus_is_rejected(self):
        path = self.create_tempfile("empty.txt", content="").full_path
        with self.assertRaisesRegex(ValueError, "Empty corpus.*empty.txt"):
            lm_dataset.make_lm_dataset(path, FakeTokenizer())

    def test_blank_corpus_raises_when_iterated_even_with_repeat(self):
        path = self.write("blank.txt", ["", "  ", "\t"])
        for repeat in (False, True):
            ds = lm_dataset.make_lm_dataset(
                path, FakeTokenizer(), sequence_length=4, batch_size=1,
                repeat=repeat)
            with self.assertRaisesRegex(
                    tf.errors.InvalidArgumentError, "No tokens.*blank.txt"):
                next(iter(ds))

    def test_invalid_utf8_strict_names_file_and_line(self):
        path = os.path.join(self.create_tempdir().full_path, "bad.txt")
        with open(path, "wb") as f:
            f.write(b"1 2\n3 4\n5 \xff\xfe 6\n7\n")
        ds = lm_dataset.make_lm_dataset(
            path, FakeTokenizer(), sequence_length=4, batch_size=1,
            lines_per_chunk=2)
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                    r"(?s)Invalid UTF-8.*bad.txt.*line.*3"):
            collect(ds)

    def test_invalid_utf8_replace_and_ignore(self):
        path = os.path.join(self.create_tempdir().full_path, "bad.txt")
        with open(path, "wb") as f:
            f.write(b"1 \xff 2\n")
        stream = {}
        for errors in ("replace", "ignore"):
            ds = lm_dataset.make_lm_dataset(
                path, FakeTokenizer(), sequence_length=5, batch_size=1,
                shuffle=False, errors=errors, drop_remainder=False)
            x, mask, _, _ = collect(ds)
            stream[errors] = x[mask].tolist()
        # U+FFFD is a word of its own (UNK = 0); ignoring drops the byte.
        self.assertEqual(stream["replace"], [1, 0, 2])
        self.assertEqual(stream["ignore"], [1, 2])

    def test_text_smaller_than_one_batch_raises_with_drop_remainder(self):
        # 15 tokens: 3 full windows of 4 and a padded last one.
        path = self.write("small.txt", numbered_lines(1, 12))
        ds = lm_dataset.make_lm_dataset(
            path, FakeTokenizer(), sequence_length=4, batch_size=5, shuffle=False)
        with self.assertRaisesRegex(
                tf.errors.InvalidArgumentError,
                r"small.txt.*fewer than one batch of 5 windows of 4 tokens"):
            collect(ds)
        # One batch fits: it comes out unchanged, and the end passes the check.
        ds = lm_dataset.make_lm_dataset(
            path, FakeTokenizer(), sequence_length=4, batch_size=3, shuffle=False)
        x, _, y, _ = collect(ds)
        self.assertEqual(x.shape, (3, 4))
        np.testing.assert_array_equal(
            x.reshape(-1), expected_stream(numbered_lines(1, 12))[:12])

    def test_bad_arguments(self):
        path = self.write("a.txt", ["1"])
        with self.assertRaisesRegex(ValueError, "sequence_length=0"):
            lm_dataset.make_lm_dataset(path, FakeTokenizer(), sequence_length=0)
        with self.assertRaisesRegex(ValueError, "errors='bogus'"):
            lm_dataset.make_lm_dataset(path, FakeTokenizer(), errors="bogus")

    def test_dense_tokenizer_output_is_rejected(self):
        path = self.write("a.txt", ["1 2"])

        class Dense(FakeTokenizer):
            def __call__(self, texts):
                return super().__call__(texts).to_tensor()

        with self.assertRaisesRegex(TypeError, "RaggedTensor"):
            lm_dataset.make_lm_dataset(path, Dense())

    # -- shards ----------------------------------------------------------------

    def test_shards_round_trip_the_text_pipeline(self):
        directory = self.create_tempdir().full_path
        lines = numbered_lines(1, 500, per_line=7)
        self.write("a.txt", lines[:40], directory)
        self.write("b.txt", lines[40:], directory)
        pattern = os.path.join(directory, "*.txt")
        out = self.create_tempdir().full_path
        paths = lm_dataset.write_token_shards(
            pattern, FakeTokenizer(), out, num_shards=3,
            tokens_per_record=50, lines_per_chunk=5)
        self.assertLen(paths, 3)
        self.assertTrue(all(os.path.getsize(p) > 0 for p in paths))
        with open(os.path.join(out, "metadata.json")) as f:
            metadata = json.load(f)
        stream = expected_stream(lines)
        self.assertEqual(metadata["num_tokens"], len(stream))
        self.assertEqual(metadata["separator_id"], SEP)
        # Records hold whole lines.
        for record in tf.data.TFRecordDataset(paths):
            self.assertEqual(tf.io.parse_tensor(record, tf.int32)[-1], SEP)

        kwargs = dict(sequence_length=16, batch_size=5, shuffle=False,
                      drop_remainder=False)
        from_text = collect(lm_dataset.make_lm_dataset(
            pattern, FakeTokenizer(), **kwargs))
        from_shards = collect(lm_dataset.make_lm_dataset_from_shards(
            os.path.join(out, "*.tfrecord"), **kwargs))
        for a, b in zip(from_text, from_shards):
            self.assertAllEqual(a, b)

        shuffled = collect(lm_dataset.make_lm_dataset_from_shards(
            os.path.join(out, "*.tfrecord"), sequence_length=16,
            batch_size=5, seed=1))[0]
        self.assertNotAllEqual(shuffled, from_text[0][:len(shuffled)])
        again = collect(lm_dataset.make_lm_dataset_from_shards(
            os.path.join(out, "*.tfrecord"), sequence_length=16,
            batch_size=5, seed=1))[0]
        self.assertAllEqual(shuffled, again)

    def test_shards_split_between_input_pipelines(self):
        path = self.write("a.txt", numbered_lines(1, 400))
        out = self.create_tempdir().full_path
        lm_dataset.write_token_shards(
            path, FakeTokenizer(), out, num_shards=4, tokens_per_record=40)
        shards = []
        for pipeline in range(2):
            context = tf.distribute.InputContext(2, pipeline, 2)
            ds = lm_dataset.make_lm_dataset_from_shards(
                os.path.join(out, "*.tfrecord"), sequence_length=8,
                batch_size=4, seed=0, input_context=context)
            tokens = set(collect(ds)[0].ravel()) - {SEP, PAD}
            shards.append(tokens)
        self.assertEmpty(shards[0] & shards[1])
        self.assertGreater(len(shards[0]), 100)
        self.assertGreater(len(shards[1]), 100)

    def test_missing_shards(self):
        pattern = os.path.join(self.create_tempdir().full_path, "*.tfrecord")
        with self.assertRaisesRegex(FileNotFoundError, "tfrecord"):
            lm_dataset.make_lm_dataset_from_shards(pattern)


if __name__ == "__main__":
    tf.test.main()
