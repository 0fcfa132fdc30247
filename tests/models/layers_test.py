"""GPT-1 layers against NumPy references written from the paper (see docs/model.md)."""

import math

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.layers import AuxiliaryLMLoss
from gpt1_keras.layers import CausalSelfAttention
from gpt1_keras.layers import ClassifyTokenPooler
from gpt1_keras.layers import FlattenSequences
from gpt1_keras.layers import GPT1DecoderBlock
from gpt1_keras.layers import PositionEmbedding
from gpt1_keras.layers import UnflattenSequences
from gpt1_keras.layers import gpt1_initializer
from gpt1_keras.layers import language_model_loss
from gpt1_keras.layers import next_token_log_probs
from tests import test_case
from tests.test_case import to_numpy


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def _layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _reference_attention(x, w_attn, b_attn, w_proj, b_proj, num_heads, mask=None):
    batch, length, width = x.shape
    head = width // num_heads
    q, k, v = np.split(x @ w_attn + b_attn, 3, axis=-1)
    split = lambda t: t.reshape(batch, length, num_heads, head).transpose(0, 2, 1, 3)
    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head)
    allowed = np.tril(np.ones((length, length), bool))[None, None]
    if mask is not None:
        allowed = allowed & mask[:, None, None, :].astype(bool)
    scores = np.where(allowed, scores, -1e9)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, width)
    return out @ w_proj + b_proj


def _randomize(layer, seed=0):
    rng = np.random.default_rng(seed)
    for variable in layer.weights:
        variable.assign(rng.normal(0, 0.3, variable.shape).astype("float32"))


class CausalSelfAttentionTest(test_case.TestCase):
    def test_matches_reference_and_is_causal(self):
        x = np.random.default_rng(1).normal(size=(2, 7, 16)).astype("float32")
        layer = CausalSelfAttention(num_heads=4)
        layer.build(x.shape)
        _randomize(layer)
        mask = np.ones((2, 7), "int32")
        mask[1, 5:] = 0
        expected = _reference_attention(
            x, *[to_numpy(w) for w in (layer.c_attn.kernel, layer.c_attn.bias,
                                  layer.c_proj.kernel, layer.c_proj.bias)], 4, mask
        )
        got = to_numpy(layer(x, padding_mask=mask))
        np.testing.assert_allclose(got, expected, atol=1e-4)
        # Changing a future token leaves earlier outputs untouched.
        changed = x.copy()
        changed[:, 4] += 1.0
        np.testing.assert_allclose(to_numpy(layer(changed))[:, :4], to_numpy(layer(x))[:, :4], atol=1e-5)
        self.assertGreater(np.abs(to_numpy(layer(changed))[:, 4] - to_numpy(layer(x))[:, 4]).max(), 1e-3)

    def test_padded_keys_are_ignored(self):
        x = np.random.default_rng(2).normal(size=(1, 6, 8)).astype("float32")
        mask = np.array([[0, 0, 1, 1, 1, 1]])  # left padding
        layer = CausalSelfAttention(num_heads=2)
        before = to_numpy(layer(x, padding_mask=mask))
        x[:, :2] = 100.0  # garbage in the padded slots
        after = to_numpy(layer(x, padding_mask=mask))
        np.testing.assert_allclose(after[:, 2:], before[:, 2:], atol=1e-5)

    def test_bad_arguments_are_named(self):
        with self.assertRaisesRegex(ValueError, "num_heads=3"):
            CausalSelfAttention(num_heads=3)(np.zeros((1, 2, 8), "float32"))
        with self.assertRaisesRegex(ValueError, "dropout=1.5"):
            CausalSelfAttention(num_heads=2, dropout=1.5)

    def test_config_round_trip(self):
        layer = CausalSelfAttention(num_heads=2, dropout=0.2, name="attn")
        clone = CausalSelfAttention.from_config(layer.get_config())
        self.assertEqual(clone.get_config(), layer.get_config())


class GPT1DecoderBlockTest(test_case.TestCase):
    def test_post_ln_block_matches_reference(self):
        x = np.random.default_rng(3).normal(size=(2, 5, 16)).astype("float32")
        block = GPT1DecoderBlock(num_heads=4, intermediate_dim=64, dropout=0.1)
        block.build(x.shape)
        _randomize(block, seed=4)
        w = to_numpy
        a = _reference_attention(
            x, w(block.attn.c_attn.kernel), w(block.attn.c_attn.bias),
            w(block.attn.c_proj.kernel), w(block.attn.c_proj.bias), 4,
        )
        n = _layer_norm(x + a, w(block.ln_1.gamma), w(block.ln_1.beta))
        m = _gelu_tanh(n @ w(block.c_fc.kernel) + w(block.c_fc.bias))
        m = m @ w(block.c_proj.kernel) + w(block.c_proj.bias)
        expected = _layer_norm(n + m, w(block.ln_2.gamma), w(block.ln_2.beta))
        np.testing.assert_allclose(to_numpy(block(x)), expected, atol=2e-4)
        self.assertEqual(block.ln_1.epsilon, 1e-5)

    def test_dropout_only_in_training(self):
        x = np.random.default_rng(5).normal(size=(2, 5, 16)).astype("float32")
        block = GPT1DecoderBlock(num_heads=4, intermediate_dim=64, dropout=0.5)
        np.testing.assert_array_equal(to_numpy(block(x)), to_numpy(block(x)))
        self.assertGreater(
            np.abs(to_numpy(block(x, training=True)) - to_numpy(block(x))).max(), 1e-3
        )


