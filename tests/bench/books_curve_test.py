"""`bench/pretrain/books_curve.py` on real pretraining artifacts (two tiny runs made here).

The report must quote each run's own numbers: every validation's perplexity is
`exp(val_loss)` of its `history.jsonl` entry, the unigram baseline is the run's
`metrics.json`, an unfinished run (no `metrics.json` yet) is reported as such, and
the plot is a PNG.
"""

import json
import math
import os
import subprocess
import sys

from absl.testing import absltest

from tests import test_case

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SCRIPT = os.path.join(_REPO, "bench", "pretrain", "books_curve.py")


class BooksCurveTest(test_case.TestCase):

    def test_report_quotes_the_runs_artifacts(self):
        from gpt1_keras.training.pretraining import pretrain

        runs = []
        for architecture, preset in (("transformer", "gpt1_tiny"), ("lstm", "lstm_tiny")):
            config = test_case.tiny_pretrain_config(
                self, architecture=architecture, preset=preset, train_steps=6,
                num_samples=0)
            pretrain(config)
            runs.append(config.model_dir)
        os.remove(os.path.join(runs[1], "metrics.json"))  # As while the run is going.
        output = os.path.join(self.create_tempdir().full_path, "BOOKS.md")

        subprocess.run([sys.executable, _SCRIPT, f"--runs={','.join(runs)}",
                        f"--output={output}", "--peak_gflops=100"],
                       check=True, env=dict(os.environ, PYTHONPATH=_REPO),
                       capture_output=True)

        with open(output) as f:
            report = f.read()
        with open(os.path.join(runs[0], "metrics.json")) as f:
            metrics = json.load(f)
        self.assertIn(f"**{metrics['unigram_val_perplexity']:.1f}**", report)
        self.assertIn(f"**{metrics['val_perplexity']:.1f}**", report)
        self.assertIn("**not finished**: last validation at update 6 of 6", report)
        for run in runs:
            with open(os.path.join(run, "history.jsonl")) as f:
                history = [json.loads(line) for line in f if line.strip()]
            self.assertLen(history, 2)
            for entry in history:
                self.assertIn(f"| {entry['step']} | ", report)
                self.assertIn(f"| {math.exp(entry['val_loss']):.1f} | "
                              f"{entry['tokens_per_second']:.0f} |", report)
        with open(os.path.join(os.path.dirname(output), "books_curve.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
    absltest.main()
