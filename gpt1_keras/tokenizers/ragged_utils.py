"""Small TF helpers shared by the tokenizer's splitter and BPE: lookup tables, row selection."""

import tensorflow as tf


def static_table(keys, values, key_dtype, value_dtype, default):
    """A `tf.lookup.StaticHashTable` from two Python lists."""
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(keys, dtype=key_dtype), tf.constant(values, dtype=value_dtype)
        ),
        default_value=tf.constant(default, dtype=value_dtype),
    )


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
