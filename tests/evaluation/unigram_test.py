"""Tests for gpt1_keras.evaluation.unigram against a direct per-token computation."""

import math

import numpy as np
from absl.testing import absltest

from gpt1_keras.evaluation.unigram import unigram_perplexity


class UnigramTest(absltest.TestCase):

    def test_matches_the_mean_log_probability_of_each_token(self):
        rng = np.random.default_rng(0)
        vocabulary = 50
        train_tokens = rng.integers(0, 30, 1000)  # Ids 30-49 unseen: add-one gives them mass.
        valid_tokens = rng.integers(0, vocabulary, 200)
        total = len(train_tokens) + vocabulary
        log_probs = [math.log((list(train_tokens).count(t) + 1) / total) for t in valid_tokens]
        expected = math.exp(-sum(log_probs) / len(valid_tokens))
        got = unigram_perplexity(np.bincount(train_tokens, minlength=vocabulary),
                                 np.bincount(valid_tokens, minlength=vocabulary))
        self.assertAlmostEqual(got, expected, places=9)

    def test_bad_counts(self):
        with self.assertRaisesRegex(ValueError, "same vocabulary"):
            unigram_perplexity(np.ones(3), np.ones(4))
        with self.assertRaisesRegex(ValueError, "no validation tokens"):
            unigram_perplexity(np.ones(3), np.zeros(3))


if __name__ == "__main__":
    absltest.main()
