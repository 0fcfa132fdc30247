"""ZeroShotProbes: zero-shot scores in each epoch's logs and in the trainer's history."""

import csv
import io
import json
import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import absltest

from gpt1_keras.errors import ConfigError
from gpt1_keras.evaluation.zero_shot import evaluate_zero_shot
from gpt1_keras.evaluation.zero_shot_callback import ZeroShotProbes
from gpt1_keras.tasks.story_cloze import COLUMNS
from gpt1_keras.tasks.story_cloze import VAL_FILE
from tests import test_case
from tests.data.fake_tokenizer import FakeTokenizer

# Each heuristic's main metric, as the paper reports it (Figure 2 right).
MAIN_METRIC = {"cola": "matthews_corrcoef", "sst2": "accuracy", "race": "accuracy",
               "story_cloze": "accuracy", "winograd": "accuracy"}


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(text)


def _task_dirs(root):
    """Tiny files of each heuristic's task, in the real layouts (FakeTokenizer words)."""
    dirs = {h: os.path.join(root, h) for h in MAIN_METRIC}
    # CoLA: headerless source, label, original judgement, sentence.
    cola = [("1", "1 2 3"), ("0", "3 2 1 9"), ("1", "1 2"), ("0", "9 9 8"),
            ("1", "4 5 6"), ("0", "6 5 4 4")]
    _write(os.path.join(dirs["cola"], "train.tsv"),
           "".join(f"c\t{y}\t{'' if y == '1' else '*'}\t{s}\n" for y, s in cola))
    _write(os.path.join(dirs["cola"], "dev.tsv"),
           "".join(f"c\t{y}\t\t{s}\n" for y, s in
                   [("1", "1 2 3 4"), ("0", "9 3"), ("1", "5 6"), ("0", "8 8 1"),
                    ("1", "2 3")]))
    # SST-2: header, sentence and label.
    _write(os.path.join(dirs["sst2"], "dev.tsv"),
           "sentence\tlabel\n" + "".join(f"{s}\t{y}\n" for s, y in
                                         [("1 2", 1), ("3 4 5", 0), ("6", 1)]))
    # RACE: one JSON document per file under dev/{middle,high}.
    _write(os.path.join(dirs["race"], "dev", "middle", "1.txt"), json.dumps({
        "id": "m1", "article": "1 2 3 4", "questions": ["5", "6 7"],
        "options": [["1", "2", "3", "4"], ["8", "9 1", "2", "3 3"]], "answers": ["B", "D"]}))
    # Story Cloze: the validation CSV; its dev part is rows 0, 5, ...
    rows = [[f"s{i}", "1", "2", str(i), "4", "5 6", str(7 + i % 3), str(1 + i % 2)]
            for i in range(10)]
    text = io.StringIO()
    csv.writer(text).writerows([list(COLUMNS)] + rows)
    _write(os.path.join(dirs["story_cloze"], VAL_FILE), text.getvalue())
    # Winograd: WinoGrande JSONL.
    _write(os.path.join(dirs["winograd"], "dev.jsonl"), "".join(
        json.dumps({"sentence": s, "option1": a, "option2": b, "answer": y}) + "\n"
        for s, a, b, y in [("1 _ 2", "3", "4", "2"), ("5 6 _ 7 8", "9", "1 2", "1"),
                           ("_ 3 3", "4", "5", "1")]))
    return dirs


def _dataset_fn(input_context):
    """Windows of a 20-token language (ids the fake tokenizer's vocabulary holds)."""
    windows = np.random.default_rng(0).integers(1, 20, (16, 9)).astype("int32")
    return tf.data.Dataset.from_tensor_slices((
        {"token_ids": windows[:, :-1], "padding_mask": np.ones((16, 8), "int32")},
        windows[:, 1:], np.ones((16, 8), "float32"),
    )).repeat().batch(4, drop_remainder=True)


class ZeroShotProbesTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(0)
        cls.tok = FakeTokenizer()
        cls.lm = test_case.tiny_lm(cls.tok.vocabulary_size())

    def setUp(self):
        super().setUp()
        self.dirs = _task_dirs(self.create_tempdir().full_path)

    def test_logs_hold_each_heuristics_main_metric(self):
        probes = ZeroShotProbes(self.tok, [(h, d) for h, d in self.dirs.items()],
                                batch_size=2)
        self.assertEqual(probes.log_keys, [f"zero_shot_{h}" for h in MAIN_METRIC])
        expected = {}
        for heuristic, data_dir in self.dirs.items():
            result = evaluate_zero_shot(self.lm, self.tok, heuristic, data_dir, "dev", 200)
            expected[f"zero_shot_{heuristic}"] = result[MAIN_METRIC[heuristic]]
            if heuristic == "cola":  # The data tells Matthews from accuracy apart.
                self.assertNotEqual(result["matthews_corrcoef"], result["accuracy"])
        # The files are read once, at construction: scoring needs them no more.
        for data_dir in self.dirs.values():
            os.rename(data_dir, data_dir + ".gone")

        probes.set_model(self.lm)
        logs = {"loss": 1.5}
        with self.assertLogs("absl", "INFO") as captured:
            probes.on_epoch_end(0, logs)
        self.assertEqual(logs, {"loss": 1.5, **expected})
        for value in expected.values():
            self.assertIsInstance(value, float)
        line = "\n".join(captured.output)
        self.assertIn("Zero-shot probes at epoch 1", line)
        self.assertIn(f"cola matthews_corrcoef {expected['zero_shot_cola']:.4f}", line)

        # A second pass on the same model gives the same numbers.
        again = {}
        probes.on_epoch_end(1, again)
        self.assertEqual(again, expected)

    def test_every_and_enabled(self):
        probes = ZeroShotProbes(self.tok, {"winograd": self.dirs["winograd"]}, every=2)
        probes.set_model(self.lm)
        logs = {}
        probes.on_epoch_end(0, logs)
        self.assertEqual(logs, {})
        probes.on_epoch_end(1, logs)
        self.assertEqual(list(logs), ["zero_shot_winograd"])
        # Not the chief: nothing is scored.
        idle = ZeroShotProbes(self.tok, {"winograd": self.dirs["winograd"]}, enabled=False)
        idle.set_model(self.lm)
        logs = {}
        idle.on_epoch_end(0, logs)
        self.assertEqual(logs, {})

    def test_trainer_history_records_the_scores(self):
        from gpt1_keras.training import TrainConfig
        from gpt1_keras.training import train

        model_dir = self.create_tempdir().full_path
        heuristics = ("sst2", "cola", "story_cloze", "winograd")
        probes = ZeroShotProbes(self.tok, [(h, self.dirs[h]) for h in heuristics])
        config = TrainConfig(
            model_dir=model_dir, train_steps=4, global_batch_size=4, sequence_length=8,
            learning_rate=1e-2, warmup_steps=1, steps_per_epoch=2, validation_steps=1,
            checkpoint_every=2, verbose=0)

        def build():
            keras.utils.set_random_seed(1)
            return test_case.tiny_lm(self.tok.vocabulary_size())

        result = train(build, _dataset_fn, config, val_dataset_fn=_dataset_fn,
                       callbacks=[probes])
        with open(os.path.join(model_dir, "history.jsonl")) as f:
            history = [json.loads(line) for line in f]
        self.assertEqual([e["step"] for e in history], [2, 4])
        self.assertEqual(history, result.history)
        for entry in history:
            self.assertIn("val_loss", entry)
            for h in heuristics:
                self.assertBetween(entry[f"zero_shot_{h}"], -1.0, 1.0)
        # The last entry scored the model training ended with (an independent path).
        for h in heuristics:
            final = evaluate_zero_shot(result.model, self.tok, h, self.dirs[h], "dev", 200)
            self.assertEqual(history[-1][f"zero_shot_{h}"], final[MAIN_METRIC[h]])

    def test_bad_probes_are_one_line_config_errors(self):
        def error(probes, **kwargs):
            with self.assertRaises(ConfigError) as caught:
                ZeroShotProbes(self.tok, probes, **kwargs)
            message = str(caught.exception)
            self.assertNotIn("\n", message)
            return message

        message = error([("hellaswag", self.dirs["sst2"])])
        self.assertIn("'hellaswag'", message)
        self.assertIn("winograd", message)  # The known ones are listed.
        # A folder without the split's file: the heuristic and the file are named.
        message = error([("winograd", self.dirs["winograd"])], split="test")
        self.assertIn("'winograd'", message)
        self.assertIn(os.path.join(self.dirs["winograd"], "test.jsonl"), message)
        os.remove(os.path.join(self.dirs["sst2"], "dev.tsv"))
        message = error({"sst2": self.dirs["sst2"]})
        self.assertIn("'sst2'", message)
        self.assertIn(os.path.join(self.dirs["sst2"], "dev.tsv"), message)
        missing = os.path.join(self.dirs["cola"], "nowhere")
        message = error({"cola": missing})
        self.assertIn("'cola'", message)
        self.assertIn(os.path.join(missing, "dev.tsv"), message)
        # A split the task does not have; an unlabelled split; bad options.
        self.assertIn("'validation'", error({"cola": self.dirs["cola"]}, split="validation"))
        _write(os.path.join(self.dirs["cola"], "test.tsv"), "index\tsentence\n0\t1 2\n")
        self.assertIn("no labels", error({"cola": self.dirs["cola"]}, split="test"))
        self.assertIn("twice", error([("winograd", self.dirs["winograd"])] * 2))
        self.assertIn("every", error({"winograd": self.dirs["winograd"]}, every=0))


if __name__ == "__main__":
    absltest.main()
