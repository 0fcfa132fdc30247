"""Prediction files (GLUE submission format) and `metrics.json`."""

import json
import os


def write_predictions(path, ids, predictions):
    """Writes GLUE's submission format: a header `index\\tprediction`, then one row
    per example (`predictions` already formatted, e.g. by
    `TaskSpec.format_prediction`). Written to a temporary file, then renamed."""
    if len(ids) != len(predictions):
        raise ValueError(f"{len(ids)} ids but {len(predictions)} predictions for {path}.")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        f.write("index\tprediction\n")
        for i, p in zip(ids, predictions):
            f.write(f"{i}\t{p}\n")
    os.replace(partial, path)


def write_metrics(path, metrics):
    """Writes `metrics` (JSON-able) to `path` atomically, sorted and indented."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(partial, path)
