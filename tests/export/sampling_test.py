"""sample_next_tokens: greedy, temperature, top-k, top-p and per-row seeds."""

import numpy as np
import tensorflow as tf
from absl.testing import absltest

from gpt1_keras.export.sampling import sample_next_tokens

# Probabilities 0.5, 0.25, 0.15, 0.1 over 4 tokens (ids in that order: 2, 0, 3, 1).
PROBS = np.array([0.25, 0.1, 0.5, 0.15])
LOGITS = np.log(PROBS).astype("float32")


def _sample(logits, temperature=1.0, top_k=0, top_p=1.0, seeds=(0,), step=0):
    logits = np.asarray(logits, "float32")
    if logits.ndim == 1:
        logits = np.tile(logits, (len(seeds), 1))
    n = logits.shape[0]
    return sample_next_tokens(
        tf.constant(logits), tf.fill([n], float(temperature)), tf.fill([n], top_k),
        tf.fill([n], float(top_p)), tf.constant(seeds, tf.int64), step).numpy()


class SampleNextTokensTest(absltest.TestCase):
    def test_greedy_for_temperature_zero_negative_or_nan(self):
        logits = [[0.0, 3.0, 1.0], [5.0, 3.0, 1.0]]
        for temperature in (0.0, -1.0, float("nan")):
            np.testing.assert_array_equal(
                _sample(logits, temperature, seeds=(0, 1)), [1, 0])

    def test_top_k_one_and_top_p_zero_are_greedy(self):
        seeds = tuple(range(50))
        self.assertTrue((_sample(LOGITS, top_k=1, seeds=seeds) == 2).all())
        self.assertTrue((_sample(LOGITS, top_p=0.0, seeds=seeds) == 2).all())

    def test_frequencies_follow_the_distribution(self):
        draws = _sample(LOGITS, seeds=tuple(range(4000)))
        frequencies = np.bincount(draws, minlength=4) / len(draws)
        np.testing.assert_allclose(frequencies, PROBS, atol=0.03)

    def test_top_k_keeps_the_k_most_likely(self):
        draws = _sample(LOGITS, top_k=2, seeds=tuple(range(2000)))
        self.assertEqual(set(draws.tolist()), {2, 0})
        # Renormalised: 0.5 / 0.75 and 0.25 / 0.75.
        self.assertAlmostEqual(np.mean(draws == 2), 2 / 3, delta=0.04)

    def test_top_p_keeps_the_smallest_set_reaching_p(self):
        # 0.5 < 0.7 <= 0.5 + 0.25: tokens 2 and 0.
        draws = _sample(LOGITS, top_p=0.7, seeds=tuple(range(2000)))
        self.assertEqual(set(draws.tolist()), {2, 0})
        # 0.75 < 0.85 <= 0.9: the third token joins; never the fourth. (No p sits on a
        # cumulative sum itself: whether 0.5 + 0.25 + 0.15 reaches 0.9 in float32
        # depends on the CPU's summation order.)
        draws = _sample(LOGITS, top_p=0.85, seeds=tuple(range(2000)))
        self.assertEqual(set(draws.tolist()), {2, 0, 3})
        # 0.9 < 0.95: all four.
        draws = _sample(LOGITS, top_p=0.95, seeds=tuple(range(2000)))
        self.assertEqual(set(draws.tolist()), {2, 0, 3, 1})

    def test_temperature_sharpens_and_flattens(self):
        seeds = tuple(range(3000))
        cold = np.mean(_sample(LOGITS, temperature=0.25, seeds=seeds) == 2)
        hot = np.mean(_sample(LOGITS, temperature=4.0, seeds=seeds) == 2)
        self.assertGreater(cold, 0.85)  # 0.5^4 / sum p^4 = 0.93
        self.assertLess(hot, 0.35)  # 0.5^.25 / sum p^.25 = 0.30

    def test_a_row_depends_on_its_own_seed_and_step_only(self):
        rng = np.random.default_rng(0)
        logits = rng.normal(size=(3, 1000)).astype("float32")
        batch = _sample(logits, seeds=(7, 8, 9), step=4)
        alone = _sample(logits[1:2], seeds=(8,), step=4)
        self.assertEqual(batch[1], alone[0])
        self.assertEqual(_sample(logits, seeds=(7, 8, 9), step=4).tolist(), batch.tolist())
        draws = {tuple(_sample(logits, seeds=(7, 8, 9), step=s)) for s in range(10)}
        self.assertGreater(len(draws), 5)

    def test_mixed_rows_and_out_of_range_settings(self):
        logits = np.tile(LOGITS, (3, 1))
        out = sample_next_tokens(
            tf.constant(logits), tf.constant([0.0, 1.0, 1.0]), tf.constant([0, 10**6, -3]),
            tf.constant([1.0, 5.0, -1.0]), tf.constant([1, 2, 3], tf.int64), 0).numpy()
        self.assertEqual(out[0], 2)  # greedy row
        self.assertEqual(out[2], 2)  # top_p <= 0: the most likely token
        # top_k past the vocabulary keeps all tokens: over many seeds every one is drawn
        # (a clamp to fewer tokens, or to greedy, would miss some).
        seeds = tf.range(400, dtype=tf.int64)
        drawn = sample_next_tokens(
            tf.constant(np.tile(LOGITS, (400, 1))), tf.ones([400]),
            tf.fill([400], 10**6), tf.fill([400], 5.0), seeds, 0).numpy()
        self.assertEqual(set(drawn.tolist()), set(range(len(PROBS))))

    def test_empty_batch(self):
        out = sample_next_tokens(tf.zeros([0, 5]), tf.zeros([0]), tf.zeros([0], tf.int32),
                                 tf.zeros([0]), tf.zeros([0], tf.int64), 0)
        self.assertEqual(out.shape, (0,))


if __name__ == "__main__":
    absltest.main()
