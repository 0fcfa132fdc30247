"""GPT-1's input transforms per head type (paper Figure 1) as TensorFlow ops.

TensorFlow-only module. Every head type (`GPT1Classifier`'s `head`; "task"
names a dataset in `gpt1_keras.tasks`) turns its texts into sequences

    [start] part_1 [delim] part_2 ... [delim] part_n [classify] [pad] ...

| head | sequences per example | `token_ids` shape |
| --- | --- | --- |
| `"classification"` | `[start] text [classify]` | `[B, T]` |
| `"entailment"` | `[start] premise [delim] hypothesis [classify]` | `[B, T]` |
| `"similarity"` | `[start] a [delim] b [classify]`, then `[start] b [delim] a [classify]` | `[B, 2, T]` |
| `"multiple_choice"` | per choice k: `[start] context question [delim] choice_k [classify]` | `[B, K, T]` |

`head_inputs` returns `{"token_ids", "padding_mask"}`, both int32, of the
shapes above (`padding_mask` is 1 for real tokens). `GPT1ClassifierPreprocessor`
is the layer over it, and the only way raw text reaches a `GPT1Classifier`:
in fine-tuning, attached to the model, and in serving.

Padding is on the right, so **the classify token is always the last
non-padding token**: its position is `sum(padding_mask, -1) - 1`. Truncation
keeps it so: when the texts do not fit, tokens are cut from the end of the
longest segment first, one at a time (ties: the later segment first), until
segments plus special tokens fit in `sequence_length`; the special tokens are
never cut. For similarity the pair is trimmed once, then laid out in both
orders, so both sequences hold the same tokens.

An empty text is valid and contributes no tokens (`[start] [classify]` for an
empty classification input).
"""

import tensorflow as tf

from gpt1_keras.layers.heads import HEADS  # noqa: F401  (re-exported)
from gpt1_keras.layers.heads import check_head


@tf.autograph.experimental.do_not_convert
def trim_longest_first(lengths, max_total):
    """Segment lengths after trimming the longest segment first.

    Equivalent to: while `sum(lengths) > max_total`, decrement the longest
    segment (the later one on ties). Computed in closed form: every trimmed
    segment ends at `c` or `c + 1` tokens for the largest `c` that fits.

    Args:
        lengths: int32 `[B, S]`, the lengths of S segments per example.
        max_total: the token budget per example (scalar, >= 0).

    Returns:
        int32 `[B, S]` trimmed lengths, each `<=` its input, summing to
        `min(sum(lengths), max_total)` per row.

    Example:
    >>> trim_longest_first(tf.constant([[10, 3], [4, 4]]), 6)
    [[3, 3], [3, 3]]
    """
    lengths = tf.convert_to_tensor(lengths, tf.int32)
    max_total = tf.convert_to_tensor(max_total, tf.int32)

    def total_at(c):  # (B,) -> (B,): sum(min(lengths, c))
        return tf.reduce_sum(tf.minimum(lengths, c[:, None]), axis=-1)

    # Bisection for the largest cap c with total_at(c) <= max_total; the
    # invariant is total_at(lo) <= max_total < total_at(hi) (or no trim).
    def halve(lo, hi):
        mid = (lo + hi) // 2
        fits = total_at(mid) <= max_total
        return tf.where(fits, mid, lo), tf.where(fits, hi, mid)

    lo, hi = tf.while_loop(
        lambda lo, hi: tf.reduce_any(hi - lo > 1),
        halve,
        (tf.zeros_like(lengths[:, 0]), tf.reduce_max(lengths, axis=-1) + 1),
    )
    trimmed = tf.minimum(lengths, lo[:, None])
    # The budget left over goes, one token each, to the earlier capped
    # segments (so the later ones are the ones cut on ties).
    left = max_total - tf.reduce_sum(trimmed, axis=-1)
    capped = lengths > lo[:, None]
    rank = tf.cumsum(tf.cast(capped, tf.int32), axis=-1)
    extra = tf.logical_and(capped, rank <= left[:, None])
    return trimmed + tf.cast(extra, tf.int32)