class PositionEmbeddingTest(test_case.TestCase):
    def test_rows_and_start_index(self):
        layer = PositionEmbedding(sequence_length=10)
        x = np.zeros((2, 4, 3), "float32")
        out = to_numpy(layer(x))
        table = to_numpy(layer.embeddings)
        np.testing.assert_array_equal(out[0], table[:4])
        np.testing.assert_array_equal(to_numpy(layer(x, start_index=6))[0], table[6:10])

    def test_too_long_input_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "exceeds the model's context of 10"):
            PositionEmbedding(sequence_length=10)(np.zeros((1, 11, 3), "float32"))


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


class NextTokenLogProbsTest(test_case.TestCase):
    def test_matches_a_loop_over_positions(self):
        rng = np.random.default_rng(6)
        logits = rng.normal(0, 3, size=(2, 5, 7)).astype("float32")
        ids = rng.integers(0, 7, size=(2, 5)).astype("int32")
        mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], "int32")
        log_p = _log_softmax(logits.astype("float64"))
        expected = np.array([[log_p[b, t, ids[b, t + 1]] * mask[b, t + 1]
                              for t in range(4)] for b in range(2)])
        got = to_numpy(next_token_log_probs(logits, ids, mask))
        self.assertEqual(got.dtype, np.float32)
        self.assertAllClose(got, expected, atol=1e-5)
        self.assertAllClose(next_token_log_probs(logits, ids)[1, 2:],
                            [log_p[1, 2, ids[1, 3]], log_p[1, 3, ids[1, 4]]], atol=1e-5)
        # The LM loss is their negative mean over the 6 real targets (4 + 2).
        self.assertAllClose(language_model_loss(logits, ids, mask),
                            -expected.sum() / 6, atol=1e-5)

    def test_softmax_runs_in_float32(self):
        # Computed in bfloat16 the result would be off by ~2e-3 (log 2 -> 0.6914).
        logits = keras.ops.cast(np.array([[[300.0, 300.0, 0.0], [0.0] * 3]]), "bfloat16")
        got = to_numpy(next_token_log_probs(logits, np.array([[0, 1]])))
        self.assertAllClose(got, [[-np.log(2.0)]], atol=1e-6)


class ClassifierLayersTest(test_case.TestCase):
    def test_pooler_picks_the_last_real_token(self):
        hidden = np.arange(24, dtype="float32").reshape(3, 4, 2)
        mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]])
        # Rows' last real positions: 3, 1, and 0 for an empty row.
        self.assertAllClose(ClassifyTokenPooler()(hidden, mask), hidden[[0, 1, 2], [3, 1, 0]])

    def test_flatten_and_unflatten_sequences(self):
        x = np.arange(2 * 3 * 4).reshape(2, 3, 4)
        flat = FlattenSequences()(x)
        self.assertAllClose(flat, x.reshape(6, 4))
        states = np.arange(6 * 5, dtype="float32").reshape(6, 5)  # one per sequence
        self.assertAllClose(UnflattenSequences()(states, x), states.reshape(2, 3, 5))

    def test_layers_keep_their_registered_names(self):
        # Saved `.keras` files name these classes; moving the code must not rename them.
        for cls in (ClassifyTokenPooler, FlattenSequences, UnflattenSequences,
                    AuxiliaryLMLoss):
            self.assertEqual(keras.saving.get_registered_name(cls), f"gpt1_keras>{cls.__name__}")


class InitializerTest(test_case.TestCase):
    def test_gpt1_initializer_is_normal_002(self):
        values = to_numpy(gpt1_initializer()((200, 500)))
        self.assertAlmostEqual(float(values.std()), 0.02, delta=2e-4)
        self.assertAlmostEqual(float(values.mean()), 0.0, delta=2e-4)
        # Fresh instances draw their own values.
        self.assertGreater(np.abs(to_numpy(gpt1_initializer()((4, 4))) -
                                  to_numpy(gpt1_initializer()((4, 4)))).max(), 0)


if __name__ == "__main__":
    absltest.main()
