"""The unigram baseline of a pretraining run: what a model that ignores context scores.

A language model that has learnt nothing but token frequencies reaches the add-one
unigram perplexity of the validation text; a pretraining run is making use of context
only once its validation perplexity is below it.
"""

import numpy as np


def unigram_perplexity(train_counts, valid_counts):
    """Perplexity on the validation tokens of the add-one unigram model of the training set.

    Args:
        train_counts: int array `[vocabulary_size]`, the training tokens per id.
        valid_counts: int array `[vocabulary_size]`, the validation tokens per id.

    Returns:
        `exp(-sum_v valid[v] * log p[v] / sum_v valid[v])` with
        `p[v] = (train[v] + 1) / (sum(train) + vocabulary_size)`.

    Example:
    >>> unigram_perplexity(np.array([3, 1]), np.array([1, 1]))  # p = (2/3, 1/3)
    2.1213...
    """
    train_counts = np.asarray(train_counts, np.float64)
    valid_counts = np.asarray(valid_counts, np.float64)
    if train_counts.shape != valid_counts.shape or train_counts.ndim != 1:
        raise ValueError(
            "`train_counts` and `valid_counts` must be 1-D over the same vocabulary. "
            f"Received shapes {train_counts.shape} and {valid_counts.shape}"
        )
    if valid_counts.sum() <= 0:
        raise ValueError("`valid_counts` is empty: no validation tokens to score.")
    probs = (train_counts + 1) / (train_counts.sum() + len(train_counts))
    return float(np.exp(-(valid_counts * np.log(probs)).sum() / valid_counts.sum()))
