"""The log-probability of each actual next token under a language model's logits."""

from keras import ops


def next_token_log_probs(logits, token_ids, padding_mask=None):
    """`log p(token_ids[t + 1] | token_ids[:t + 1])` for every position `t < T - 1`.

    The one computation behind `GPT1CausalLM.score` and the classifier's
    auxiliary language-model loss. The softmax runs in float32 whatever the
    logits' dtype (mixed precision).

    Args:
        logits: `(B, T, V)` next-token logits: row `t` predicts token `t + 1`.
        token_ids: int `(B, T)` ids the logits were computed from.
        padding_mask: optional `(B, T)`, 1 for real tokens. The log-probability
            of a padded target is set to 0.

    Returns:
        A float32 `(B, T - 1)` tensor whose entry `t` scores `token_ids[:, t + 1]`.
    """
    # (B, T-1, V): the last position predicts past the end and is dropped.
    log_probs = ops.log_softmax(ops.cast(logits[:, :-1, :], "float32"), axis=-1)
    targets = ops.expand_dims(ops.cast(token_ids[:, 1:], "int32"), -1)  # (B, T-1, 1)
    # (B, T-1, V) -> (B, T-1): the log-prob of each actual next token.
    picked = ops.squeeze(ops.take_along_axis(log_probs, targets, axis=-1), -1)
    if padding_mask is not None:
        picked = picked * ops.cast(padding_mask[:, 1:], "float32")
    return picked
