"""The finetune binary: its `main` on flags, resume on re-run, the csv flags, and its
edge as a user sees it (one `ERROR:` line for bad data, a held output directory)."""

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile

import keras
from absl import app
from absl import flags
from absl.testing import absltest
from absl.testing import flagsaver

from gpt1_keras.export.classifier_serving import ClassifierServingModule
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.run_lock import RunLock
from pipelines import finetune

FLAGS = flags.FLAGS
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run_binary(*args):
    env = dict(os.environ, PYTHONPATH=_REPO_ROOT, KERAS_BACKEND="tensorflow")
    return subprocess.run([sys.executable, "-m", "pipelines.finetune", *args], cwd=_REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=600)


def _write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _files(directory):
    """{relative path: mtime_ns} of every file under `directory`."""
    return {os.path.relpath(os.path.join(root, n), directory):
            os.stat(os.path.join(root, n)).st_mtime_ns
            for root, _, names in os.walk(directory) for n in names}


class FinetuneBinaryTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        FLAGS.mark_as_parsed()
        keras.utils.set_random_seed(0)
        # A directory of its own: test processes running side by side share the
        # default test tmpdir.
        cls.lm_path = os.path.join(
            tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir()), "lm.keras")
        GPT1CausalLM.from_architecture("gpt1_tiny").save(cls.lm_path)

    def _sst2(self, train_rows):
        data = self.create_tempdir().full_path
        _write(os.path.join(data, "train.tsv"), "sentence\tlabel\n" + train_rows)
        _write(os.path.join(data, "dev.tsv"), "sentence\tlabel\na good film\t1\n")
        return data

    def test_csv_main_labels_delimiter_max_examples_and_resume(self):
        data = self.create_tempdir().full_path
        rows = "".join(f"review {i}; more words {i};{('yes', 'no')[i % 2]}\n"
                       for i in range(6))
        _write(os.path.join(data, "train.csv"), "a;b;y\n" + rows)
        _write(os.path.join(data, "dev.csv"), "a;b;y\nreview x;words;no\nreview y;w;yes\n")
        out = self.create_tempdir().full_path
        stdout = io.StringIO()
        # --labels in a non-sorted order: class 0 is "yes".
        with flagsaver.flagsaver(task="csv", data_dir=data, output_dir=out,
                                 init_checkpoint=self.lm_path, text_columns=["a", "b"],
                                 label_column="y", labels=["yes", "no"], csv_delimiter=";",
                                 max_train_examples=3, batch_size=2, epochs=1,
                                 sequence_length=16):
            config = finetune.parse_flags()
            with contextlib.redirect_stdout(stdout):
                finetune.main([])
            first_files = _files(out)
            with open(os.path.join(out, "metrics.json")) as f:
                first = json.load(f)
            finetune.main([])  # the same flags again: resumes, nothing to train
        self.assertEqual((config.learning_rate, config.lm_coef, config.classifier_dropout,
                          config.warmup_fraction, config.csv_delimiter, config.labels),
                         (6.25e-5, 0.5, 0.1, 0.002, ";", ("yes", "no")))
        self.assertEqual((first["train_examples"], first["train_steps"]), (3, 2))
        self.assertEqual(first["labels"], ["yes", "no"])
        self.assertEqual(first["splits"]["dev"]["num_examples"], 2)
        self.assertRegex(stdout.getvalue(), r"csv dev: accuracy=[0-9.]+, num_examples=2")
        # The rerun restored the final checkpoint: no checkpoint written or removed,
        # the same history.
        checkpoints = {k: v for k, v in first_files.items() if k.startswith("checkpoints")}
        self.assertNotEmpty(checkpoints)
        self.assertEqual({k: v for k, v in _files(out).items() if k.startswith("checkpoints")},
                         checkpoints)
        with open(os.path.join(out, "history.jsonl")) as f:
            self.assertLen(f.read().splitlines(), 1)  # one epoch, not two
        with open(os.path.join(out, "metrics.json")) as f:
            self.assertEqual(json.load(f)["splits"], first["splits"])
        # The label names are on the model, and its export names its predictions.
        model = keras.saving.load_model(os.path.join(out, "model.keras"), compile=False)
        self.assertEqual(model.preprocessor.label_names, ("yes", "no"))
        self.assertEqual(ClassifierServingModule(model).label_names, ["yes", "no"])
        with open(os.path.join(out, "predictions", "dev.tsv")) as f:
            self.assertEqual({line.split("\t")[1] for line in f.read().splitlines()[1:]}
                             - {"yes", "no"}, set())

    def test_flag_errors_name_the_flag(self):
        cases = [
            (dict(task="sst2", data_dir="/d", output_dir="/o"), "--init_checkpoint"),
            (dict(task="sst2", data_dir="/d", output_dir="/o", no_pretraining=True,
                  batch_size=0), "--batch_size: must be >= 1"),
            (dict(task="csv", data_dir="/d", output_dir="/o", no_pretraining=True),
             "--text_columns"),
            (dict(task="sst2", data_dir="/d", no_pretraining=True), "--output_dir"),
            (dict(task="rte", data_dir="/d", output_dir="/o", no_pretraining=True,
                  validation_fraction=1.5), "--validation_fraction"),
        ]
        for values, message in cases:
            with self.subTest(message=message), flagsaver.flagsaver(**values):
                with self.assertRaisesRegex(app.UsageError, message):
                    finetune.parse_flags()
        with flagsaver.flagsaver(eval_only=True, output_dir="/o"):
            with self.assertRaisesRegex(app.UsageError, "--eval_data_dir"):
                finetune.main([])

    def test_architecture_flag(self):
        with flagsaver.flagsaver(task="sst2", data_dir="/d", output_dir="/o",
                                 no_pretraining=True, architecture="lstm"):
            self.assertEqual(finetune.parse_flags().architecture, "lstm")
        with flagsaver.flagsaver(), self.assertRaisesRegex(
                flags.IllegalFlagValueError, r"--architecture=rnn: .*<transformer\|lstm>"):
            FLAGS["architecture"].parse("rnn")
        # A checkpoint of the other architecture: one usage error naming the flag.
        data = self._sst2("a good film\t1\n")
        with flagsaver.flagsaver(task="sst2", data_dir=data,
                                 output_dir=self.create_tempdir().full_path,
                                 init_checkpoint=self.lm_path, architecture="lstm"):
            with self.assertRaisesRegex(app.UsageError,
                                        "--architecture: architecture='lstm' but .*'transformer'"):
                finetune.main([])

    def test_data_error_is_one_line(self):
        data = self._sst2("a good film\t1\na bad film\tmaybe\n")
        proc = _run_binary("--task=sst2", f"--data_dir={data}",
                           f"--output_dir={self.create_tempdir().full_path}",
                           "--no_pretraining", "--preset=gpt1_tiny")
        self.assertEqual(proc.returncode, 2, proc.stderr[-2000:])
        self.assertNotIn("Traceback", proc.stderr)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
        self.assertLen(errors, 1, proc.stderr[-2000:])
        self.assertStartsWith(errors[0], f"ERROR: {data}/train.tsv:3: ")  # file and line
        self.assertIn("'maybe'", errors[0])

    def test_second_run_on_a_held_output_dir_fails_at_once(self):
        data = self._sst2("a good film\t1\n")
        out = self.create_tempdir().full_path
        with RunLock(out, "finetune"):
            proc = _run_binary("--task=sst2", f"--data_dir={data}", f"--output_dir={out}",
                               f"--init_checkpoint={self.lm_path}")
        self.assertEqual(proc.returncode, 2, proc.stderr[-2000:])
        self.assertNotIn("Traceback", proc.stderr)
        self.assertIn("is in use by", proc.stderr)
        self.assertIn(str(os.getpid()), proc.stderr)
        self.assertIn(socket.gethostname(), proc.stderr)
        self.assertEqual(sorted(os.listdir(out)), [".gpt1_keras.lock"])  # nothing written


if __name__ == "__main__":
    absltest.main()
