"""LSTMBackbone: a NumPy LSTM reference, padding, size, serialization, the GPT-1
task heads on it (LM, classifier, auxiliary loss), training and the cached step
(greedy generation on it: tests/models/generation_test.py)."""

import os
import tempfile

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.models import GPT1Classifier
from gpt1_keras.models import LSTMBackbone
from gpt1_keras.models import backbone_class
from gpt1_keras.models import build_backbone
from gpt1_keras.models import lstm_backbone_presets
from gpt1_keras.models.gpt1_presets import get_preset
from tests import test_case
from tests.test_case import TINY_LSTM_BACKBONE as TINY
from tests.test_case import TINY_VOCABULARY_SIZE as VOCAB
from tests.test_case import to_numpy as _np

CONTEXT = TINY["max_sequence_length"]


def _tiny(seed=0, **overrides):
    """A tiny backbone with the same NumPy-drawn weights on every backend (wide enough
    that the gates saturate sometimes and next-token logits are well separated)."""
    return test_case.assign_random_weights(LSTMBackbone(**{**TINY, **overrides}), seed)


def _inputs(shape, lengths, seed=0):
    """Random ids (junk in the padding too) with right padding of `lengths`."""
    return test_case.random_inputs(shape, lengths, seed=seed, junk_padding=True)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _numpy_backbone(backbone, ids, mask):
    """The backbone in float64 NumPy: embed, LSTM (gates i, f, g, o), project."""
    emb = _np(backbone.token_embedding.embeddings).astype("float64")
    w, u, b = (_np(v).astype("float64") for v in backbone.lstm.cell.weights)
    kernel, bias = (_np(v).astype("float64") for v in backbone.output_projection.weights)
    units = u.shape[0]
    x = emb[ids]  # (B, T, C)
    h = np.zeros((ids.shape[0], units))
    c = np.zeros_like(h)
    outputs = []
    for t in range(ids.shape[1]):
        z = x[:, t] @ w + h @ u + b  # (B, 4U)
        i, f, g, o = (z[:, k * units : (k + 1) * units] for k in range(4))
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        outputs.append(h)
    hidden = np.stack(outputs, 1) @ kernel + bias  # (B, T, U) -> (B, T, C)
    return hidden * mask[..., None]


def _lstm_parameters(vocabulary_size, hidden_dim, lstm_units, **unused):
    c, u = hidden_dim, lstm_units
    return vocabulary_size * c + 4 * (c * u + u * u + u) + (u * c + c)


