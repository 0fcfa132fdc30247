"""The chunked LM loss (`compile(loss_chunk_size=...)`) against the loss over full logits.

`chunked_cross_entropy_sum` against a NumPy float64 reference (value and both
gradients); `GPT1CausalLM` trained and evaluated with the chunked loss against
the same model compiled with the plain sparse cross-entropy over
`token_embedding(hidden, reverse=True)`: one SGD(1) step gives each variable's
gradient, with padding, dropout and chunk sizes that do not divide the
positions, with and without XLA on TensorFlow and JAX.
"""

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized
from keras import ops

from gpt1_keras.layers import chunked_cross_entropy_sum
from tests import test_case
from tests.test_case import to_numpy

# jit_compile settings each backend runs: XLA on TensorFlow and JAX, eager torch.
_JIT = {"tensorflow": (False, True), "jax": (False, True), "torch": (False,)}[
    keras.config.backend()]


def _reference(hidden, embeddings, labels, weights):
    """NumPy float64: the weighted loss sum and its gradients w.r.t. hidden and embeddings."""
    h = hidden.reshape(-1, hidden.shape[-1]).astype(np.float64)
    e = embeddings.astype(np.float64)
    y, w = labels.reshape(-1), weights.reshape(-1).astype(np.float64)
    log_probs = test_case.log_softmax(h @ e.T)
    total = -np.sum(w * log_probs[np.arange(len(y)), y])
    grad_logits = np.exp(log_probs)
    grad_logits[np.arange(len(y)), y] -= 1
    grad_logits *= w[:, None]
    return total, (grad_logits @ e).reshape(hidden.shape), grad_logits.T @ h