def pack_segments(
    parts,
    sequence_length,
    start_token_id,
    delimiter_token_id,
    classify_token_id,
    pad_token_id,
):
    """Lays out `[start] part_1 [delim] ... part_n [classify]`, trimmed, padded.

    Args:
        parts: a list of parts; each part is a list of int `tf.RaggedTensor`
            segments `[B, None]`, written one after the other. Parts are
            separated by the delimiter token. All segments of all parts are
            trimmed together, longest first (`trim_longest_first`).
        sequence_length: `T`, the output length; must leave room for the
            `len(parts) + 1` special tokens.
        start_token_id: the `_start_` token id.
        delimiter_token_id: the `_delimiter_` token id.
        classify_token_id: the `_classify_` token id.
        pad_token_id: the id filling positions after `_classify_`.

    Returns:
        `(token_ids, padding_mask)`: int32 `[B, T]` each.

    Example:
    >>> a = tf.ragged.constant([[5, 6, 7]])
    >>> b = tf.ragged.constant([[8]])
    >>> pack_segments([[a], [b]], 8, 1, 2, 3, 0)[0]
    [[1, 5, 6, 7, 2, 8, 3, 0]]
    """
    num_specials = len(parts) + 1
    if sequence_length < num_specials:
        raise ValueError(
            f"`sequence_length` must hold the {num_specials} special tokens. "
            f"Received: sequence_length={sequence_length}"
        )
    lengths = tf.stack(
        [s.row_lengths() for part in parts for s in part], axis=-1
    )
    keep = trim_longest_first(
        tf.cast(lengths, tf.int32), sequence_length - num_specials
    )
    return _pack(
        parts, keep, sequence_length, start_token_id, delimiter_token_id,
        classify_token_id, pad_token_id,
    )


@tf.autograph.experimental.do_not_convert
def _pack(
    parts,
    keep,
    sequence_length,
    start_token_id,
    delimiter_token_id,
    classify_token_id,
    pad_token_id,
):
    """`pack_segments` with the kept lengths `keep` `[B, S]` given.

    Scatters every kept token straight to its output position, which is
    cheaper than ragged slicing and concatenation.
    """
    batch = tf.shape(keep)[0]
    rows = tf.range(batch)
    # (row, column, value) triples of every output token; [start] first.
    triples = [(rows, tf.zeros_like(rows), tf.fill([batch], start_token_id))]
    offset = tf.ones_like(rows)  # (B,): the next free column
    i = 0
    for p, part in enumerate(parts):
        for segment in part:
            row = tf.cast(segment.value_rowids(), tf.int32)
            start = tf.gather(tf.cast(segment.row_starts(), tf.int32), row)
            position = tf.range(tf.size(row)) - start  # within the row
            kept = position < tf.gather(keep[:, i], row)
            triples.append((
                tf.boolean_mask(row, kept),
                tf.boolean_mask(tf.gather(offset, row) + position, kept),
                tf.boolean_mask(tf.cast(segment.values, tf.int32), kept),
            ))
            offset += keep[:, i]
            i += 1
        last = p == len(parts) - 1
        special = classify_token_id if last else delimiter_token_id
        triples.append((rows, offset, tf.fill([batch], special)))
        offset += 1
    row, column, value = (tf.concat(t, axis=0) for t in zip(*triples))
    token_ids = tf.tensor_scatter_nd_update(
        tf.fill([batch, sequence_length], tf.cast(pad_token_id, tf.int32)),
        tf.stack([row, column], axis=-1),
        value,
    )
    padding_mask = tf.cast(tf.range(sequence_length)[None, :] < offset[:, None], tf.int32)
    return token_ids, padding_mask


