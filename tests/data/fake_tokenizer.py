"""A tiny stand-in tokenizer with the `GPT1Tokenizer` interface, for tests.

Words that are decimal numbers map to themselves (so expected token layouts
can be written by hand); any other word maps to `UNK` (0). The test suite's
one fake tokenizer: data pipelines, the classifier preprocessor and the
zero-shot heuristics (with `tests.test_case.tiny_lm(904)`) all use it; tests of
real text use `GPT1Tokenizer`.
"""

import tensorflow as tf


class FakeTokenizer:
    """Whitespace tokenizer: `"3 4 5"` -> `[3, 4, 5]`.

    Example:
    >>> FakeTokenizer()(tf.constant(["1 2", ""]))
    <tf.RaggedTensor [[1, 2], []]>
    """

    pad_token_id = 0
    newline_token_id = 900
    start_token_id = 901
    delimiter_token_id = 902
    classify_token_id = 903

    def vocabulary_size(self):
        return 904

    def __call__(self, texts):
        words = tf.strings.split(texts)
        numeric = tf.strings.regex_full_match(words, "[0-9]{1,6}")
        words = tf.ragged.map_flat_values(
            lambda w, n: tf.where(n, w, "0"), words, numeric
        )
        return tf.strings.to_number(words, tf.int32)
