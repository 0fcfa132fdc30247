"""Next-token sampling in TensorFlow ops, one setting per row (for SavedModel serving).

TensorFlow-only module. The `next_token` of the `generate` signature of an
exported language model (`gpt1_keras.export.causal_lm_serving`), which runs
`GPT1CausalLM.decode` (the cached loop of the Keras `generate`); graph-safe and
shape-polymorphic. Each row's settings are a keras-hub sampler written as
tensors: temperature <= 0 is `GreedySampler`, `top_k` is `TopKSampler`'s `k`,
`top_p` is `TopPSampler`'s `p` (keras-hub takes one sampler per batch; a
SavedModel request carries one per row).
"""

import tensorflow as tf


@tf.autograph.experimental.do_not_convert
def sample_next_tokens(logits, temperature, top_k, top_p, seed, step):
    """Picks one next token per row: greedy, or sampled with temperature/top-k/top-p.

    Per row `i`:

    1. `temperature[i] <= 0` (or NaN): greedy, `argmax(logits[i])` (the lowest id
       on ties). Otherwise the logits are divided by `temperature[i]`.
    2. top-k: only the `top_k[i]` highest logits stay (`top_k[i] <= 0` or above the
       vocabulary: all). Ties with the k-th logit stay too.
    3. top-p (nucleus), on what top-k kept: the smallest set of highest tokens whose
       probability reaches `top_p[i]` (always at least the most likely token;
       `top_p[i] >= 1`: all of them; `top_p[i] <= 0`: only the most likely one).
    4. One draw from the renormalised distribution with the stateless seed
       `(seed[i], step[i])`: a row's draw depends only on its own logits, seed and
       step, not on the other rows of the batch.

    Args:
        logits: float `[B, V]`.
        temperature: float32 `[B]`.
        top_k: int32 `[B]`.
        top_p: float32 `[B]`.
        seed: int64 `[B]`.
        step: int scalar or `[B]`, each row's decoding step (its new-token
            count so far, so each step draws anew).

    Returns:
        int32 `[B]` token ids.

    Example:
    >>> sample_next_tokens(tf.constant([[0.0, 3.0, 1.0]]), tf.constant([0.0]),
    ...                    tf.constant([0]), tf.constant([1.0]),
    ...                    tf.constant([7], tf.int64), 0)
    [1]
    """
    logits = tf.cast(logits, tf.float32)
    vocab = tf.shape(logits)[1]
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    sampled = temperature > 0  # NaN compares False: greedy.

    def draw():
        scaled = logits / tf.where(sampled, temperature, 1.0)[:, None]
        ranked = tf.sort(scaled, axis=-1, direction="DESCENDING")  # (B, V)
        k = tf.where((top_k > 0) & (top_k < vocab), top_k, vocab)  # (B,), in [1, V]
        in_top_k = tf.range(vocab)[None, :] < k[:, None]  # (B, V), over ranks
        # Nucleus over the top-k ranks: keep rank r while the probability of the
        # ranks before it is below top_p; rank 0 always stays.
        probs = tf.nn.softmax(tf.where(in_top_k, ranked, -float("inf")), axis=-1)
        before = tf.cumsum(probs, axis=-1, exclusive=True)
        keep = in_top_k & ((before < top_p[:, None]) | (tf.range(vocab) == 0)[None, :])
        kept = tf.reduce_sum(tf.cast(keep, tf.int32), axis=-1)  # (B,), >= 1
        threshold = tf.gather(ranked, kept - 1, batch_dims=1)  # (B,): lowest kept logit
        filtered = tf.where(scaled >= threshold[:, None], scaled, -float("inf"))

        def one_row(args):
            row, row_seed, row_step = args
            pair = tf.stack([row_seed, row_step])
            return tf.random.stateless_categorical(
                row[None, :], 1, seed=pair, dtype=tf.int32)[0, 0]

        seeds = tf.cast(seed, tf.int64)
        steps = tf.broadcast_to(tf.cast(step, tf.int64), tf.shape(seeds))
        drawn = tf.map_fn(one_row, (filtered, seeds, steps), fn_output_signature=tf.int32)
        return tf.where(sampled, drawn, greedy)

    # Skip the sort and the draws when every row is greedy.
    return tf.cond(tf.reduce_any(sampled), draw, lambda: greedy)
