"""GPT1Backbone and GPT1CausalLM: presets, serialization, training, scoring."""

import os

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.models import backbone_presets

TINY = dict(
    vocabulary_size=50,
    num_layers=2,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=32,
    max_sequence_length=16,
)


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _batch(batch=4, length=8, vocab=50, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, size=(batch, length)).astype("int32")
    mask = np.ones_like(ids)
    mask[1, length - 3 :] = 0
    return {"token_ids": ids, "padding_mask": mask}


def _expected_parameters(vocabulary_size, num_layers, hidden_dim, intermediate_dim,
                         max_sequence_length, **unused):
    c, f = hidden_dim, intermediate_dim
    block = (c * 3 * c + 3 * c) + (c * c + c) + (c * f + f) + (f * c + c) + 4 * c
    return vocabulary_size * c + max_sequence_length * c + num_layers * block


class GPT1BackboneTest(absltest.TestCase):
    def test_presets_have_the_expected_size(self):
        for name, preset in backbone_presets.items():
            if name == "gpt1":
                continue  # checked below without building twice
            backbone = GPT1Backbone.from_preset(name)
            self.assertEqual(backbone.count_params(), _expected_parameters(**preset), name)
        gpt1 = backbone_presets["gpt1"]
        self.assertEqual(
            (gpt1["num_layers"], gpt1["hidden_dim"], gpt1["num_heads"],
             gpt1["intermediate_dim"], gpt1["max_sequence_length"]),
            (12, 768, 12, 3072, 512),
        )
        # ~117M: HF's 116.5M with 40,478 tokens plus the 3 special-token rows.
        self.assertEqual(_expected_parameters(**gpt1), 116_534_784 + 3 * 768)

    def test_unknown_preset_lists_known_ones(self):
        with self.assertRaisesRegex(ValueError, "gpt3.*gpt1, gpt1_small, gpt1_tiny"):
            GPT1Backbone.from_preset("gpt3")

    def test_output_shape_and_variable_lengths(self):
        backbone = GPT1Backbone(**TINY)
        for length in (1, 5, 16):
            hidden = backbone(_batch(batch=2, length=length))
            self.assertEqual(tuple(hidden.shape), (2, length, 16))

    def test_config_round_trip(self):
        backbone = GPT1Backbone(**TINY, dropout=0.2, name="bb")
        clone = GPT1Backbone.from_config(backbone.get_config())
        self.assertEqual(clone.get_config(), backbone.get_config())

    def test_mixed_precision(self):
        backbone = GPT1Backbone(**TINY, dtype="mixed_bfloat16")
        hidden = backbone(_batch())
        self.assertEqual(keras.backend.standardize_dtype(hidden.dtype), "bfloat16")
        self.assertEqual(backbone.token_embedding.embeddings.dtype, "float32")
        self.assertTrue(np.all(np.isfinite(_np(keras.ops.cast(hidden, "float32")))))


class GPT1CausalLMTest(absltest.TestCase):
    def test_logits_are_tied_to_token_embedding(self):
        lm = GPT1CausalLM(GPT1Backbone(**TINY))
        x = _batch()
        hidden = _np(lm.backbone(x))
        table = _np(lm.backbone.token_embedding.embeddings)
        np.testing.assert_allclose(_np(lm(x)), hidden @ table.T, atol=1e-5)

    def test_score_matches_log_softmax(self):
        lm = GPT1CausalLM(GPT1Backbone(**TINY))
        x = _batch()
        logits = _np(lm(x)).astype("float64")
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        ids, mask = x["token_ids"], x["padding_mask"]
        expected = np.zeros(ids.shape)
        for b in range(ids.shape[0]):
            for t in range(1, ids.shape[1]):
                if mask[b, t]:
                    expected[b, t] = log_probs[b, t - 1, ids[b, t]]
        np.testing.assert_allclose(_np(lm.score(ids, mask)), expected, atol=1e-4)

    def test_fit_reduces_loss_on_a_dataset(self):
        keras.utils.set_random_seed(0)
        lm = GPT1CausalLM(GPT1Backbone(**TINY, dropout=0.0))
        lm.compile(optimizer=keras.optimizers.Adam(1e-2))
        # A repeating pattern the model can learn: next token = (token + 1) % 50.
        ids = (np.arange(8)[None, :] + np.arange(32)[:, None]) % 50
        x = {"token_ids": ids[:, :-1].astype("int32"),
             "padding_mask": np.ones((32, 7), "int32")}
        y = ids[:, 1:].astype("int32")
        history = lm.fit(x, y, batch_size=8, epochs=8, verbose=0)
        losses = history.history["loss"]
        self.assertLess(losses[-1], 0.5 * losses[0])
        predicted = _np(lm.predict(x, verbose=0)).argmax(-1)
        self.assertGreater(np.mean(predicted == y), 0.9)

    def test_keras_file_round_trip(self):
        lm = GPT1CausalLM(GPT1Backbone(**TINY))
        x = _batch()
        path = os.path.join(self.create_tempdir().full_path, "lm.keras")
        lm.save(path)
        restored = keras.saving.load_model(path)
        self.assertIsInstance(restored, GPT1CausalLM)
        self.assertIsInstance(restored.backbone, GPT1Backbone)
        np.testing.assert_allclose(_np(restored(x)), _np(lm(x)), atol=1e-6)


if __name__ == "__main__":
    absltest.main()
