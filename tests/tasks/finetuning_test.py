"""finetune(): end to end on every head type in the tasks' own file formats, the
held-out validation split, scoring a finished run elsewhere, transfer ablations,
the LSTM baseline.

One process runs the paper's tasks in turn (gpt1_tiny, GPT-1's BPE, a handful of
examples each, written here in each task's real format).
"""

import csv
import json
import os
import tempfile

import keras
import keras_hub
import numpy as np
from absl.testing import absltest

from gpt1_keras.errors import ConfigError
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.models import GPT1Classifier
from gpt1_keras.models.lstm_backbone import LSTMBackbone
from gpt1_keras.tasks import get_task
from gpt1_keras.tasks.finetuning import FinetuneConfig
from gpt1_keras.tasks.finetuning import build_backbone
from gpt1_keras.tasks.finetuning import evaluate_run
from gpt1_keras.tasks.finetuning import finetune
from gpt1_keras.tokenizers import GPT1Tokenizer

WORDS = ["cat", "dog", "sun", "rain", "tree", "book", "road", "milk"]


def _write(path, rows, header=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join("\t".join(r) + "\n" for r in ([header] if header else []) + rows))


def _sentence(i):
    return f"The {WORDS[i % 8]} saw a {WORDS[(i * 3 + 1) % 8]} number {i}."


def _cola(d, n_train, n_dev):  # no header: source, label, original mark, sentence
    for name, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
        _write(f"{d}/{name}", [("gj04", str(i % 2), "" if i % 2 else "*", _sentence(i))
                               for i in range(n)])


def _mnli(d, n_train, n_dev):
    labels = ("contradiction", "entailment", "neutral")
    head = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse",
            "sentence2_binary_parse", "sentence1_parse", "sentence2_parse",
            "sentence1", "sentence2"]

    def rows(n, dev):
        return [(str(i), "1", f"{i}e", "fiction", "( a )", "( b )", "(ROOT a)", "(ROOT b)",
                 _sentence(i), _sentence(i + 1)) + ((labels[i % 3],) * 5 if dev else
                                                   (labels[i % 3],)) + (labels[i % 3],)
                for i in range(n)]
    _write(f"{d}/train.tsv", rows(n_train, False), head + ["label1", "gold_label"])
    dev_head = head + [f"label{k}" for k in range(1, 6)] + ["gold_label"]
    _write(f"{d}/dev_matched.tsv", rows(n_dev, True), dev_head)
    _write(f"{d}/dev_mismatched.tsv", rows(n_dev + 1, True), dev_head)
    _write(f"{d}/test_matched.tsv", [(str(i), "1", "p", "g", "a", "b", "a", "b",
                                      _sentence(i), _sentence(i + 2)) for i in range(2)],
           head)


def _pair_task(columns, labels):
    def write(d, n_train, n_dev):
        for name, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
            _write(f"{d}/{name}", [(str(i), _sentence(i) + "?", _sentence(i + 1),
                                    labels[i % 2]) for i in range(n)],
                   ["index"] + list(columns) + ["label"])
    return write


def _race(d, n_train, n_dev):  # RACE's test split has answers too
    for split, n in (("train", n_train), ("dev", n_dev), ("test", n_dev + 1)):
        for level in ("middle", "high"):
            os.makedirs(f"{d}/{split}/{level}")
        for i in range(n):  # one question per document, alternating levels
            doc = {"id": f"{split}{i}.txt", "article": _sentence(i) + " " + _sentence(i + 1),
                   "questions": [f"What did the {WORDS[i % 8]} see?"],
                   "options": [[WORDS[k] for k in range(4)]], "answers": ["ABCD"[i % 4]]}
            level = ("middle", "high")[i % 2]
            with open(f"{d}/{split}/{level}/{i}.txt", "w", encoding="utf-8") as f:
                json.dump(doc, f)


def _story_cloze(d, n_train, n_dev):  # train and dev are parts of the val file
    from gpt1_keras.tasks.story_cloze import TEST_FILE
    from gpt1_keras.tasks.story_cloze import VAL_FILE

    for name, n in ((VAL_FILE, n_train + n_dev), (TEST_FILE, n_dev)):
        with open(os.path.join(d, name), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["InputStoryid", "InputSentence1", "InputSentence2",
                        "InputSentence3", "InputSentence4", "RandomFifthSentenceQuiz1",
                        "RandomFifthSentenceQuiz2", "AnswerRightEnding"])
            for i in range(n):
                w.writerow([f"{name[:4]}{i}"] + [_sentence(i + k) for k in range(6)]
                           + [str(1 + i % 2)])


