"""GPT1Classifier: heads, shapes, auxiliary LM loss, fit on raw strings, serialization."""

import os
import subprocess
import sys

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from gpt1_keras.layers import language_model_loss
from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models.gpt1_classifier import GPT1Classifier
from tests import test_case
from tests.test_case import TINY_BACKBONE
from tests.test_case import random_inputs
from tests.test_case import to_numpy


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _head(model):
    layer = model.get_layer("classifier_head")
    return to_numpy(layer.kernel), to_numpy(layer.bias)


class GPT1ClassifierTest(test_case.TestCase):
    def setUp(self):
        super().setUp()
        self.backbone = GPT1Backbone(**TINY_BACKBONE, dropout=0.0)

    def _hidden(self, x):
        """Backbone states `(N, T, C)` for inputs of any leading shape."""
        t = x["token_ids"].shape[-1]
        return to_numpy(self.backbone({k: v.reshape(-1, t) for k, v in x.items()}))

    # The (B, T) heads' fit and round trip are in test_fit_lowers_the_loss and
    # RawStringsTest; these two cover the (B, S, T) layouts, regression included.
    @parameterized.named_parameters(
        # head, num_classes, input shape, lengths, labels, predict output shape
        ("similarity_regression", "similarity", 1, (4, 2, 6), [[6, 6], [4, 4], [5, 5], [2, 2]],
         np.array([0.5, 1.0, 2.0, 4.0], "float32"), (4,)),
        ("multiple_choice", "multiple_choice", None, (4, 3, 6),
         [[6, 4, 2], [5, 5, 3], [6, 6, 6], [2, 3, 4]], [0, 1, 2, 0], (4, 3)),
    )
    def test_classifier_basics(self, head, num_classes, shape, lengths, labels, output_shape):
        self.run_task_test(
            GPT1Classifier,
            {"backbone": self.backbone, "num_classes": num_classes, "head": head},
            (random_inputs(shape, lengths), np.asarray(labels)),
            expected_output_shape=output_shape,
        )

    def test_classification_reads_the_classify_state(self):
        model = GPT1Classifier(self.backbone, num_classes=3, lm_coef=0.0, dropout=0.0)
        x = random_inputs((3, 8), [8, 5, 2])
        logits = to_numpy(model(x))
        self.assertEqual(logits.shape, (3, 3))
        hidden = self._hidden(x)
        w, b = _head(model)
        # The classify token is the last real one: positions 7, 4, 1.
        expected = hidden[np.arange(3), [7, 4, 1]] @ w + b
        self.assertAllClose(logits, expected, atol=1e-5)
        # Padding does not change the result.
        x2 = {k: v.copy() for k, v in x.items()}
        x2["token_ids"][2, 2:] = 7
        self.assertAllClose(model(x2), logits, atol=1e-5)

    def test_similarity_adds_both_orders(self):
        model = GPT1Classifier(self.backbone, num_classes=2, head="similarity",
                               lm_coef=0.0, dropout=0.0)
        x = random_inputs((2, 2, 6), [[6, 6], [3, 3]])
        logits = to_numpy(model(x))
        self.assertEqual(logits.shape, (2, 2))
        hidden = self._hidden(x).reshape(2, 2, 6, -1)
        w, b = _head(model)
        states = hidden[:, 0, [5, 2]].diagonal().T + hidden[:, 1, [5, 2]].diagonal().T
        self.assertAllClose(logits, states @ w + b, atol=1e-5)

    def test_similarity_regression_has_one_output(self):
        model = GPT1Classifier(self.backbone, num_classes=1, head="similarity",
                               lm_coef=0.0)
        self.assertEqual(to_numpy(model(random_inputs((4, 2, 6), [[6, 4]] * 4))).shape, (4,))
        model.compile()
        self.assertIsInstance(model.loss, keras.losses.MeanSquaredError)

    def test_multiple_choice_scores_each_choice(self):
        model = GPT1Classifier(self.backbone, head="multiple_choice", lm_coef=0.0,
                               dropout=0.0)
        for k in (2, 4):
            x = random_inputs((3, k, 7), np.full((3, k), 7) - np.arange(k))
            logits = to_numpy(model(x))
            self.assertEqual(logits.shape, (3, k))
            hidden = self._hidden(x).reshape(3, k, 7, -1)
            w, b = _head(model)
            last = 6 - np.arange(k)
            expected = np.stack(
                [hidden[:, j, last[j]] @ w[:, 0] + b[0] for j in range(k)], axis=1)
            self.assertAllClose(logits, expected, atol=1e-5)

    @parameterized.named_parameters(
        ("classification", "classification", (2, 8), [8, 3]),
        ("multiple_choice", "multiple_choice", (2, 3, 6), [[6, 4, 2], [5, 5, 3]]),
    )
    def test_auxiliary_loss_matches_direct_computation(self, head, shape, lengths):
        num_classes = None if head == "multiple_choice" else 4
        model = GPT1Classifier(self.backbone, num_classes=num_classes, head=head,
                               lm_coef=0.5, dropout=0.0)
        x = random_inputs(shape, lengths, seed=1)
        y = np.array([1, 2], "int32")
        y_pred = model(x, training=True)
        model.compile()
        total = float(to_numpy(model.compute_loss(x, y, y_pred)))

        # Direct: task cross-entropy + 0.5 * per-token LM cross-entropy.
        t = shape[-1]
        hidden = self._hidden(x)
        emb = to_numpy(self.backbone.token_embedding.embeddings)
        log_p = _log_softmax(hidden @ emb.T)  # (N, T, V)
        ids = x["token_ids"].reshape(-1, t)
        mask = x["padding_mask"].reshape(-1, t)
        nll = -np.take_along_axis(log_p[:, :-1], ids[:, 1:, None], -1)[..., 0]
        lm = (nll * mask[:, 1:]).sum() / mask[:, 1:].sum()
        task_loss = -_log_softmax(to_numpy(y_pred))[np.arange(2), y].mean()
        np.testing.assert_allclose(total, task_loss + 0.5 * lm, rtol=1e-4)
        np.testing.assert_allclose(
            float(to_numpy(language_model_loss(
                keras.ops.convert_to_tensor((hidden @ emb.T).astype("float32")),
                ids, mask))), lm, rtol=1e-5)
        # The compiled train step (every backend) minimises the same total.
        model.compile(optimizer=keras.optimizers.SGD(0.0))
        step_loss = model.train_on_batch(x, y, return_dict=True)["loss"]
        np.testing.assert_allclose(float(step_loss), task_loss + 0.5 * lm, rtol=1e-4)
        # Not in inference; never with lm_coef=0.
        model(x, training=False)
        np.testing.assert_allclose(
            float(to_numpy(model.compute_loss(x, y, y_pred))), task_loss, rtol=1e-4)

    def test_lm_coef_zero_has_no_lm_head(self):
        model = GPT1Classifier(self.backbone, num_classes=2, lm_coef=0.0)
        names = [layer.name for layer in model.layers]
        self.assertNotIn("auxiliary_lm_loss", names)
        model(random_inputs((2, 5), [5, 3]), training=True)
        self.assertEqual(model.losses, [])

    def test_bad_arguments_name_the_value(self):
        with self.assertRaisesRegex(ValueError, "num_classes=None"):
            GPT1Classifier(self.backbone, head="entailment")
        with self.assertRaisesRegex(ValueError, "num_classes=3"):
            GPT1Classifier(self.backbone, num_classes=3, head="multiple_choice")
        with self.assertRaisesRegex(ValueError, "head='ranking'"):
            GPT1Classifier(self.backbone, num_classes=2, head="ranking")
        with self.assertRaisesRegex(ValueError, "lm_coef=-1"):
            GPT1Classifier(self.backbone, num_classes=2, lm_coef=-1)
        with self.assertRaisesRegex(ValueError, "regression.*head='classification'"):
            GPT1Classifier(self.backbone, num_classes=1)

    def test_task_is_the_deprecated_name_of_head(self):
        with self.assertWarnsRegex(DeprecationWarning, r"task=\.\.\.\) is deprecated"):
            model = GPT1Classifier(self.backbone, num_classes=2, task="entailment")
        self.assertEqual((model.head, model.task), ("entailment", "entailment"))
        self.assertEqual(tuple(model.input["token_ids"].shape), (None, None))  # (B, T)
        self.assertNotIn("task", model.get_config())
        with self.assertRaisesRegex(ValueError, "head='similarity', task='entailment'"):
            GPT1Classifier(self.backbone, num_classes=2, head="similarity", task="entailment")
        # A config saved before the rename (`task`) loads as that head.
        config = GPT1Classifier(self.backbone, head="multiple_choice").get_config()
        config["task"] = config.pop("head")
        old = GPT1Classifier.from_config(config)
        self.assertEqual(old.head, "multiple_choice")
        self.assertEqual(tuple(old.input["token_ids"].shape), (None, None, None))  # (B, K, T)

    def test_fit_lowers_the_loss(self):
        model = GPT1Classifier(self.backbone, num_classes=2, head="entailment",
                               lm_coef=0.5)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        x = random_inputs((8, 6), [6, 5, 4, 3, 6, 5, 4, 3], seed=2)
        y = np.array([0, 1] * 4, "int32")
        history = model.fit(x, y, batch_size=4, epochs=8, verbose=0)
        self.assertLess(history.history["loss"][-1], history.history["loss"][0])
        clone = self.run_serialization_test(model, x)
        self.assertEqual((clone.head, clone.lm_coef), ("entailment", 0.5))


