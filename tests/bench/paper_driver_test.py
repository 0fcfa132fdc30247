"""End to end: `bench/paper/reproduce.py`, the one command, tiny: BPE -> transformer LM
-> LSTM LM (each scoring the zero-shot probes at its validation passes) -> Table 5 ->
Figure 2 -> the report, on a 20 kB corpus and a few examples.

Runs the driver as a user would (a subprocess), twice: the second call must reuse
every run (no `metrics.json` rewritten). Checks that both LMs share the BPE the
driver learned, that the report's cells are the runs' own numbers (Figure 2 right
from the pretraining histories), that both PNGs are images, and that bad input (a
malformed line, a missing training file) is one `ERROR:` line naming the file.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest

from tests import shared_data

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_DRIVER = os.path.join(_REPO, "bench", "paper", "reproduce.py")
_SIZES = ["--tasks=sst2,story_cloze", "--pair_task=rte", "--layers=0",
          "--train_examples=8", "--validation_examples=8", "--zero_shot_examples=8",
          "--eval_examples=16", "--sequence_length=32", "--epochs=1", "--batch_size=4"]
# The `mini` recipe shrunk: a 200-token BPE, gpt1_tiny (and lstm_tiny), 2 updates of
# 2 x 32 tokens, a validation pass (and the zero-shot probes) after each.
_PRETRAIN = ("--pretrain_overrides=preset=gpt1_tiny,bpe_vocabulary_size=200,train_steps=2,"
             "batch_size=2,sequence_length=32,warmup_steps=1,steps_per_epoch=1,"
             "checkpoint_every=1,eval_steps=1,num_samples=0,validation_books=0,"
             "validation_fraction=0.1,jit_compile=false")


def _run(*args):
    env = dict(os.environ, PYTHONPATH=_REPO, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, _DRIVER, *args], env=env, capture_output=True,
                          text=True)


def _metrics_files(root):
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, files in os.walk(root) for f in files if f == "metrics.json"}


class PaperDriverTest(absltest.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp(prefix="paper_driver_test_")
        cls.data = shared_data.data_dir()
        corpus = os.path.join(cls.root, "corpus.txt")
        with open(shared_data.path("tinyshakespeare.txt"), encoding="utf-8") as f:
            text = f.read(20000)
        with open(corpus, "w", encoding="utf-8") as f:
            f.write(text)
        cls.work = os.path.join(cls.root, "work")
        cls.lm = os.path.join(cls.work, "pretrain", "transformer")
        cls.lstm = os.path.join(cls.work, "pretrain", "lstm")
        cls.doc = os.path.join(cls.root, "doc", "reproduction.md")
        # Other labelled splits to score every run on: the driver's own SST-2 split
        # (so the cells must equal the validation scores) and Story Cloze's dev fifth.
        cls.other = os.path.join(cls.root, "other")
        os.makedirs(cls.other)
        os.symlink(os.path.join(cls.work, "data", "sst2"), os.path.join(cls.other, "sst2"))
        os.symlink(os.path.join(cls.data, "story_cloze"),
                   os.path.join(cls.other, "story_cloze"))
        cls.args = [f"--corpus={corpus}", _PRETRAIN, f"--work_dir={cls.work}",
                    f"--data_dir={cls.data}", f"--output={cls.doc}",
                    f"--score_on={cls.other}", *_SIZES]
        cls.first = _run(*cls.args)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    def _metrics(self, run):
        with open(os.path.join(self.work, "runs", run, "metrics.json")) as f:
            return json.load(f)

    def test_report_cells_are_the_runs_numbers(self):
        self.assertEqual(self.first.returncode, 0, self.first.stderr[-3000:])
        with open(self.doc, encoding="utf-8") as f:
            doc = f.read()
        for row, label in (("full", "transformer w/ aux LM (full)"),
                           ("scratch", "w/o pre-training"), ("no_aux", "w/o aux LM"),
                           ("lstm", "LSTM w/ aux LM")):
            line = next(l for l in doc.splitlines() if l.startswith(f"| {label} |"))
            cells = [c.strip() for c in line.strip("|").split("|")]
            sst2 = self._metrics(f"{row}/sst2")["splits"]["dev"]["accuracy"]
            story = self._metrics(f"{row}/story_cloze")["splits"]["validation"]["accuracy"]
            self.assertEqual(cells[1], f"{100 * sst2:.1f}")
            self.assertEqual(cells[2], f"{100 * story:.1f}")
            self.assertEqual(cells[3], f"{100 * (sst2 + story) / 2:.1f}")
        # The LSTM row fine-tuned the LSTM LM: its saved classifier holds an LSTM.
        with open(os.path.join(self.work, "runs", "lstm", "sst2", "metrics.json")) as f:
            self.assertEqual(json.load(f)["config"]["init_checkpoint"],
                             os.path.join(self.lstm, "model.keras"))
        # --score_on: the reloaded full run on the same SST-2 dev file scores the same.
        scored = doc[doc.index("scored on `--score_on="):]
        line = next(l for l in scored.splitlines()
                    if l.startswith("| transformer w/ aux LM (full) |"))
        sst2 = self._metrics("full/sst2")["splits"]["dev"]["accuracy"]
        self.assertEqual(line.split("|")[2].strip(), f"{100 * sst2:.1f} (dev)")
        # Figure 2 left: layers 0 (its own run) and 2 (the full run), validation and
        # training (the run scored on its training subset).
        rte0 = self._metrics("layers0/rte")["splits"]["dev"]["accuracy"]
        with open(os.path.join(self.work, "runs", "full", "rte", "eval_metrics.json")) as f:
            rte2_train = json.load(f)["splits"]["dev"]
        self.assertEqual(rte2_train["num_examples"], 8)
        self.assertRegex(doc, re.escape(f"| rte (acc) | 0 | {100 * rte0:.1f} |"))
        self.assertRegex(doc, re.escape(f"| rte (acc) | 2 |") + r" [\d.]+ \| " +
                         re.escape(f"{100 * rte2_train['accuracy']:.1f} |"))
        # Figure 2 right: one row per validation pass (updates 1 and 2) of each LM, the
        # probes' scores from its pretraining history.
        for arch, run in (("transformer", self.lm), ("lstm", self.lstm)):
            with open(os.path.join(run, "metrics.json")) as f:
                history = json.load(f)["history"]
            self.assertEqual([e["step"] for e in history], [1, 2])
            for entry in history:
                self.assertRegex(doc, rf"\| {arch} \| {entry['step']} \| .*\| " + re.escape(
                    f"{100 * entry['zero_shot_winograd']:.1f}") + r" \(")
        # Both LMs read text with the BPE the driver learned (203 ids), saved with them.
        for run in (self.lm, self.lstm):
            with open(os.path.join(run, "metrics.json")) as f:
                self.assertEqual(json.load(f)["vocabulary_size"], 203)
        with open(os.path.join(self.work, "stages.json")) as f:
            stages = json.load(f)
        self.assertIn("pretraining: transformer LM (BPE first)", stages["stages"])
        self.assertIn("| pretraining: lstm LM |", doc)
        self.assertIn("GFLOP/s", doc)
        # The pretrained LMs' table: each LM's own pretraining metrics.json.
        for arch, run in (("transformer", self.lm), ("lstm", self.lstm)):
            with open(os.path.join(run, "metrics.json")) as f:
                pretrained = json.load(f)
            line = next(l for l in doc.splitlines() if l.startswith(f"| {arch} | "))
            cells = [c.strip() for c in line.strip("|").split("|")]
            self.assertEqual(cells[2], "2")  # updates
            self.assertEqual(cells[3], f"{2 * 2 * 32 / 1e6:.2f}M")  # 2 x batch 2 x 32
            self.assertEqual(cells[4], f"{pretrained['val_perplexity']:.1f}")
            self.assertEqual(cells[5], f"{pretrained['unigram_val_perplexity']:.1f}")
        for png in ("reproduction_figure2_left.png", "reproduction_figure2_right.png"):
            with open(os.path.join(os.path.dirname(self.doc), png), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_second_run_reuses_every_run(self):
        self.assertEqual(self.first.returncode, 0, self.first.stderr[-3000:])
        before = _metrics_files(self.work)
        # 2 LMs; 4 rows x 2 tasks and layers 0 of 2 tasks fine-tuned.
        self.assertGreaterEqual(len(before), 2 + 10)
        scores = {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
                  for d, _, files in os.walk(self.work) for f in files
                  if d.endswith("driver_scores")}
        # 4 rows x 2 tasks on --score_on; layers 0 and 2 of sst2 and rte on their
        # training subsets.
        self.assertLen(scores, 8 + 4)
        second = _run(*self.args)
        self.assertEqual(second.returncode, 0, second.stderr[-3000:])
        self.assertIn("0 runs trained now", second.stdout)
        self.assertEqual(_metrics_files(self.work), before)
        self.assertEqual({p: os.stat(p).st_mtime_ns for p in scores}, scores)

    def test_bad_input_is_one_line_naming_the_file(self):
        bad = os.path.join(self.root, "bad_data")
        shutil.copytree(self.data, bad, ignore=shutil.ignore_patterns("books*"))
        path = os.path.join(bad, "glue", "RTE", "train.tsv")
        with open(path, "a", encoding="utf-8") as f:
            f.write("only\ttwo\n")
        with open(path, encoding="utf-8") as f:
            line = len(f.read().splitlines())
        args = [f"--transformer_lm={self.lm}", f"--lstm_lm={self.lstm}",
                f"--work_dir={self.root}/bad_work",
                f"--data_dir={bad}", f"--output={self.root}/bad.md", *_SIZES]
        result = _run(*args)
        self.assertEqual(result.returncode, 2)
        errors = [l for l in result.stderr.splitlines() if l.startswith("ERROR:")]
        self.assertLen(errors, 1, result.stderr[-2000:])
        self.assertIn(f"{path}:{line}", errors[0])
        self.assertNotIn("Traceback", result.stderr)

        os.remove(path)
        result = _run(*args)
        self.assertEqual(result.returncode, 2)
        self.assertIn(path, result.stderr)
        self.assertNotIn("Traceback", result.stderr)


if __name__ == "__main__":
    absltest.main()
