"""Task metrics against scikit-learn and SciPy."""

import numpy as np
from absl.testing import absltest
from scipy import stats
from sklearn import metrics as sk

from gpt1_keras.tasks import metrics


class MetricsTest(absltest.TestCase):
    def test_classification_metrics_match_sklearn(self):
        rng = np.random.default_rng(0)
        for trial in range(20):
            n = int(rng.integers(1, 60))
            k = 2 if trial % 2 else 3
            y = rng.integers(0, k, n)
            p = np.where(rng.random(n) < 0.7, y, rng.integers(0, k, n))
            self.assertAlmostEqual(metrics.accuracy(y, p), sk.accuracy_score(y, p))
            self.assertAlmostEqual(metrics.matthews_corrcoef(y, p),
                                   sk.matthews_corrcoef(y, p), places=10)
            if k == 2:
                self.assertAlmostEqual(metrics.f1(y, p),
                                       sk.f1_score(y, p, zero_division=0.0), places=10)

    def test_degenerate_cases(self):
        self.assertEqual(metrics.matthews_corrcoef([1, 1, 1], [1, 1, 1]),
                         sk.matthews_corrcoef([1, 1, 1], [1, 1, 1]))
        self.assertEqual(metrics.f1([0, 0], [0, 0]), 0.0)
        self.assertEqual(metrics.pearson([1.0, 1.0], [0.0, 2.0]), 0.0)
        with self.assertRaisesRegex(ValueError, "0 examples"):
            metrics.accuracy([], [])
        with self.assertRaisesRegex(ValueError, r"\(3,\) and \(2,\)"):
            metrics.accuracy([1, 2, 3], [1, 2])

    def test_correlations_match_scipy(self):
        rng = np.random.default_rng(1)
        for _ in range(10):
            x = rng.normal(size=40)
            y = x + rng.normal(size=40)
            y_ties = np.round(y)  # ties use average ranks
            self.assertAlmostEqual(metrics.pearson(x, y), stats.pearsonr(x, y)[0], places=10)
            self.assertAlmostEqual(metrics.spearman(x, y_ties),
                                   stats.spearmanr(x, y_ties)[0], places=10)
            np.testing.assert_allclose(metrics._rank(y_ties), stats.rankdata(y_ties))

    def test_compute_metrics(self):
        out = metrics.compute_metrics(("f1", "accuracy"), [1, 0, 1, 1], [1, 1, 1, 0])
        self.assertEqual(set(out), {"f1", "accuracy"})
        self.assertAlmostEqual(out["accuracy"], 0.5)  # 2 of 4
        self.assertAlmostEqual(out["f1"], 2 / 3)  # 2 true positives, 1 false each way
        with self.assertRaisesRegex(ValueError, "Unknown metrics \\['bleu'\\]"):
            metrics.compute_metrics(["bleu"], [1], [1])


if __name__ == "__main__":
    absltest.main()
