"""Task metrics in NumPy: accuracy, F1, Matthews correlation, Pearson, Spearman.

Each takes the gold labels and the predictions as 1-D sequences of equal length
and returns a Python float. Degenerate inputs (a constant column) give 0.0 for
the correlations, as scikit-learn's `matthews_corrcoef` does.
"""

import numpy as np


def _pair(labels, predictions):
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise ValueError(
            "labels and predictions must be 1-D of the same length. Received shapes "
            f"{labels.shape} and {predictions.shape}."
        )
    if labels.size == 0:
        raise ValueError("Cannot compute a metric on 0 examples.")
    return labels, predictions


def accuracy(labels, predictions):
    labels, predictions = _pair(labels, predictions)
    return float(np.mean(labels == predictions))


def f1(labels, predictions, positive=1):
    """Binary F1 of the class `positive` (MRPC, QQP)."""
    labels, predictions = _pair(labels, predictions)
    tp = np.sum((predictions == positive) & (labels == positive))
    fp = np.sum((predictions == positive) & (labels != positive))
    fn = np.sum((predictions != positive) & (labels == positive))
    denominator = 2 * tp + fp + fn
    return float(2 * tp / denominator) if denominator else 0.0


def matthews_corrcoef(labels, predictions):
    """Matthews correlation (multi-class form, Gorodkin 2004) (CoLA)."""
    labels, predictions = _pair(labels, predictions)
    classes = np.union1d(labels, predictions)
    index = {c: i for i, c in enumerate(classes)}
    confusion = np.zeros((len(classes), len(classes)), np.float64)
    np.add.at(confusion, ([index[v] for v in labels], [index[v] for v in predictions]), 1)
    t = confusion.sum(axis=1)  # true counts per class
    p = confusion.sum(axis=0)  # predicted counts per class
    c = np.trace(confusion)
    s = confusion.sum()
    numerator = c * s - t @ p
    denominator = np.sqrt(s**2 - p @ p) * np.sqrt(s**2 - t @ t)
    return float(numerator / denominator) if denominator else 0.0


def pearson(labels, predictions):
    """Pearson's r (STS-B)."""
    x, y = (a.astype(np.float64) for a in _pair(labels, predictions))
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / denominator) if denominator else 0.0


def _rank(values):
    """Ranks 1..n, ties given their average rank (as `scipy.stats.rankdata`)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start index of each run of equal values.
    new_run = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]])
    run_id = np.cumsum(new_run) - 1
    starts = np.flatnonzero(new_run)
    ends = np.append(starts[1:], len(values))
    average = (starts + ends + 1) / 2.0  # mean of 1-based ranks start+1..end
    ranks = np.empty(len(values), np.float64)
    ranks[order] = average[run_id]
    return ranks


def spearman(labels, predictions):
    """Spearman's rho: Pearson's r of the (tie-averaged) ranks (STS-B)."""
    x, y = _pair(labels, predictions)
    return pearson(_rank(x.astype(np.float64)), _rank(y.astype(np.float64)))


METRICS = {
    "accuracy": accuracy,
    "f1": f1,
    "matthews_corrcoef": matthews_corrcoef,
    "pearson": pearson,
    "spearman": spearman,
}


def compute_metrics(names, labels, predictions):
    """`{name: value}` for each metric name in `names` (keys of `METRICS`)."""
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metrics {unknown}; known: {sorted(METRICS)}.")
    return {name: METRICS[name](labels, predictions) for name in names}
