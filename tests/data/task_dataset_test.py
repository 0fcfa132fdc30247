"""Tests for gpt1_keras.data.task_dataset (with a stand-in tokenizer)."""

import numpy as np
import tensorflow as tf

from gpt1_keras.data import task_dataset
from tests.data.fake_tokenizer import FakeTokenizer

S = FakeTokenizer.start_token_id
D = FakeTokenizer.delimiter_token_id
C = FakeTokenizer.classify_token_id
P = FakeTokenizer.pad_token_id


def first_batch(ds):
    return next(ds.as_numpy_iterator())


class TrimLongestFirstTest(tf.test.TestCase):

    def test_matches_one_token_at_a_time(self):
        rng = np.random.default_rng(0)
        lengths = rng.integers(0, 30, size=(200, 3))
        budgets = [0, 1, 7, 20, 45, 100]
        for budget in budgets:
            got = task_dataset.trim_longest_first(lengths, budget).numpy()
            for row, out in zip(lengths, got):
                want = list(row)
                while sum(want) > budget:
                    longest = max(want)
                    # Ties: the later segment is cut first.
                    j = len(want) - 1 - want[::-1].index(longest)
                    want[j] -= 1
                self.assertEqual(list(out), want, (row, budget))

    def test_hand_computed(self):
        got = task_dataset.trim_longest_first([[10, 3], [4, 4], [2, 1]], 6)
        self.assertAllEqual(got, [[3, 3], [3, 3], [2, 1]])


class PackSegmentsTest(tf.test.TestCase):

    def test_layout_and_padding(self):
        a = tf.ragged.constant([[5, 6, 7], []], tf.int32)
        b = tf.ragged.constant([[8], [9, 10]], tf.int32)
        ids, mask = task_dataset.pack_segments([[a], [b]], 8, S, D, C, P)
        self.assertAllEqual(ids, [[S, 5, 6, 7, D, 8, C, P],
                                  [S, D, 9, 10, C, P, P, P]])
        self.assertAllEqual(mask, [[1, 1, 1, 1, 1, 1, 1, 0],
                                   [1, 1, 1, 1, 1, 0, 0, 0]])

    def test_truncation_cuts_longest_and_keeps_classify_last(self):
        a = tf.ragged.constant([list(range(1, 11))], tf.int32)  # 10 tokens
        b = tf.ragged.constant([[20, 21, 22]], tf.int32)
        ids, mask = task_dataset.pack_segments([[a], [b]], 9, S, D, C, P)
        # Budget 9 - 3 = 6: a is cut from 10 to 3, b (3) is kept whole.
        self.assertAllEqual(ids, [[S, 1, 2, 3, D, 20, 21, 22, C]])
        self.assertTrue(mask.numpy().all())

    def test_sequence_length_must_fit_specials(self):
        a = tf.ragged.constant([[1]], tf.int32)
        with self.assertRaisesRegex(ValueError, "sequence_length=2"):
            task_dataset.pack_segments([[a], [a]], 2, S, D, C, P)