class RawStringsTest(test_case.TestCase):
    def test_fit_predict_and_save_on_raw_strings(self):
        from gpt1_keras.preprocessing import GPT1ClassifierPreprocessor
        from gpt1_keras.tokenizers import GPT1Tokenizer

        preprocessor = GPT1ClassifierPreprocessor(GPT1Tokenizer(), "classification",
                                                  sequence_length=16)
        model = GPT1Classifier(GPT1Backbone.from_architecture("gpt1_tiny"), num_classes=2,
                               preprocessor=preprocessor)
        model.compile(optimizer=keras.optimizers.Adam(3e-3))
        x = ["a great movie", "dull and boring", "loved it", "awful"] * 2
        y = np.array([1, 0, 1, 0] * 2, "int32")
        # Each pass over a dataset with the real tokenizer costs seconds: keep
        # passes few (validation_data is covered with a fake tokenizer in
        # gpt1_classifier_preprocessor_test).
        history = model.fit(x=x, y=y, batch_size=4, epochs=2, verbose=0)
        self.assertLess(history.history["loss"][-1], history.history["loss"][0])
        probs = model.predict(x[:3], batch_size=2, verbose=0)
        self.assertEqual(probs.shape, (3, 2))
        path = os.path.join(self.create_tempdir().full_path, "raw.keras")
        model.save(path)
        clone = keras.saving.load_model(path)
        self.assertEqual(clone.preprocessor.sequence_length, 16)
        self.assertAllClose(clone.predict(x[:3], verbose=0), probs, atol=1e-5)

        # A fresh process that imports only the models loads the preprocessor
        # too (Keras itself imports none of our modules while loading).
        expected = os.path.join(os.path.dirname(path), "probs.npy")
        np.save(expected, probs)
        script = (
            "import sys, keras, numpy as np\n"
            "from gpt1_keras.models import GPT1Classifier\n"
            "assert 'gpt1_keras.preprocessing' not in sys.modules\n"
            f"model = keras.saving.load_model({path!r})\n"
            "print(type(model.preprocessor).__name__)\n"
            f"probs = model.predict({x[:3]!r}, verbose=0)\n"
            f"np.testing.assert_allclose(probs, np.load({expected!r}), atol=1e-5)\n"
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True,
                              text=True, env=env, timeout=300)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        self.assertEqual(proc.stdout.split()[-1], "GPT1ClassifierPreprocessor")