class LSTMBackboneTest(absltest.TestCase):
    def test_output_shape_and_variable_lengths(self):
        backbone = LSTMBackbone(**TINY)
        for length in (1, 5, CONTEXT):
            hidden = backbone(_inputs((2, length), [length, 1]))
            self.assertEqual(tuple(hidden.shape), (2, length, 16))

    def test_matches_a_numpy_lstm(self):
        backbone = _tiny()
        x = _inputs((3, 9), [9, 6, 1], seed=1)
        expected = _numpy_backbone(backbone, x["token_ids"], x["padding_mask"])
        self.assertGreater(np.abs(expected).mean(), 0.1)  # not a near-zero output
        np.testing.assert_allclose(_np(backbone(x)), expected, atol=2e-5)

    def test_right_padding_does_not_change_real_positions(self):
        backbone = _tiny()
        x = _inputs((3, 10), [10, 4, 7], seed=2)
        hidden = _np(backbone(x))
        for row, length in enumerate([10, 4, 7]):
            alone = {"token_ids": x["token_ids"][row : row + 1, :length],
                     "padding_mask": np.ones((1, length), "int32")}
            np.testing.assert_allclose(hidden[row, :length], _np(backbone(alone))[0],
                                       atol=1e-5, err_msg=f"row {row}")
            np.testing.assert_array_equal(hidden[row, length:], 0.0)
        # Other junk in the padding: the same outputs.
        other = dict(x, token_ids=np.where(x["padding_mask"] == 1, x["token_ids"], 7))
        np.testing.assert_allclose(_np(backbone(other)), hidden, atol=1e-6)

    def test_small_preset_matches_gpt1_small_size(self):
        # The closed form counts what Keras builds (checked on two small sizes), so
        # lstm_small is counted without building it (its orthogonal init is slow).
        for arguments in (lstm_backbone_presets["lstm_tiny"], TINY):
            built = LSTMBackbone(**arguments).count_params()
            self.assertEqual(built, _lstm_parameters(**arguments))
        lstm = get_preset("lstm_small", architecture="lstm")
        transformer = build_backbone("transformer", "gpt1_small")
        ratio = _lstm_parameters(**lstm) / transformer.count_params()
        self.assertBetween(ratio, 0.98, 1.02)
        # Same tokenizer and embedding width as the transformer it is matched to.
        self.assertEqual(lstm["vocabulary_size"], transformer.vocabulary_size)
        self.assertEqual(lstm["hidden_dim"], transformer.hidden_dim)
        self.assertEqual(lstm["max_sequence_length"], transformer.max_sequence_length)

    def test_keras_round_trip(self):
        lm = GPT1CausalLM(_tiny(dropout=0.2, name="lstm_bb"))
        x = _inputs((2, 8), [8, 5])
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "lm.keras")
            lm.save(path)
            loaded = keras.saving.load_model(path)
        self.assertIsInstance(loaded.backbone, LSTMBackbone)
        self.assertEqual(loaded.backbone.get_config(), lm.backbone.get_config())
        self.assertEqual(loaded.backbone.get_config()["dropout"], 0.2)
        np.testing.assert_allclose(_np(loaded(x)), _np(lm(x)), atol=1e-6)
        clone = LSTMBackbone.from_config(lm.backbone.get_config())
        self.assertEqual(clone.get_config(), lm.backbone.get_config())

    def test_mixed_precision_round_trip(self):
        backbone = LSTMBackbone(**TINY, dtype="mixed_bfloat16")
        hidden = backbone(_inputs((2, 6), [6, 3]))
        self.assertEqual(keras.backend.standardize_dtype(hidden.dtype), "bfloat16")
        self.assertEqual(backbone.lstm.cell.kernel.dtype, "float32")
        self.assertTrue(np.all(np.isfinite(_np(keras.ops.cast(hidden, "float32")))))
        clone = LSTMBackbone.from_config(backbone.get_config())
        self.assertEqual(clone.dtype_policy.name, "mixed_bfloat16")

    def test_architecture_and_preset_errors_name_the_value(self):
        self.assertIs(backbone_class("lstm"), LSTMBackbone)
        with self.assertRaisesRegex(ValueError, "architecture='rnn'"):
            backbone_class("rnn")
        with self.assertRaisesRegex(ValueError, "lstm_mini, lstm_small, lstm_tiny. 'gpt1_small' "
                                                "is a preset of architecture='transformer'"):
            build_backbone("lstm", "gpt1_small")
        with self.assertRaisesRegex(ValueError, "gpt1, gpt1_mini, gpt1_small, gpt1_tiny.*"
                                                "'lstm_tiny' is a preset of architecture='lstm'"):
            build_backbone("transformer", "lstm_tiny")
        with self.assertRaisesRegex(ValueError, "architecture='lstm'"):
            GPT1Backbone.from_architecture("lstm_small")  # the transformer's own lookup
        with self.assertRaisesRegex(ValueError, r"no argument\(s\) \['num_heads'\]"):
            build_backbone("lstm", "lstm_tiny", num_heads=2)
        backbone = build_backbone("lstm", "lstm_tiny", lstm_units=8, name="b")
        self.assertEqual((backbone.lstm_units, backbone.name), (8, "b"))

    def test_task_presets_pick_the_architecture_of_the_preset(self):
        from gpt1_keras.models.gpt1_presets import matching_preset

        self.assertIsInstance(GPT1CausalLM.from_architecture("lstm_tiny", lstm_units=8).backbone,
                              LSTMBackbone)
        self.assertIsInstance(GPT1Classifier.from_architecture("lstm_tiny", num_classes=2).backbone,
                              LSTMBackbone)
        self.assertIsInstance(GPT1CausalLM.from_architecture("gpt1_tiny").backbone, GPT1Backbone)
        self.assertEqual(matching_preset("gpt1_small", "lstm"), "lstm_small")
        self.assertEqual(matching_preset("lstm_tiny", "transformer"), "gpt1_tiny")
        self.assertEqual(matching_preset("gpt1", "transformer"), "gpt1")
        with self.assertRaisesRegex(ValueError, "'gpt1' has no counterpart"):
            matching_preset("gpt1", "lstm")