class TaskInputsTest(tf.test.TestCase):

    def test_classification(self):
        ds = task_dataset.make_task_dataset(
            (["1 2 3", "4"], [1, 0]), FakeTokenizer(), "classification",
            sequence_length=6, batch_size=2)
        x, y = first_batch(ds)
        self.assertAllEqual(x["token_ids"], [[S, 1, 2, 3, C, P],
                                             [S, 4, C, P, P, P]])
        self.assertAllEqual(x["padding_mask"], [[1, 1, 1, 1, 1, 0],
                                                [1, 1, 1, 0, 0, 0]])
        self.assertAllEqual(y, [1, 0])
        self.assertEqual(y.dtype, np.int32)

    def test_entailment_premise_first(self):
        ds = task_dataset.make_task_dataset(
            (["1 2", "3"], ["4", "5 6 7"], [2, 0]), FakeTokenizer(),
            "entailment", sequence_length=7, batch_size=2)
        x, y = first_batch(ds)
        self.assertAllEqual(x["token_ids"], [[S, 1, 2, D, 4, C, P],
                                             [S, 3, D, 5, 6, 7, C]])
        self.assertAllEqual(y, [2, 0])

    def test_similarity_both_orders_trimmed_once(self):
        ds = task_dataset.make_task_dataset(
            (["1 2 3 4 5", "7"], ["8 9 10 11 12", "6 6"], [0.5, 4.0]),
            FakeTokenizer(), "similarity", sequence_length=9, batch_size=2,
            regression=True)
        x, y = first_batch(ds)
        self.assertEqual(x["token_ids"].shape, (2, 2, 9))
        # Budget 6 for 5 + 5 tokens: each keeps 3; both orders equal sets.
        self.assertAllEqual(x["token_ids"][0],
                            [[S, 1, 2, 3, D, 8, 9, 10, C],
                             [S, 8, 9, 10, D, 1, 2, 3, C]])
        self.assertAllEqual(x["token_ids"][1],
                            [[S, 7, D, 6, 6, C, P, P, P],
                             [S, 6, 6, D, 7, C, P, P, P]])
        self.assertAllEqual(x["padding_mask"][1].sum(-1), [6, 6])
        self.assertAllClose(y, [0.5, 4.0])
        self.assertEqual(y.dtype, np.float32)

    def test_multiple_choice_one_sequence_per_choice(self):
        contexts = ["1 2", "3"]
        choices = [["4", "5 6", "7"], ["8", "9", "10 11"]]
        ds = task_dataset.make_task_dataset(
            (contexts, choices, [1, 2]), FakeTokenizer(), "multiple_choice",
            sequence_length=7, batch_size=2)
        self.assertEqual(ds.element_spec[0]["token_ids"].shape.as_list(),
                         [None, 3, 7])
        x, y = first_batch(ds)
        self.assertEqual(x["token_ids"].shape, (2, 3, 7))
        self.assertAllEqual(x["token_ids"][0], [[S, 1, 2, D, 4, C, P],
                                                [S, 1, 2, D, 5, 6, C],
                                                [S, 1, 2, D, 7, C, P]])
        self.assertAllEqual(x["token_ids"][1, 2], [S, 3, D, 10, 11, C, P])
        self.assertEqual(x["padding_mask"].shape, (2, 3, 7))
        self.assertAllEqual(y, [1, 2])

    def test_multiple_choice_with_question_truncates_context_first(self):
        context = " ".join(map(str, range(1, 21)))  # 20 tokens
        ds = task_dataset.make_task_dataset(
            ([context], ["30 31"], [["40", "41 42"]], [0]), FakeTokenizer(),
            "multiple_choice", sequence_length=10, batch_size=1)
        x, _ = first_batch(ds)
        # Budget 7: question (2) and choice (1 or 2) kept, context cut.
        self.assertAllEqual(x["token_ids"][0],
                            [[S, 1, 2, 3, 4, 30, 31, D, 40, C],
                             [S, 1, 2, 3, 30, 31, D, 41, 42, C]])

    def test_classify_is_last_real_token_under_truncation(self):
        rng = np.random.default_rng(1)
        texts_a = [" ".join(map(str, rng.integers(1, 99, n)))
                   for n in rng.integers(0, 40, 32)]
        texts_b = [" ".join(map(str, rng.integers(1, 99, n)))
                   for n in rng.integers(0, 40, 32)]
        ds = task_dataset.make_task_dataset(
            (texts_a, texts_b, [0] * 32), FakeTokenizer(), "entailment",
            sequence_length=24, batch_size=32)
        x, _ = first_batch(ds)
        ids, mask = x["token_ids"], x["padding_mask"]
        last = mask.sum(-1) - 1
        self.assertAllEqual(ids[np.arange(32), last], [C] * 32)
        self.assertAllEqual(ids[:, 0], [S] * 32)
        self.assertAllEqual((ids == D).sum(-1), [1] * 32)
        self.assertTrue((ids[mask == 0] == P).all())
        for i, (a, b) in enumerate(zip(texts_a, texts_b)):
            la, lb = len(a.split()), len(b.split())
            self.assertEqual(mask[i].sum(), min(la + lb, 21) + 3)

    def test_empty_strings_are_valid(self):
        ds = task_dataset.make_task_dataset(
            ([""], [""], [0]), FakeTokenizer(), "entailment",
            sequence_length=5, batch_size=1)
        x, _ = first_batch(ds)
        self.assertAllEqual(x["token_ids"], [[S, D, C, P, P]])

    def test_shuffle_seed_and_sharding(self):
        texts = [str(i) for i in range(1, 41)]
        labels = list(range(40))

        def labels_of(**kwargs):
            ds = task_dataset.make_task_dataset(
                (texts, labels), FakeTokenizer(), "classification",
                sequence_length=4, batch_size=8, **kwargs)
            return np.concatenate([y for _, y in ds.as_numpy_iterator()])

        a, b = labels_of(shuffle=True, seed=1), labels_of(shuffle=True, seed=1)
        c = labels_of(shuffle=True, seed=2)
        self.assertAllEqual(a, b)
        self.assertNotAllEqual(a, c)
        self.assertCountEqual(a, labels)
        parts = [set(labels_of(input_context=tf.distribute.InputContext(
            2, i, 2))) for i in range(2)]
        self.assertEmpty(parts[0] & parts[1])
        self.assertEqual(parts[0] | parts[1], set(labels))

    def test_per_replica_batch_size(self):
        ds = task_dataset.make_task_dataset(
            (["1"] * 16, [0] * 16), FakeTokenizer(), "classification",
            sequence_length=4, batch_size=8, drop_remainder=True,
            input_context=tf.distribute.InputContext(1, 0, 4))
        self.assertEqual(ds.element_spec[0]["token_ids"].shape, [2, 4])

    # -- bad input -------------------------------------------------------------

    def test_bad_structure_names_the_field(self):
        tok = FakeTokenizer()
        with self.assertRaisesRegex(ValueError, "`head` must be one of .*head='translation'"):
            task_dataset.make_task_dataset((["a"], [0]), tok, "translation")
        with self.assertRaisesRegex(ValueError, "entailment.*text_a, text_b"):
            task_dataset.make_task_dataset((["a"], [0]), tok, "entailment")
        with self.assertRaisesRegex(ValueError, "`text_b` must be a scalar"):
            task_dataset.make_task_dataset(([b"a"], [1], [0]), tok,
                                           "entailment")
        with self.assertRaisesRegex(ValueError, "`label`.*regression=True"):
            task_dataset.make_task_dataset((["a"], ["b"], [0.5]), tok,
                                           "similarity")
        with self.assertRaisesRegex(ValueError, "`text_b` must be a \\[K\\]"):
            task_dataset.make_task_dataset((["a"], ["b"], [0]), tok,
                                           "multiple_choice")

    def test_bad_labels_raise_when_iterated(self):
        tok = FakeTokenizer()
        cases = [
            ((["1"], [-1]), "classification", {}, ">= 0"),
            ((["1"], [3]), "classification", {"num_classes": 3},
             "num_classes=3"),
            ((["1"], [["2", "3"]], [2]), "multiple_choice", {},
             "index a choice"),
            ((["1"], ["2"], [0]), "classification", {}, "text_b` must be"),
        ]
        for examples, head, kwargs, message in cases:
            ds = task_dataset.make_task_dataset(
                examples, tok, head, sequence_length=8, batch_size=1,
                **kwargs)
            with self.assertRaisesRegex(tf.errors.InvalidArgumentError,
                                        message):
                first_batch(ds)


if __name__ == "__main__":
    tf.test.main()
