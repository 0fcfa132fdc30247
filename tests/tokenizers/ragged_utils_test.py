"""The tokenizer's check-free ragged helpers against the TF / tf-text ops they replace."""

import tensorflow as tf
import tensorflow_text as tf_text
from absl.testing import parameterized

from gpt1_keras.tokenizers import ragged_utils

# Rows with empty strings, empty rows, and a row with nothing to split.
_STRINGS = ["a,b;;c", "", ";", "no delimiter", ",lead", "trail;", "é,ü;ß"]


class RaggedUtilsTest(tf.test.TestCase, parameterized.TestCase):
    @parameterized.named_parameters(
        ("kept", "[,;]", "[,;]"), ("dropped", "[,;]", ""), ("unicode", "[ü,]", "ü")
    )
    def test_regex_split_equals_tf_text(self, delim, keep):
        strings = tf.constant(_STRINGS)
        got = ragged_utils.regex_split(strings, delim, keep)
        want = tf_text.regex_split(strings, delim, keep)
        self.assertAllEqual(got.to_list(), want.to_list())

    def test_regex_split_of_no_strings(self):
        got = ragged_utils.regex_split(tf.constant([], tf.string), ",", ",")
        self.assertEqual(got.nrows(), 0)

    def test_merge_inner_dims_equals_merge_dims(self):
        rt = tf.ragged.constant([[[1, 2], [], [3]], [], [[]], [[4], [5, 6, 7]]])
        got = ragged_utils.merge_inner_dims(rt)
        self.assertAllEqual(got.to_list(), rt.merge_dims(1, 2).to_list())
        self.assertAllEqual(got.to_list(), [[1, 2, 3], [], [], [4, 5, 6, 7]])

    @parameterized.named_parameters(("two", 2), ("three", 3))
    def test_concat_rows_equals_tf_concat(self, k):
        base = [[b"a", b"b"], [], [b"c"], [b"d", b"e", b"f"]]
        parts = [
            tf.ragged.constant([row[j:] + [b"x"] * (i % 2) for i, row in enumerate(base)])
            for j in range(k)
        ]
        got = ragged_utils.concat_rows(parts)
        self.assertAllEqual(got.to_list(), tf.concat(parts, axis=1).to_list())

    def test_concat_rows_of_no_rows(self):
        empty = tf.ragged.constant([], dtype=tf.string, ragged_rank=1)
        self.assertEqual(ragged_utils.concat_rows([empty, empty]).nrows(), 0)

    def test_helpers_build_no_assertions(self):
        # What they are for: no row-split checks in a graph that holds the tokenizer.
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def fn(strings):
            pieces = ragged_utils.regex_split(strings, ",", ",")
            nested = tf.RaggedTensor.from_row_splits(
                pieces, tf.constant([0, 1], tf.int64), validate=False
            )
            both = ragged_utils.concat_rows([pieces, pieces])
            return ragged_utils.merge_inner_dims(nested).flat_values, both.flat_values

        ops = {op.type for op in fn.get_concrete_function().graph.get_operations()}
        self.assertNotIn("Assert", ops)


if __name__ == "__main__":
    tf.test.main()
