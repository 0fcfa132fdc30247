"""Small TF helpers of the tokenizer's normaliser, splitter and BPE: lookup tables, row
selection, and ragged ops built without their validity checks."""

import tensorflow as tf
from tensorflow_text.python.ops import regex_split_ops


def static_table(keys, values, key_dtype, value_dtype, default):
    """A `tf.lookup.StaticHashTable` from two Python lists."""
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(keys, dtype=key_dtype), tf.constant(values, dtype=value_dtype)
        ),
        default_value=tf.constant(default, dtype=value_dtype),
    )


def regex_split(strings, delim_pattern, keep_delim_pattern):
    """`tf_text.regex_split` of a `[N]` string tensor -> `[N, None]`, without its checks.

    tf-text builds its output (and two offset tensors we never use) with validated
    `RaggedTensor.from_row_splits`: a dozen assertion functions in every graph that holds
    the tokenizer, instantiated again by every `tf.data` iterator. The op's row splits
    are valid by construction.
    """
    tokens, _, _, row_splits = regex_split_ops.gen_regex_split_ops.regex_split_with_offsets(
        strings, f"({delim_pattern})", f"({keep_delim_pattern})"
    )
    return tf.RaggedTensor.from_row_splits(tokens, row_splits, validate=False)


def merge_inner_dims(rt):
    """`rt.merge_dims(1, 2)` of a `[N, None, None]` ragged tensor, without its checks."""
    return tf.RaggedTensor.from_row_splits(
        rt.values.values, tf.gather(rt.values.row_splits, rt.row_splits), validate=False
    )


def concat_rows(parts):
    """`tf.concat(parts, axis=1)` of `[N, None]` ragged tensors, without its checks."""
    n = parts[0].nrows()
    k = len(parts)
    stacked = tf.concat(parts, axis=0)  # Row j * n + i is row i of part j.
    order = tf.reshape(tf.transpose(tf.reshape(tf.range(k * n), [k, n])), [-1])
    rows = tf.gather(stacked, order)  # Row i * k + j.
    lengths = tf.reduce_sum(tf.reshape(rows.row_lengths(), [n, k]), axis=1)
    return tf.RaggedTensor.from_row_lengths(rows.values, lengths, validate=False)


def select_rows(groups):
    """Interleaves ragged row groups back into one ragged tensor.

    `groups` is a list of `(positions, rows)`: `rows[i]` belongs at `positions[i]`; the
    positions of all groups together are a permutation of `range(num_rows)`.
    """
    positions = tf.concat([tf.cast(p, tf.int64) for p, _ in groups], axis=0)
    rows = tf.concat([r for _, r in groups], axis=0)
    return tf.gather(rows, tf.math.invert_permutation(positions))


def ragged_where(condition, x, y):
    """Row-wise select between two `[N, None]` ragged tensors."""
    x_pos = tf.where(condition)[:, 0]
    y_pos = tf.where(tf.logical_not(condition))[:, 0]
    return select_rows([(x_pos, tf.gather(x, x_pos)), (y_pos, tf.gather(y, y_pos))])


def cumsum(values):
    """Running totals of a Python iterable of ints."""
    total = 0
    for v in values:
        total += v
        yield total