def head_inputs(
    tokenizer,
    head,
    text_a,
    text_b=None,
    question=None,
    sequence_length=512,
):
    """Tokenizes a batch of texts and applies a GPT-1 input transform.

    Args:
        tokenizer: a tokenizer such as `GPT1Tokenizer`: called on a string
            tensor `[N]` it returns an int `tf.RaggedTensor` `[N, None]`; it
            has `start_token_id`, `delimiter_token_id`, `classify_token_id`
            and `pad_token_id`.
        head: the input layout, one of `HEADS`: `"classification"`,
            `"entailment"`, `"similarity"`, `"multiple_choice"`.
        text_a: string `[B]`: the text, premise, first sentence, or
            multiple-choice context.
        text_b: string `[B]` (hypothesis, second sentence) or, for multiple
            choice, `[B, K]` (the choices). Unused for classification.
        question: multiple choice only, optional string `[B]`, written right
            after the context (no delimiter) and trimmed as its own segment.
        sequence_length: `T`.

    Returns:
        `{"token_ids", "padding_mask"}`, int32, `[B, T]`, `[B, 2, T]`
        (similarity) or `[B, K, T]` (multiple choice).

    Example:
    >>> x = head_inputs(GPT1Tokenizer(), "entailment",
    ...                 tf.constant(["a man sleeps ."]),
    ...                 tf.constant(["a person rests ."]), sequence_length=16)
    """
    check_head(head)
    num_specials = 2 if head == "classification" else 3
    if sequence_length < num_specials:
        raise ValueError(
            f"`sequence_length` must hold the {num_specials} special tokens "
            f"of {head!r}. Received: sequence_length={sequence_length}"
        )
    if head != "classification" and text_b is None:
        raise ValueError(f"The {head!r} head needs `text_b`.")
    if question is not None and head != "multiple_choice":
        raise ValueError("`question` is only used by 'multiple_choice'.")
    ids = {
        name: getattr(tokenizer, name)
        for name in ("start_token_id", "delimiter_token_id",
                     "classify_token_id", "pad_token_id")
    }

    def tokenize(*texts):
        # One tokenizer call for all fields (one trace, one bigger batch),
        # then split back into one ragged [n_i, None] per field.
        texts = [tf.reshape(tf.convert_to_tensor(t, tf.string), [-1])
                 for t in texts]
        out = tokenizer(tf.concat(texts, axis=0))
        if not isinstance(out, tf.RaggedTensor):
            raise TypeError(
                "The tokenizer must return a `tf.RaggedTensor` [batch, None]. "
                f"Received: {type(out).__name__}"
            )
        out, start, fields = tf.cast(out, tf.int32), 0, []
        for t in texts:
            end = start + tf.size(t)
            fields.append(out[start:end])
            start = end
        return fields

    def pack(parts):
        token_ids, padding_mask = pack_segments(parts, sequence_length, **ids)
        return {"token_ids": token_ids, "padding_mask": padding_mask}

    if head == "classification":
        (a,) = tokenize(text_a)
        return pack([[a]])
    if head == "entailment":
        a, b = tokenize(text_a, text_b)
        return pack([[a], [b]])
    if head == "similarity":
        a, b = tokenize(text_a, text_b)
        # Trim the pair once so both orders hold the same tokens.
        lengths = tf.stack([a.row_lengths(), b.row_lengths()], axis=-1)
        keep = trim_longest_first(
            tf.cast(lengths, tf.int32), sequence_length - 3
        )
        ab = _pack([[a], [b]], keep, sequence_length, **ids)
        ba = _pack([[b], [a]], keep[:, ::-1], sequence_length, **ids)
        return {
            "token_ids": tf.stack([ab[0], ba[0]], axis=1),
            "padding_mask": tf.stack([ab[1], ba[1]], axis=1),
        }
    # multiple_choice: (B, K) choices -> B*K sequences -> (B, K, T).
    text_b = tf.convert_to_tensor(text_b, tf.string)
    num_choices = text_b.shape[1] or tf.shape(text_b)[1]  # static if known
    fields = [text_a, text_b] + ([question] if question is not None else [])
    a, choices, *q = tokenize(*fields)

    def per_choice(segment):  # (B, None) -> (B*K, None)
        index = tf.repeat(tf.range(tf.shape(text_b)[0]), num_choices)
        return tf.gather(segment, index)

    x = pack([[per_choice(a)] + [per_choice(s) for s in q], [choices]])
    return {
        k: tf.reshape(v, [-1, num_choices, sequence_length])
        for k, v in x.items()
    }