def _value_and_grads(fn, *args):
    """`fn(*args)` and its gradients w.r.t. every argument, on the current backend."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        args = [tf.constant(a) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(args)
            value = fn(*args)
        return value, tape.gradient(value, args)
    if backend == "jax":
        import jax

        return jax.value_and_grad(fn, argnums=tuple(range(len(args))))(*args)
    import torch

    args = [torch.tensor(a, requires_grad=True) for a in args]
    value = fn(*args)
    value.backward()
    return value.detach(), [a.grad for a in args]


class ChunkedCrossEntropySumTest(test_case.TestCase, parameterized.TestCase):
    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(0)
        self.hidden = rng.normal(size=(3, 5, 8)).astype("float32")  # 15 positions
        self.embeddings = rng.normal(size=(11, 8)).astype("float32")
        self.labels = rng.integers(0, 11, size=(3, 5)).astype("int32")
        self.weights = (rng.random((3, 5)) > 0.3).astype("float32")

    @parameterized.parameters(1, 4, 7, 15, 64)
    def test_value_and_gradients_equal_reference(self, chunk_size):
        total, grad_hidden, grad_embeddings = _reference(
            self.hidden, self.embeddings, self.labels, self.weights)
        labels, weights = ops.convert_to_tensor(self.labels), ops.convert_to_tensor(self.weights)
        value, (got_hidden, got_embeddings) = _value_and_grads(
            lambda h, e: chunked_cross_entropy_sum(h, e, labels, weights, chunk_size=chunk_size),
            self.hidden, self.embeddings)
        self.assertAllClose(value, total, atol=1e-4)
        self.assertAllClose(got_hidden, grad_hidden, atol=1e-5)
        self.assertAllClose(got_embeddings, grad_embeddings, atol=1e-5)
        # The loss-only path gives the same value.
        self.assertAllClose(chunked_cross_entropy_sum(
            self.hidden, self.embeddings, labels, weights, chunk_size=chunk_size,
            differentiable=False), total, atol=1e-4)

    def test_no_weights_is_weight_one(self):
        total, _, _ = _reference(self.hidden, self.embeddings, self.labels,
                                 np.ones_like(self.weights))
        self.assertAllClose(chunked_cross_entropy_sum(
            self.hidden, self.embeddings, self.labels, chunk_size=4), total, atol=1e-4)

    def test_bad_chunk_size(self):
        with self.assertRaisesRegex(ValueError, "chunk_size=0"):
            chunked_cross_entropy_sum(self.hidden, self.embeddings, self.labels, chunk_size=0)


def _lm():
    lm = test_case.tiny_lm(dropout=0.1)
    test_case.assign_random_weights(lm, stddev=0.2)
    return lm


def _step(lm, batch, jit_compile, **compile_kwargs):
    """`test_case.sgd_step`, then the weights and dropout seeds put back."""
    state = [to_numpy(v) for v in lm.variables]
    result = test_case.sgd_step(lm, batch, jit_compile, **compile_kwargs)
    for variable, value in zip(lm.variables, state):
        variable.assign(value)
    return result


class GPT1CausalLMChunkedLossTest(test_case.TestCase, parameterized.TestCase):
    @parameterized.product(chunk_size=(1, 5, 64), jit_compile=_JIT)
    def test_train_step_equals_plain_loss(self, chunk_size, jit_compile):
        lm, batch = _lm(), test_case.padded_lm_batch()
        plain_loss, plain_grads = _step(lm, batch, jit_compile)
        loss, grads = _step(lm, batch, jit_compile, loss_chunk_size=chunk_size)
        self.assertAllClose(loss, plain_loss, atol=1e-5)
        self.assertLen(grads, len(lm.trainable_variables))
        for variable, grad, plain_grad in zip(lm.trainable_variables, grads, plain_grads):
            self.assertGreater(np.abs(plain_grad).max(), 0, msg=variable.path)
            self.assertAllClose(grad, plain_grad, atol=1e-5, msg=variable.path)

    def test_plain_loss_is_weighted_cross_entropy_of_logits(self):
        # The plain reference: Keras' sparse cross-entropy of the logits, weighted.
        lm, (x, y, weights) = _lm(), test_case.padded_lm_batch()
        lm.compile()
        logits = to_numpy(lm(x, training=False)).astype(np.float64)
        log_probs = test_case.log_softmax(logits)
        picked = np.take_along_axis(log_probs, y[..., None], -1)[..., 0]
        expected = -np.sum(picked * weights) / y.size
        self.assertAllClose(lm.evaluate(x, y, sample_weight=weights, verbose=0,
                                        return_dict=True)["loss"], expected, atol=1e-5)

    @parameterized.product(jit_compile=_JIT)
    def test_evaluate_and_fit(self, jit_compile):
        (x, y, weights), plain_lm, lm = test_case.padded_lm_batch(seed=1), _lm(), _lm()
        # plain_lm and lm hold equal weights.
        plain_lm.compile(jit_compile=jit_compile)
        plain = plain_lm.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)
        lm.compile(jit_compile=jit_compile, loss_chunk_size=4)
        chunked = lm.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)
        self.assertEqual(list(chunked), ["loss"])  # No accuracy without logits.
        self.assertAllClose(chunked["loss"], plain["loss"], atol=1e-5)
        # fit with validation; predict still returns the logits.
        history = lm.fit(x, y, sample_weight=weights, validation_data=(x, y, weights),
                         epochs=2, verbose=0).history
        self.assertEqual(sorted(history), ["loss", "val_loss"])
        self.assertLess(history["loss"][1], history["loss"][0])
        self.assertEqual(lm.predict(x, verbose=0).shape, (3, 7, test_case.TINY_VOCABULARY_SIZE))

    def test_compile_errors(self):
        lm = test_case.tiny_lm()
        with self.assertRaisesRegex(ValueError, "loss_chunk_size=0"):
            lm.compile(loss_chunk_size=0)
        with self.assertRaisesRegex(ValueError, "needs loss=\"auto\""):
            lm.compile(loss="mse", loss_chunk_size=8)
        with self.assertRaisesRegex(ValueError, "metrics"):
            lm.compile(weighted_metrics=["accuracy"], loss_chunk_size=8)


if __name__ == "__main__":
    absltest.main()
