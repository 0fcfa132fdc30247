"""GPT1Classifier: heads, shapes, auxiliary LM loss, fit on raw strings, serialization."""

import os

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models.gpt1_classifier import GPT1Classifier
from gpt1_keras.models.gpt1_classifier import language_model_loss

VOCAB = 60
TINY = dict(vocabulary_size=VOCAB, num_layers=2, num_heads=2, hidden_dim=16,
            intermediate_dim=32, max_sequence_length=16, dropout=0.0)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _inputs(shape, lengths, seed=0):
    """Random ids with right padding; `lengths` has shape `shape[:-1]`."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, VOCAB, size=shape).astype("int32")
    mask = (np.arange(shape[-1]) < np.asarray(lengths)[..., None]).astype("int32")
    return {"token_ids": ids * mask, "padding_mask": mask}


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _head(model):
    layer = model.get_layer("classifier_head")
    return _np(layer.kernel), _np(layer.bias)


class GPT1ClassifierTest(absltest.TestCase):
    def setUp(self):
        keras.utils.set_random_seed(0)
        self.backbone = GPT1Backbone(**TINY)

    def _hidden(self, x):
        """Backbone states `(N, T, C)` for inputs of any leading shape."""
        t = x["token_ids"].shape[-1]
        return _np(self.backbone({k: v.reshape(-1, t) for k, v in x.items()}))

    def test_classification_reads_the_classify_state(self):
        model = GPT1Classifier(self.backbone, num_classes=3, lm_coef=0.0, dropout=0.0)
        x = _inputs((3, 8), [8, 5, 2])
        logits = _np(model(x))
        self.assertEqual(logits.shape, (3, 3))
        hidden = self._hidden(x)
        w, b = _head(model)
        # The classify token is the last real one: positions 7, 4, 1.
        expected = hidden[np.arange(3), [7, 4, 1]] @ w + b
        np.testing.assert_allclose(logits, expected, atol=1e-5)
        # Padding does not change the result.
        x2 = {k: v.copy() for k, v in x.items()}
        x2["token_ids"][2, 2:] = 7
        np.testing.assert_allclose(_np(model(x2)), logits, atol=1e-5)

    def test_similarity_adds_both_orders(self):
        model = GPT1Classifier(self.backbone, num_classes=2, task="similarity",
                               lm_coef=0.0, dropout=0.0)
        x = _inputs((2, 2, 6), [[6, 6], [3, 3]])
        logits = _np(model(x))
        self.assertEqual(logits.shape, (2, 2))
        hidden = self._hidden(x).reshape(2, 2, 6, -1)
        w, b = _head(model)
        states = hidden[:, 0, [5, 2]].diagonal().T + hidden[:, 1, [5, 2]].diagonal().T
        np.testing.assert_allclose(logits, states @ w + b, atol=1e-5)

    def test_similarity_regression_has_one_output(self):
        model = GPT1Classifier(self.backbone, num_classes=1, task="similarity",
                               lm_coef=0.0)
        self.assertEqual(_np(model(_inputs((4, 2, 6), [[6, 4]] * 4))).shape, (4,))
        model.compile()
        self.assertIsInstance(model.loss, keras.losses.MeanSquaredError)

    def test_multiple_choice_scores_each_choice(self):
        model = GPT1Classifier(self.backbone, task="multiple_choice", lm_coef=0.0,
                               dropout=0.0)
        for k in (2, 4):
            x = _inputs((3, k, 7), np.full((3, k), 7) - np.arange(k))
            logits = _np(model(x))
            self.assertEqual(logits.shape, (3, k))
            hidden = self._hidden(x).reshape(3, k, 7, -1)
            w, b = _head(model)
            last = 6 - np.arange(k)
            expected = np.stack(
                [hidden[:, j, last[j]] @ w[:, 0] + b[0] for j in range(k)], axis=1)
            np.testing.assert_allclose(logits, expected, atol=1e-5)

    def test_auxiliary_loss_matches_direct_computation(self):
        for task, shape, lengths in [
            ("classification", (2, 8), [8, 3]),
            ("multiple_choice", (2, 3, 6), [[6, 4, 2], [5, 5, 3]]),
        ]:
            num_classes = None if task == "multiple_choice" else 4
            model = GPT1Classifier(self.backbone, num_classes=num_classes, task=task,
                                   lm_coef=0.5, dropout=0.0)
            x = _inputs(shape, lengths, seed=1)
            y = np.array([1, 2], "int32")
            y_pred = model(x, training=True)
            model.compile()
            total = float(_np(model.compute_loss(x, y, y_pred)))

            # Direct: task cross-entropy + 0.5 * per-token LM cross-entropy.
            t = shape[-1]
            hidden = self._hidden(x)
            emb = _np(self.backbone.token_embedding.embeddings)
            log_p = _log_softmax(hidden @ emb.T)  # (N, T, V)
            ids = x["token_ids"].reshape(-1, t)
            mask = x["padding_mask"].reshape(-1, t)
            nll = -np.take_along_axis(log_p[:, :-1], ids[:, 1:, None], -1)[..., 0]
            lm = (nll * mask[:, 1:]).sum() / mask[:, 1:].sum()
            task_loss = -_log_softmax(_np(y_pred))[np.arange(2), y].mean()
            np.testing.assert_allclose(total, task_loss + 0.5 * lm, rtol=1e-4)
            np.testing.assert_allclose(
                float(_np(language_model_loss(
                    keras.ops.convert_to_tensor((hidden @ emb.T).astype("float32")),
                    ids, mask))), lm, rtol=1e-5)
            # The compiled train step (every backend) minimises the same total.
            model.compile(optimizer=keras.optimizers.SGD(0.0))
            step_loss = model.train_on_batch(x, y, return_dict=True)["loss"]
            np.testing.assert_allclose(float(step_loss), task_loss + 0.5 * lm, rtol=1e-4)
            # Not in inference; never with lm_coef=0.
            model(x, training=False)
            np.testing.assert_allclose(
                float(_np(model.compute_loss(x, y, y_pred))), task_loss, rtol=1e-4)

    def test_lm_coef_zero_has_no_lm_head(self):
        model = GPT1Classifier(self.backbone, num_classes=2, lm_coef=0.0)
        names = [layer.name for layer in model.layers]
        self.assertNotIn("auxiliary_lm_loss", names)
        model(_inputs((2, 5), [5, 3]), training=True)
        self.assertEqual(model.losses, [])

    def test_bad_arguments_name_the_value(self):
        with self.assertRaisesRegex(ValueError, "num_classes=None"):
            GPT1Classifier(self.backbone, task="entailment")
        with self.assertRaisesRegex(ValueError, "num_classes=3"):
            GPT1Classifier(self.backbone, num_classes=3, task="multiple_choice")
        with self.assertRaisesRegex(ValueError, "task='ranking'"):
            GPT1Classifier(self.backbone, num_classes=2, task="ranking")
        with self.assertRaisesRegex(ValueError, "lm_coef=-1"):
            GPT1Classifier(self.backbone, num_classes=2, lm_coef=-1)
        with self.assertRaisesRegex(ValueError, "regression"):
            GPT1Classifier(self.backbone, num_classes=1)

    def test_fit_lowers_the_loss_and_keras_round_trip(self):
        model = GPT1Classifier(self.backbone, num_classes=2, task="entailment",
                               lm_coef=0.5)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        x = _inputs((8, 6), [6, 5, 4, 3, 6, 5, 4, 3], seed=2)
        y = np.array([0, 1] * 4, "int32")
        history = model.fit(x, y, batch_size=4, epochs=8, verbose=0)
        self.assertLess(history.history["loss"][-1], history.history["loss"][0])
        path = os.path.join(self.create_tempdir().full_path, "clf.keras")
        model.save(path)
        clone = keras.saving.load_model(path)
        self.assertIsInstance(clone, GPT1Classifier)
        self.assertEqual(clone.get_config()["lm_coef"], 0.5)
        self.assertEqual(clone.task, "entailment")
        np.testing.assert_allclose(_np(clone.predict(x, verbose=0)),
                                   _np(model.predict(x, verbose=0)), atol=1e-5)


class RawStringsTest(absltest.TestCase):
    def test_fit_predict_and_save_on_raw_strings(self):
        from gpt1_keras.preprocessing import GPT1ClassifierPreprocessor
        from gpt1_keras.tokenizers import GPT1Tokenizer

        keras.utils.set_random_seed(0)
        preprocessor = GPT1ClassifierPreprocessor(GPT1Tokenizer(), "classification",
                                                  sequence_length=16)
        model = GPT1Classifier(GPT1Backbone.from_preset("gpt1_tiny"), num_classes=2,
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
        np.testing.assert_allclose(clone.predict(x[:3], verbose=0), probs, atol=1e-5)


if __name__ == "__main__":
    absltest.main()