class LSTMTasksTest(absltest.TestCase):
    def test_lm_logits_score_and_loss_against_numpy(self):
        backbone = _tiny()
        lm = GPT1CausalLM(backbone)
        x = _inputs((3, 8), [8, 5, 2], seed=3)
        ids, mask = x["token_ids"], x["padding_mask"]
        emb = _np(backbone.token_embedding.embeddings).astype("float64")
        logits = _numpy_backbone(backbone, ids, mask) @ emb.T  # the tied head
        np.testing.assert_allclose(_np(lm(x)), logits, atol=5e-5)

        log_p = test_case.log_softmax(logits)[:, :-1]
        next_log_p = np.take_along_axis(log_p, ids[:, 1:, None], -1)[..., 0] * mask[:, 1:]
        expected = np.pad(next_log_p, ((0, 0), (1, 0)))
        np.testing.assert_allclose(_np(lm.score(ids, mask)), expected, atol=5e-5)

        # The compiled LM loss: weighted next-token cross-entropy.
        lm.compile()
        y, weights = ids[:, 1:], mask[:, 1:].astype("float32")
        inputs = {"token_ids": ids[:, :-1], "padding_mask": mask[:, :-1]}
        loss = lm.evaluate(inputs, y, sample_weight=weights, verbose=0, return_dict=True)["loss"]
        nll = -(next_log_p * mask[:, 1:]).sum() / ids.shape[0] / (ids.shape[1] - 1)
        np.testing.assert_allclose(loss, nll, rtol=1e-4)

    def test_classifier_heads(self):
        backbone = _tiny()
        model = GPT1Classifier(backbone, num_classes=3, lm_coef=0.0, dropout=0.0)
        x = _inputs((3, 8), [8, 5, 2], seed=4)
        logits = _np(model(x))
        head = model.get_layer("classifier_head")
        hidden = _numpy_backbone(backbone, x["token_ids"], x["padding_mask"])
        # The classify token is the last real one: positions 7, 4, 1.
        expected = hidden[np.arange(3), [7, 4, 1]] @ _np(head.kernel) + _np(head.bias)
        np.testing.assert_allclose(logits, expected, atol=2e-5)

        # The head type is the third argument (being renamed from `task` to `head`).
        choices = GPT1Classifier(backbone, None, "multiple_choice", dropout=0.0)
        x = _inputs((2, 4, 6), [[6, 4, 2, 1], [5, 5, 3, 6]], seed=5)
        self.assertEqual(_np(choices(x)).shape, (2, 4))

    def test_auxiliary_lm_loss_against_direct_computation(self):
        backbone = _tiny(dropout=0.0)  # a deterministic training pass
        emb = _np(backbone.token_embedding.embeddings).astype("float64")
        for head, shape, lengths in [
            ("classification", (2, 8), [8, 3]),
            ("multiple_choice", (2, 3, 6), [[6, 4, 2], [5, 5, 3]]),
        ]:
            num_classes = None if head == "multiple_choice" else 4
            model = GPT1Classifier(backbone, num_classes, head, lm_coef=0.5, dropout=0.0)
            x = _inputs(shape, lengths, seed=6)
            y = np.array([1, 2], "int32")
            y_pred = model(x, training=True)
            model.compile(optimizer=keras.optimizers.SGD(0.0))
            total = float(_np(model.compute_loss(x, y, y_pred)))

            t = shape[-1]
            ids = x["token_ids"].reshape(-1, t)
            mask = x["padding_mask"].reshape(-1, t)
            log_p = test_case.log_softmax(_numpy_backbone(backbone, ids, mask) @ emb.T)
            nll = -np.take_along_axis(log_p[:, :-1], ids[:, 1:, None], -1)[..., 0]
            lm_loss = (nll * mask[:, 1:]).sum() / mask[:, 1:].sum()
            task_loss = -test_case.log_softmax(_np(y_pred).astype("float64"))[np.arange(2), y].mean()
            np.testing.assert_allclose(total, task_loss + 0.5 * lm_loss, rtol=1e-4, err_msg=head)
            if head == "classification":  # the compiled train step minimises the same
                step = model.train_on_batch(x, y, return_dict=True)["loss"]
                np.testing.assert_allclose(float(step), task_loss + 0.5 * lm_loss, rtol=1e-4)
            # Inference adds no LM loss.
            model(x, training=False)
            np.testing.assert_allclose(float(_np(model.compute_loss(x, y, y_pred))),
                                       task_loss, rtol=1e-4)

    def test_fit_on_tf_data_lowers_the_loss(self):
        import tensorflow as tf

        keras.utils.set_random_seed(0)
        vocab = 50  # +3 (mod 50) visits every token: 24 updates learn it on 3 backends
        lm = GPT1CausalLM(LSTMBackbone(**{**TINY, "vocabulary_size": vocab}))
        lm.compile(optimizer=keras.optimizers.Adam(3e-2))
        # A learnable stream: each token is the previous one plus 3 (mod vocab).
        starts = np.random.default_rng(0).integers(0, vocab, size=(32, 1))
        ids = ((starts + 3 * np.arange(CONTEXT + 1)) % vocab).astype("int32")
        mask = np.ones_like(ids[:, :-1])
        ds = tf.data.Dataset.from_tensor_slices(
            ({"token_ids": ids[:, :-1], "padding_mask": mask}, ids[:, 1:], mask.astype("float32"))
        ).batch(8)
        history = lm.fit(ds, epochs=6, verbose=0).history["loss"]
        self.assertGreater(history[0], 3.5)  # starts near log(50) = 3.9 ...
        self.assertLess(history[-1], 0.6 * history[0], history)  # ... and learns


class LSTMGenerationTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lm = GPT1CausalLM(_tiny(dropout=0.0))

    def test_cached_logits_equal_full_forward_at_every_step(self):
        ids = np.random.default_rng(7).integers(0, VOCAB, size=(2, 12)).astype("int32")
        cache = self.lm.backbone.empty_cache(2, CONTEXT)
        self.assertEqual([tuple(c.shape) for c in cache], [(2, CONTEXT, 24)] * 2)
        full = _np(self.lm({"token_ids": ids, "padding_mask": np.ones_like(ids)}))
        logits, hidden, cache = self.lm.call_with_cache(ids[:, :4], cache, 0)
        np.testing.assert_allclose(_np(logits), full[:, :4], atol=1e-5)
        self.assertEqual(tuple(hidden.shape), (2, 4, 16))
        for index in range(4, 12):
            logits, _, cache = self.lm.call_with_cache(ids[:, index : index + 1], cache, index)
            np.testing.assert_allclose(_np(logits)[:, 0], full[:, index], atol=1e-5,
                                       err_msg=f"step {index}")
        # Rewinding: a call at position 2 starts from the state after position 1.
        logits, _, _ = self.lm.call_with_cache(ids[:, 2:5], cache, 2)
        np.testing.assert_allclose(_np(logits), full[:, 2:5], atol=1e-5)

    def test_cache_longer_than_context_is_an_error(self):
        with self.assertRaisesRegex(ValueError, f"context of {CONTEXT}.*max_length=17"):
            self.lm.backbone.empty_cache(1, CONTEXT + 1)


if __name__ == "__main__":
    absltest.main()
