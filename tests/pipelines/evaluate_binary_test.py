"""The evaluate binary as a user runs it: a zero-shot run end to end, and bad inputs."""

import json
import os
import subprocess
import sys

import keras
from absl.testing import absltest

from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.models import GPT1Classifier
from gpt1_keras.saving import atomic_save_model

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([_REPO_ROOT, *sys.path]),
            KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
_SST2_DEV = "sentence\tlabel\na gorgeous , witty film .\t1\nthe plot is a mess .\t0\n"


def _evaluate(*args):
    return subprocess.run(
        [sys.executable, "-m", "pipelines.evaluate", *args], cwd=_REPO_ROOT, env=_ENV,
        capture_output=True, text=True, timeout=900)


class EvaluateBinaryTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tmp = absltest.get_default_test_tmpdir()
        keras.utils.set_random_seed(0)
        cls.lm = os.path.join(tmp, "lm.keras")
        atomic_save_model(GPT1CausalLM.from_preset("gpt1_tiny", num_layers=1), cls.lm)
        cls.classifier = os.path.join(tmp, "classifier.keras")
        atomic_save_model(GPT1Classifier(
            GPT1CausalLM.from_preset("gpt1_tiny", num_layers=1).backbone, num_classes=2),
            cls.classifier)
        cls.data = os.path.join(tmp, "SST-2")
        os.makedirs(cls.data, exist_ok=True)
        with open(os.path.join(cls.data, "dev.tsv"), "w") as f:
            f.write(_SST2_DEV)

    def test_sst2_zero_shot_through_the_binary(self):
        out = self.create_tempdir().full_path
        result = _evaluate("--zero_shot=sst2", f"--data_dir={self.data}",
                           f"--checkpoint={self.lm}", f"--output_dir={out}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(out, "metrics.json")) as f:
            metrics = json.load(f)
        self.assertEqual(metrics["num_examples"], 2)
        self.assertEqual(metrics["config"]["checkpoint"], self.lm)
        with open(os.path.join(out, "predictions_sst2_dev.tsv")) as f:
            rows = [line.split("\t") for line in f.read().splitlines()[1:]]
        predictions = [int(row[1]) for row in rows]
        labels = [1, 0]
        accuracy = sum(p == y for p, y in zip(predictions, labels)) / 2
        self.assertAlmostEqual(metrics["accuracy"], accuracy)
        self.assertIn(f"accuracy={metrics['accuracy']}", result.stdout)

    def test_bad_inputs_are_one_line(self):
        tmp = self.create_tempdir()
        random_keras = tmp.create_file("random.keras", content="\x00\x01 not a zip").full_path
        a_file = tmp.create_file("notes.txt").full_path
        out = tmp.mkdir("out").full_path
        common = [f"--data_dir={self.data}", f"--output_dir={out}"]
        cases = [
            (["--zero_shot=sst2", f"--checkpoint={random_keras}", *common],
             f"--checkpoint {random_keras} exists but is not a valid .keras archive"),
            (["--zero_shot=sst2", f"--checkpoint={self.classifier}", *common],
             "holds a GPT1Classifier; expected a GPT1CausalLM"),
            (["--zero_shot=sst2", f"--checkpoint={tmp.full_path}/none.keras", *common],
             f"--checkpoint={tmp.full_path}/none.keras does not exist"),
            (["--zero_shot=sst2", f"--checkpoint={self.lm}", f"--data_dir={a_file}",
              f"--output_dir={out}"], f"--data_dir={a_file} is not a directory"),
            (["--zero_shot=sst2", "--preset=gpt9", *common], "--preset must be one of"),
            (["--zero_shot=sst2", f"--checkpoint={self.lm}", "--batch_size=0", *common],
             "--batch_size must be >= 1"),
            (["--zero_shot=sst2", f"--checkpoint={self.lm}", "--split=test", *common],
             "test.tsv"),
        ]
        for args, expected in cases:
            result = _evaluate(*args)
            self.assertEqual(result.returncode, 2, result.stderr[-3000:])
            self.assertNotIn("Traceback", result.stderr)
            (line,) = [l for l in result.stderr.splitlines() if l.startswith("ERROR:")]
            self.assertIn(expected, line)


if __name__ == "__main__":
    absltest.main()
