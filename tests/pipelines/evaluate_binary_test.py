"""The evaluate binary as a user runs it: a zero-shot run end to end, and bad inputs."""

import csv
import json
import math
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
# CoLA's layout: no header; source, label, original label (blank when kept), sentence.
_COLA_TRAIN = [(1, "The cat sat on the mat."), (0, "Cat the mat on sat the."),
               (1, "She gave him a book."), (0, "She gave a him book the."),
               (1, "They have left already."), (0, "Have they left already the the.")]
_COLA_DEV = [(1, "The dog barked."), (0, "Barked dog the the."), (1, "We ate lunch early."),
             (0, "Lunch we early ate ate."), (1, "He is reading a letter.")]


def _story(i):
    """Story `i` of a Story Cloze file: four sentences, two endings, the right one."""
    return [f"story-{i}", f"Ann woke up on day {i}.", "She made some coffee.",
            "The coffee was too hot.", "She waited for it to cool.",
            "She drank it slowly.", "She flew to the moon.", str(1 + i % 2)]


def _read_predictions(path):
    with open(path) as f:
        rows = [line.split("\t") for line in f.read().splitlines()]
    header, *rows = rows
    assert header == ["index", "prediction"], header
    return [row[0] for row in rows], [int(row[1]) for row in rows]


def _binary_mcc(labels, predictions):
    """Matthews correlation from the 2x2 confusion counts (0 when a margin is empty)."""
    pairs = list(zip(labels, predictions))
    tp, tn = pairs.count((1, 1)), pairs.count((0, 0))
    fp, fn = pairs.count((0, 1)), pairs.count((1, 0))
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


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
        atomic_save_model(GPT1CausalLM.from_architecture("gpt1_tiny", num_layers=1), cls.lm)
        cls.classifier = os.path.join(tmp, "classifier.keras")
        atomic_save_model(GPT1Classifier(
            GPT1CausalLM.from_architecture("gpt1_tiny", num_layers=1).backbone, num_classes=2),
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

    def test_cola_zero_shot_through_the_binary(self):
        data = self.create_tempdir()
        for name, rows in (("train.tsv", _COLA_TRAIN), ("dev.tsv", _COLA_DEV)):
            data.create_file(name, content="".join(
                f"gj04\t{label}\t{'' if label else '*'}\t{text}\n" for label, text in rows))
        out = self.create_tempdir().full_path
        result = _evaluate("--zero_shot=cola", f"--data_dir={data.full_path}",
                           f"--checkpoint={self.lm}", f"--output_dir={out}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(out, "metrics.json")) as f:
            metrics = json.load(f)
        _, predictions = _read_predictions(os.path.join(out, "predictions_cola_dev.tsv"))
        labels = [label for label, _ in _COLA_DEV]
        self.assertLen(predictions, len(labels))
        self.assertEqual(metrics["num_examples"], len(labels))
        self.assertContainsSubset(set(predictions), {0, 1})
        self.assertAlmostEqual(metrics["accuracy"],
                               sum(p == y for p, y in zip(predictions, labels)) / len(labels))
        self.assertAlmostEqual(metrics["matthews_corrcoef"], _binary_mcc(labels, predictions))
        self.assertIn(f"accuracy={metrics['accuracy']}", result.stdout)
        self.assertIn(f"threshold={metrics['threshold']}", result.stdout)

    def test_story_cloze_zero_shot_through_the_binary(self):
        # 15 stories: the dev split is every fifth one from the first (0, 5, 10).
        data = self.create_tempdir()
        path = os.path.join(data.full_path, "cloze_test_val__spring2016.csv")
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["InputStoryid", "InputSentence1", "InputSentence2",
                             "InputSentence3", "InputSentence4", "RandomFifthSentenceQuiz1",
                             "RandomFifthSentenceQuiz2", "AnswerRightEnding"])
            writer.writerows(_story(i) for i in range(15))
        out = self.create_tempdir().full_path
        result = _evaluate("--zero_shot=story_cloze", f"--data_dir={data.full_path}",
                           f"--checkpoint={self.lm}", f"--output_dir={out}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        with open(os.path.join(out, "metrics.json")) as f:
            metrics = json.load(f)
        ids, predictions = _read_predictions(
            os.path.join(out, "predictions_story_cloze_dev.tsv"))
        self.assertEqual(ids, ["story-0", "story-5", "story-10"])
        # AnswerRightEnding 1/2 is the ending's index 0/1.
        labels = [int(_story(int(i.split("-")[1]))[-1]) - 1 for i in ids]
        self.assertContainsSubset(set(predictions), {0, 1})
        self.assertEqual(metrics["num_examples"], 3)
        self.assertAlmostEqual(metrics["accuracy"],
                               sum(p == y for p, y in zip(predictions, labels)) / 3)
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