def _stsb(d, n_train, n_dev):
    head = ["index", "genre", "filename", "year", "old_index", "source1", "source2",
            "sentence1", "sentence2"]
    for name, n in (("train.tsv", n_train), ("dev.tsv", n_dev)):
        _write(f"{d}/{name}", [(str(i), "g", "f", "2012", "o", "s", "s", _sentence(i),
                                _sentence(i + 1), f"{i % 5}.0") for i in range(n)],
               head + ["score"])
    _write(f"{d}/test.tsv", [("0", "g", "f", "y", "o", "s", "s", "a b", "c")], head)


WRITERS = {
    "cola": _cola,
    "mnli": _mnli,
    "qnli": _pair_task(("question", "sentence"), ("entailment", "not_entailment")),
    "rte": _pair_task(("sentence1", "sentence2"), ("entailment", "not_entailment")),
    "race": _race,
    "story_cloze": _story_cloze,
    "stsb": _stsb,
}


def _read_predictions(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[0] == "index\tprediction", lines[0]
    return [tuple(line.split("\t")) for line in lines[1:]]


class FinetuneTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        keras.utils.set_random_seed(1)
        cls.tokenizer = GPT1Tokenizer()
        # A directory of its own: test processes running side by side share the
        # default test tmpdir.
        cls.checkpoint = os.path.join(
            tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir()), "lm.keras")
        GPT1CausalLM.from_architecture("gpt1_tiny").save(cls.checkpoint)

    def _config(self, task, data_dir, **kwargs):
        base = dict(task=task, data_dir=data_dir, output_dir=self.create_tempdir().full_path,
                    init_checkpoint=self.checkpoint, batch_size=4, epochs=1,
                    sequence_length=32, eval_batch_size=3, verbose=0)
        return FinetuneConfig(**{**base, **kwargs})

    def _model_predictions(self, output_dir, task, examples):
        """What the saved model.keras predicts for `examples`, as the task writes it."""
        model = keras.saving.load_model(os.path.join(output_dir, "model.keras"),
                                        compile=False)
        outputs = np.asarray(model.predict(examples.inputs(), batch_size=2, verbose=0))
        values = outputs.reshape(-1) if task.regression else outputs.argmax(-1)
        return model, [task.format_prediction(v) for v in values]

    def test_single_text_and_pair_tasks(self):
        self._run_tasks(["cola", "mnli", "qnli", "rte"])

    def test_multiple_choice_and_regression_tasks(self):
        self._run_tasks(["race", "story_cloze", "stsb"])

    def _run_tasks(self, names):
        for name in names:
            write = WRITERS[name]
            with self.subTest(task=name):
                task = get_task(name)
                data = self.create_tempdir().full_path
                write(data, 8, 3)
                config = self._config(name, data)
                results = finetune(config, tokenizer=self.tokenizer)
                out = config.output_dir
                with open(os.path.join(out, "metrics.json")) as f:
                    written = json.load(f)
                self.assertEqual(written["splits"], results["splits"])
                steps = -(-len(task.read(data, "train")) // 4)  # 1 epoch of batches of 4
                self.assertEqual(written["train_steps"], steps)
                self.assertEqual(set(results["splits"]), {s.name for s in task.eval_splits})
                for split, split_metrics in results["splits"].items():
                    examples = task.read(data, split)
                    self.assertEqual(set(split_metrics), set(task.metrics) | {"num_examples"})
                    self.assertEqual(split_metrics["num_examples"], len(examples))
                    rows = _read_predictions(os.path.join(out, "predictions", f"{split}.tsv"))
                    self.assertEqual([r[0] for r in rows], examples.ids)
                    if task.regression:
                        continue
                    self.assertContainsSubset({r[1] for r in rows}, task.labels)
                    if "accuracy" in split_metrics:  # the metrics score the written file
                        truth = [task.format_prediction(y) for y in examples.labels]
                        self.assertAlmostEqual(
                            split_metrics["accuracy"],
                            np.mean([r[1] == t for r, t in zip(rows, truth)]))
                if name == "mnli":
                    rows = _read_predictions(os.path.join(out, "predictions", "MNLI-m.tsv"))
                    self.assertEqual([r[0] for r in rows], ["0", "1"])
                    self.assertFalse(os.path.exists(os.path.join(out, "predictions",
                                                                 "MNLI-mm.tsv")))
                if name in ("race", "stsb"):
                    # The files hold what the saved model, with its own preprocessor,
                    # predicts: the input path was saved with the model.
                    examples = task.read(data, "dev")
                    model, expected = self._model_predictions(out, task, examples)
                    rows = _read_predictions(os.path.join(out, "predictions", "dev.tsv"))
                    if task.regression:
                        np.testing.assert_allclose([float(r[1]) for r in rows],
                                                   [float(e) for e in expected], atol=1e-5)
                    else:
                        self.assertEqual([r[1] for r in rows], expected)
                    self.assertEqual(model.head, task.head)
                    self.assertEqual(model.preprocessor.label_names, task.labels)
                    self.assertEqual(model.preprocessor.sequence_length, 32)
                    # The run's preset is the same classifier: its head weights,
                    # preprocessor and label names, loaded by keras-hub's base class.
                    preset = keras_hub.models.TextClassifier.from_preset(
                        os.path.join(out, "preset"))
                    self.assertIsInstance(preset, GPT1Classifier)
                    self.assertEqual((preset.head, preset.preprocessor.label_names,
                                      preset.preprocessor.sequence_length),
                                     (task.head, task.labels, 32))
                    np.testing.assert_allclose(
                        preset.predict(examples.inputs(), batch_size=2, verbose=0),
                        model.predict(examples.inputs(), batch_size=2, verbose=0),
                        atol=1e-6)
                    self.assertEqual([f for f in os.listdir(out) if f.startswith(".preset")],
                                     [])

    def test_sst2_learns_a_separable_rule(self):
        data = self.create_tempdir().full_path
        # Label 1 iff the text starts with "good": learnable from the classify state.
        rows = [(f"{w} {x}", str(int(w == "good")))
                for w in ("good", "bad") for x in ("movie", "film", "show", "play")] * 2
        _write(f"{data}/train.tsv", rows, ("sentence", "label"))
        _write(f"{data}/dev.tsv", rows[:8], ("sentence", "label"))
        config = self._config("sst2", data, learning_rate=1e-2, epochs=8, sequence_length=8,
                              # The aux loss has its own tests (gpt1_classifier_test).
                              lm_coef=0.0)
        results = finetune(config, tokenizer=self.tokenizer)
        self.assertEqual(results["train_steps"], 32)
        self.assertGreaterEqual(results["splits"]["dev"]["accuracy"], 0.875)

    def test_batch_larger_than_the_data_is_capped(self):
        data = self.create_tempdir().full_path
        rows = [("good movie", "1"), ("bad movie", "0"), ("good film", "1")]
        _write(f"{data}/train.tsv", rows, ("sentence", "label"))
        _write(f"{data}/dev.tsv", rows, ("sentence", "label"))
        config = self._config("sst2", data, batch_size=64, epochs=2, sequence_length=8)
        with self.assertLogs(level="WARNING") as logs:
            results = finetune(config, tokenizer=self.tokenizer)
        self.assertIn("batch_size=64 is larger than the 3 training examples of sst2: "
                      "capped to 3.", "\n".join(logs.output))
        self.assertEqual(results["config"]["batch_size"], 3)
        self.assertEqual(results["train_steps"], 2)  # one full batch per epoch

    def test_held_out_validation_then_official_dev(self):
        train_only = self.create_tempdir().full_path
        _pair_task(("sentence1", "sentence2"), ("entailment", "not_entailment"))(
            train_only, 12, 0)
        os.remove(os.path.join(train_only, "dev.tsv"))  # as in ../shared/data
        config = self._config("rte", train_only, validation_fraction=0.25, seed=3)
        results = finetune(config, tokenizer=self.tokenizer)
        self.assertEqual(results["train_examples"], 9)
        self.assertEqual(results["splits"]["validation"]["num_examples"], 3)
        held = [r[0] for r in _read_predictions(
            os.path.join(config.output_dir, "predictions", "validation.tsv"))]
        self.assertLen(held, 3)
        self.assertLen(set(held), 3)
        # Seeded: the same seed holds out the same examples, another seed others.
        from gpt1_keras.tasks.splits import holdout_split

        examples = get_task("rte").read(train_only, "train")
        self.assertEqual(holdout_split(examples, 0.25, 3)[1].ids, held)

        dev = self.create_tempdir().full_path
        _pair_task(("sentence1", "sentence2"), ("entailment", "not_entailment"))(dev, 0, 5)
        scored = evaluate_run(config.output_dir, dev)
        with open(os.path.join(config.output_dir, "eval_metrics.json")) as f:
            self.assertEqual(json.load(f)["splits"], scored["splits"])
        self.assertEqual(scored["splits"]["dev"]["num_examples"], 5)
        _, expected = self._model_predictions(config.output_dir, get_task("rte"),
                                              get_task("rte").read(dev, "dev"))
        rows = _read_predictions(os.path.join(config.output_dir, "eval_predictions",
                                              "dev.tsv"))
        self.assertEqual([r[1] for r in rows], expected)
        with self.assertRaisesRegex(FileNotFoundError, r"No labelled split .*dev\.tsv"):
            evaluate_run(config.output_dir, train_only)

    def test_missing_files_fail_before_training(self):
        data = self.create_tempdir().full_path
        _write(f"{data}/train.tsv", [("a", "1")], ("sentence", "label"))
        config = self._config("sst2", data)
        with self.assertRaisesRegex(FileNotFoundError, r"'sst2': looked for .*dev.tsv"):
            finetune(config, tokenizer=self.tokenizer)
        # Nothing trained or written (the run lock's file aside).
        self.assertEqual(os.listdir(config.output_dir), [".gpt1_keras.lock"])
        with self.assertRaisesRegex(ConfigError, "init_checkpoint.*required"):
            FinetuneConfig(task="sst2", data_dir=data, output_dir=data)
        with self.assertRaisesRegex(ConfigError, "validation_fraction"):
            self._config("sst2", data, validation_fraction=1.0)

    def test_layers_to_transfer_and_no_pretraining(self):
        pretrained = keras.saving.load_model(self.checkpoint).backbone

        def same(a, b):
            return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))

        base = dict(data_dir="d", output_dir="o", init_checkpoint=self.checkpoint)
        full = build_backbone(FinetuneConfig(**base))
        self.assertTrue(same(full, pretrained))
        one = build_backbone(FinetuneConfig(**base, layers_to_transfer=1))
        self.assertTrue(same(one.token_embedding, pretrained.token_embedding))
        self.assertTrue(same(one.position_embedding, pretrained.position_embedding))
        self.assertTrue(same(one.transformer_layers[0], pretrained.transformer_layers[0]))
        self.assertFalse(same(one.transformer_layers[1], pretrained.transformer_layers[1]))
        scratch = build_backbone(FinetuneConfig(**base, no_pretraining=True))
        self.assertFalse(same(scratch.token_embedding, pretrained.token_embedding))
        self.assertEqual(scratch.num_layers, 2)
        with self.assertRaisesRegex(ConfigError, "layers_to_transfer=5 .* 2 layers"):
            build_backbone(FinetuneConfig(**base, layers_to_transfer=5))
        # A preset directory (e.g. a run's preset/) as the checkpoint: its backbone.
        preset = self.create_tempdir().full_path
        pretrained.save_to_preset(preset)
        from_preset = build_backbone(FinetuneConfig(**{**base, "init_checkpoint": preset}))
        self.assertTrue(same(from_preset, pretrained))
        with self.assertRaisesRegex(ConfigError, "init_checkpoint: .*config.json not found"):
            build_backbone(FinetuneConfig(**{**base, "init_checkpoint": self.create_tempdir(
                ).full_path}))

    def test_lstm_baseline(self):
        lstm_checkpoint = os.path.join(self.create_tempdir().full_path, "lstm.keras")
        GPT1CausalLM.from_architecture("lstm_tiny").save(lstm_checkpoint)
        pretrained = keras.saving.load_model(lstm_checkpoint).backbone
        self.assertIsInstance(pretrained, LSTMBackbone)

        def same(a, b):
            return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))

        # End to end from the pretrained LSTM LM (its aux LM loss included).
        data = self.create_tempdir().full_path
        rows = [(f"{w} {x}", str(int(w == "good")))
                for w in ("good", "bad") for x in ("movie", "film", "show", "play")]
        _write(f"{data}/train.tsv", rows, ("sentence", "label"))
        _write(f"{data}/dev.tsv", rows[:5], ("sentence", "label"))
        config = self._config("sst2", data, init_checkpoint=lstm_checkpoint,
                              sequence_length=8, learning_rate=1e-3)
        results = finetune(config, tokenizer=self.tokenizer)
        self.assertEqual((results["train_steps"], results["train_examples"]), (2, 8))
        self.assertEqual(set(results["splits"]["dev"]), {"accuracy", "num_examples"})
        self.assertEqual(results["splits"]["dev"]["num_examples"], 5)
        task = get_task("sst2")
        model, expected = self._model_predictions(config.output_dir, task,
                                                  task.read(data, "dev"))
        self.assertIsInstance(model.backbone, LSTMBackbone)
        self.assertFalse(same(model.backbone, pretrained))  # fine-tuning moved it
        preset = GPT1Classifier.from_preset(os.path.join(config.output_dir, "preset"))
        self.assertIsInstance(preset.backbone, LSTMBackbone)
        self.assertTrue(same(preset, model))
        self.assertEqual(preset.preprocessor.label_names, task.labels)
        rows_written = _read_predictions(
            os.path.join(config.output_dir, "predictions", "dev.tsv"))
        self.assertEqual([r[1] for r in rows_written], expected)
        truth = [task.format_prediction(y) for y in task.read(data, "dev").labels]
        self.assertAlmostEqual(results["splits"]["dev"]["accuracy"],
                               np.mean([e == t for e, t in zip(expected, truth)]))

        # 0 layers: the embedding alone is transferred; 1 (or -1): everything.
        base = dict(data_dir="d", output_dir="o", init_checkpoint=lstm_checkpoint)
        zero = build_backbone(FinetuneConfig(**base, layers_to_transfer=0))
        self.assertIsInstance(zero, LSTMBackbone)
        self.assertTrue(same(zero.token_embedding, pretrained.token_embedding))
        self.assertFalse(same(zero.lstm, pretrained.lstm))
        self.assertFalse(same(zero.output_projection, pretrained.output_projection))
        self.assertTrue(same(build_backbone(FinetuneConfig(**base, layers_to_transfer=1)),
                             pretrained))
        with self.assertRaisesRegex(ConfigError, "layers_to_transfer.*0 .*1/-1.*=2"):
            build_backbone(FinetuneConfig(**base, layers_to_transfer=2))
        # A checkpoint of the other architecture than the one asked for.
        with self.assertRaisesRegex(ConfigError, "architecture='transformer'.*'lstm'"):
            build_backbone(FinetuneConfig(**base, architecture="transformer"))
        with self.assertRaisesRegex(ConfigError, "architecture='lstm'.*'transformer'"):
            build_backbone(FinetuneConfig(data_dir="d", output_dir="o",
                                          init_checkpoint=self.checkpoint,
                                          architecture="lstm"))
        with self.assertRaisesRegex(ConfigError, "architecture: must be one of"):
            FinetuneConfig(**base, architecture="rnn")

        # --no_pretraining --architecture=lstm: the recipe's preset mapped to its
        # equal-size LSTM preset; a preset without one is an error naming it.
        scratch = build_backbone(FinetuneConfig(data_dir="d", output_dir="o",
                                                no_pretraining=True, architecture="lstm",
                                                preset="gpt1_tiny"))
        self.assertIsInstance(scratch, LSTMBackbone)
        self.assertEqual(scratch.get_config() | {"name": None},
                         LSTMBackbone.from_architecture("lstm_tiny").get_config() | {"name": None})
        self.assertFalse(same(scratch.token_embedding, pretrained.token_embedding))
        with self.assertRaisesRegex(ConfigError, "preset: .*'gpt1' has no counterpart"):
            build_backbone(FinetuneConfig(data_dir="d", output_dir="o", no_pretraining=True,
                                          architecture="lstm"))


if __name__ == "__main__":
    absltest.main()
