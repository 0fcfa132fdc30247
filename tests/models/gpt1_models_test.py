"""GPT1Backbone and GPT1CausalLM: presets, serialization, training, scoring."""

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.models import backbone_presets
from tests import test_case
from tests.test_case import TINY_BACKBONE
from tests.test_case import to_numpy


def _batch(batch=4, length=8, seed=0):
    """Random ids; row 1 has 3 padded positions at the end."""
    lengths = np.full(batch, length)
    lengths[1] = length - 3
    return test_case.random_inputs((batch, length), lengths, seed=seed)


def _expected_parameters(vocabulary_size, num_layers, hidden_dim, intermediate_dim,
                         max_sequence_length, **unused):
    c, f = hidden_dim, intermediate_dim
    block = (c * 3 * c + 3 * c) + (c * c + c) + (c * f + f) + (f * c + c) + 4 * c
    return vocabulary_size * c + max_sequence_length * c + num_layers * block


class GPT1BackboneTest(test_case.TestCase):
    def test_backbone_basics(self):
        self.run_backbone_test(
            GPT1Backbone,
            {**TINY_BACKBONE, "dropout": 0.2},
            test_case.random_inputs((2, 8)),
            expected_output_shape=(2, 8, TINY_BACKBONE["hidden_dim"]),
            variable_lengths=(1, 5),
        )

    def test_presets_have_the_expected_size(self):
        for name, preset in backbone_presets.items():
            if name == "gpt1":
                continue  # checked below without building twice
            backbone = GPT1Backbone.from_architecture(name)
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
        with self.assertRaisesRegex(ValueError, "gpt3.*gpt1, gpt1_mini, gpt1_small, gpt1_tiny"):
            GPT1Backbone.from_architecture("gpt3")

    def test_initializer_is_gpt1s_normal(self):
        backbone = GPT1Backbone.from_architecture("gpt1_tiny")
        # N(0, 0.02) for the embeddings and the kernels (Keras defaults are wider).
        for weight in (backbone.token_embedding.embeddings,
                       backbone.position_embedding.embeddings,
                       backbone.transformer_layers[0].attn.c_attn.kernel,
                       backbone.transformer_layers[1].c_fc.kernel):
            values = to_numpy(weight)
            self.assertAlmostEqual(float(values.std()), 0.02, delta=0.02 * 0.05, msg=weight.path)
            self.assertAlmostEqual(float(values.mean()), 0.0, delta=0.002, msg=weight.path)
        self.assertEqual(np.abs(to_numpy(backbone.transformer_layers[0].c_fc.bias)).max(), 0)


class GPT1CausalLMTest(test_case.TestCase):
    def test_causal_lm_basics(self):
        x = _batch(batch=4, length=8)
        y = np.roll(x["token_ids"], -1, axis=1)
        self.run_task_test(
            GPT1CausalLM,
            {"backbone": GPT1Backbone(**TINY_BACKBONE)},
            (x, y, x["padding_mask"]),
            expected_output_shape=(4, 8, TINY_BACKBONE["vocabulary_size"]),
        )

    def test_logits_are_tied_to_token_embedding(self):
        lm = GPT1CausalLM(GPT1Backbone(**TINY_BACKBONE))
        x = _batch()
        hidden = to_numpy(lm.backbone(x))
        table = to_numpy(lm.backbone.token_embedding.embeddings)
        self.assertAllClose(lm(x), hidden @ table.T, atol=1e-5)

    def test_score_matches_log_softmax(self):
        lm = GPT1CausalLM(GPT1Backbone(**TINY_BACKBONE))
        x = _batch()
        logits = to_numpy(lm(x)).astype("float64")
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        ids, mask = x["token_ids"], x["padding_mask"]
        expected = np.zeros(ids.shape)
        for b in range(ids.shape[0]):
            for t in range(1, ids.shape[1]):
                if mask[b, t]:
                    expected[b, t] = log_probs[b, t - 1, ids[b, t]]
        self.assertAllClose(lm.score(ids, mask), expected, atol=1e-4)
        # Without a mask every position after the first is scored.
        full = to_numpy(lm.score(ids))
        self.assertTrue(np.all(full[:, 1:] < 0), full)
        self.assertAllClose(full[:, 0], np.zeros(ids.shape[0]))

    def test_mixed_precision_cache_matches_float32(self):
        lm = GPT1CausalLM(GPT1Backbone(**TINY_BACKBONE))
        mixed = GPT1CausalLM(GPT1Backbone(**TINY_BACKBONE, dtype="mixed_bfloat16"))
        mixed.set_weights(lm.get_weights())
        ids = test_case.random_inputs((2, 8), seed=3)["token_ids"]
        full = to_numpy(lm({"token_ids": ids, "padding_mask": np.ones_like(ids)}))
        # Prefill 5 positions, then decode the last 3 one at a time (bfloat16 cache).
        cache = mixed.backbone.empty_cache(2, 8)
        self.assertEqual(keras.backend.standardize_dtype(cache[0].dtype), "bfloat16")
        logits, _, cache = mixed.call_with_cache(ids[:, :5], cache, 0)
        steps = [logits]
        for t in range(5, 8):
            logits, _, cache = mixed.call_with_cache(ids[:, t:t + 1], cache, t)
            steps.append(logits)
        cached = to_numpy(keras.ops.cast(keras.ops.concatenate(steps, axis=1), "float32"))
        # Within 2% of the largest float32 logit (bfloat16 keeps 8 mantissa bits).
        scale = np.abs(full).max()
        self.assertLessEqual(np.abs(cached - full).max(), 0.02 * scale)

    def test_fit_reduces_loss_on_a_dataset(self):
        # Seeded, so every run draws the same weights (96-98% on the three backends).
        keras.utils.set_random_seed(1)
        vocabulary_size = TINY_BACKBONE["vocabulary_size"]
        lm = GPT1CausalLM(GPT1Backbone(**TINY_BACKBONE, dropout=0.0))
        lm.compile(optimizer=keras.optimizers.Adam(1e-2))
        # A repeating pattern the model can learn: next token = (token + 1) % V.
        ids = (np.arange(8)[None, :] + np.arange(32)[:, None]) % vocabulary_size
        x = {"token_ids": ids[:, :-1].astype("int32"),
             "padding_mask": np.ones((32, 7), "int32")}
        y = ids[:, 1:].astype("int32")
        history = lm.fit(x, y, batch_size=8, epochs=8, verbose=0)
        losses = history.history["loss"]
        self.assertLess(losses[-1], 0.5 * losses[0])
        predicted = to_numpy(lm.predict(x, verbose=0)).argmax(-1)
        self.assertGreater(np.mean(predicted == y), 0.9)


if __name__ == "__main__":
    absltest.main()