def _weights(model):
    return [to_numpy(w) for w in model.weights]


class PresetTest(test_case.TestCase):
    """`save_to_preset` / `from_preset` with keras-hub's meaning (weights included)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        from gpt1_keras.tokenizers import GPT1Tokenizer

        cls.tokenizer = GPT1Tokenizer()  # The real BPE: its files go in the presets.

    def setUp(self):
        super().setUp()
        from gpt1_keras.preprocessing import GPT1ClassifierPreprocessor

        self.preprocessor_cls = GPT1ClassifierPreprocessor
        self.pairs = (["A man sleeps.", "Dogs run fast!"], ["Someone rests.", ""])

    def _classifier(self, backbone, head="entailment", **kwargs):
        preprocessor = self.preprocessor_cls(self.tokenizer, head, 16,
                                             label_names=("entailment", "other"))
        model = GPT1Classifier(backbone, num_classes=2, head=head,
                               preprocessor=preprocessor, **kwargs)
        test_case.assign_random_weights(model, stddev=0.1)  # the head too
        return model

    def test_fine_tuned_classifier_round_trips(self):
        import keras_hub

        model = self._classifier(GPT1Backbone.from_architecture("gpt1_tiny"), lm_coef=0.25)
        expected = model.predict(self.pairs, verbose=0)
        directory = self.create_tempdir().full_path
        model.save_to_preset(directory)
        # keras-hub's base class resolves to ours: head weights, preprocessor,
        # label names and the model's arguments as saved.
        restored = keras_hub.models.TextClassifier.from_preset(directory)
        self.assertIsInstance(restored, GPT1Classifier)
        self.assertEqual((restored.head, restored.lm_coef, restored.num_classes),
                         ("entailment", 0.25, 2))
        self.assertEqual((restored.preprocessor.label_names,
                          restored.preprocessor.sequence_length),
                         (("entailment", "other"), 16))
        self.assertAllClose(restored.predict(self.pairs, verbose=0), expected, atol=1e-6)
        for a, b in zip(_weights(restored), _weights(model)):
            np.testing.assert_array_equal(a, b)
        # The saved classifier with another sequence length (the same tokenizer).
        longer = GPT1Classifier.from_preset(directory, sequence_length=24)
        self.assertEqual((longer.preprocessor.sequence_length, longer.preprocessor.label_names),
                         (24, ("entailment", "other")))
        self.assertAllClose(longer.predict(self.pairs, verbose=0), expected, atol=1e-5)
        with self.assertRaisesRegex(ValueError, "sequence_length=65.*max_sequence_length=64"):
            GPT1Classifier.from_preset(directory, sequence_length=65)

        # A new head (num_classes or head given): the preset's backbone, a fresh
        # head, the preprocessor re-laid for that head, label names only as given.
        other = GPT1Classifier.from_preset(directory, num_classes=3, head="similarity",
                                           sequence_length=12)
        for a, b in zip(_weights(other.backbone), _weights(model.backbone)):
            np.testing.assert_array_equal(a, b)
        self.assertEqual((other.head, other.preprocessor.head, other.preprocessor.label_names,
                          other.preprocessor.sequence_length), ("similarity", "similarity",
                                                                None, 12))
        self.assertEqual(other.predict(self.pairs, verbose=0).shape, (2, 3))
        untrained = GPT1Classifier.from_preset(directory, load_weights=False)
        self.assertFalse(np.array_equal(_weights(untrained.backbone)[0],
                                        _weights(model.backbone)[0]))

    def test_from_a_pretrained_lm_preset(self):
        from gpt1_keras.models import GPT1CausalLM
        from gpt1_keras.preprocessing.gpt1_causal_lm_preprocessor import (
            GPT1CausalLMPreprocessor,
        )

        # What a pretraining run writes: an LM (its own preprocessor) and tokenizer.
        lm = GPT1CausalLM(GPT1Backbone.from_architecture("gpt1_tiny"),
                          preprocessor=GPT1CausalLMPreprocessor(self.tokenizer, 32))
        directory = self.create_tempdir().full_path
        lm.save_to_preset(directory)
        model = GPT1Classifier.from_preset(directory, num_classes=2, head="entailment",
                                           label_names=["yes", "no"])
        for a, b in zip(_weights(model.backbone), _weights(lm.backbone)):
            np.testing.assert_array_equal(a, b)
        # The tokenizer of the preset; sequence_length: the backbone's context.
        self.assertEqual((model.preprocessor.head, model.preprocessor.sequence_length,
                          model.preprocessor.label_names), ("entailment", 64, ("yes", "no")))
        np.testing.assert_array_equal(
            model.preprocessor(self.pairs)["token_ids"],
            self.preprocessor_cls(self.tokenizer, "entailment", 64)(self.pairs)["token_ids"])
        # The classifier trains from there, with the preset's tokenizer.
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        history = model.fit(self.pairs, np.array([0, 1]), batch_size=2, epochs=3, verbose=0)
        self.assertLess(history.history["loss"][-1], history.history["loss"][0])
        with self.assertRaisesRegex(ValueError, "'classification' needs `num_classes`"):
            GPT1Classifier.from_preset(directory)

    def test_lstm_backbone_preset(self):
        from gpt1_keras.models import LSTMBackbone

        backbone = LSTMBackbone.from_architecture("lstm_tiny")
        directory = self.create_tempdir().full_path
        backbone.save_to_preset(directory)
        self.tokenizer.save_to_preset(directory)
        model = GPT1Classifier.from_preset(directory, num_classes=2, head="classification")
        self.assertIsInstance(model.backbone, LSTMBackbone)
        for a, b in zip(_weights(model.backbone), _weights(backbone)):
            np.testing.assert_array_equal(a, b)
        expected = model.predict(["a fine film", "bad"], verbose=0)
        tuned = self.create_tempdir().full_path
        model.save_to_preset(tuned)
        restored = GPT1Classifier.from_preset(tuned)
        self.assertIsInstance(restored.backbone, LSTMBackbone)
        self.assertAllClose(restored.predict(["a fine film", "bad"], verbose=0), expected,
                            atol=1e-6)

    def test_bad_presets_and_mismatches_name_the_problem(self):
        from gpt1_keras.models.preset_loading import PresetError
        from gpt1_keras.models.preset_loading import PresetNotFoundError

        with self.assertRaisesRegex(PresetError, r"GPT1Classifier\.from_architecture"):
            GPT1Classifier.from_preset("gpt1_tiny", num_classes=2)
        missing = os.path.join(self.create_tempdir().full_path, "nothing")
        with self.assertRaisesRegex(PresetNotFoundError, "nothing"):
            GPT1Classifier.from_preset(missing, num_classes=2)
        backbone = GPT1Backbone(**TINY_BACKBONE)
        preprocessor = self.preprocessor_cls(self.tokenizer, "entailment", 8)
        with self.assertRaisesRegex(ValueError, "head='entailment'.*head='similarity'"):
            GPT1Classifier(backbone, num_classes=2, head="similarity",
                           preprocessor=preprocessor)
        # A tokenizer of another vocabulary: its ids would index the wrong embedding rows.
        with self.assertRaisesRegex(
                ValueError, f"tokenizer has {self.tokenizer.vocabulary_size()} token ids but "
                f"the model's vocabulary_size is {backbone.vocabulary_size}"):
            GPT1Classifier(backbone, num_classes=2, preprocessor=self.preprocessor_cls(
                self.tokenizer, "classification", 8))
        backbone = GPT1Backbone(
            **{**TINY_BACKBONE, "vocabulary_size": self.tokenizer.vocabulary_size()})
        too_long = self.preprocessor_cls(self.tokenizer, "classification", 17)
        with self.assertRaisesRegex(ValueError, "sequence_length=17.*max_sequence_length=16"):
            GPT1Classifier(backbone, num_classes=2, preprocessor=too_long)
        directory = self.create_tempdir().full_path
        GPT1Classifier(backbone, num_classes=2).save_to_preset(directory)
        with self.assertRaisesRegex(ValueError, "sequence_length.*with `preprocessor` given"):
            GPT1Classifier.from_preset(directory, num_classes=2, preprocessor=preprocessor,
                                       head="entailment", sequence_length=8)


if __name__ == "__main__":
    absltest.main()
