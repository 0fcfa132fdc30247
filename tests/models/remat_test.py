"""Rematerialized blocks (`GPT1Backbone(remat=True)`) against the plain model.

The same weights and dropout seed states in a plain and a rematerialized `GPT1CausalLM`;
one SGD(1) training step (dropout active, padding, plain and chunked loss, with and
without XLA on TensorFlow and JAX) gives the same loss and the same gradient of every
variable, and the same seed states afterwards (the same masks drawn the same number of
times). A second test shows the block's forward pass really runs again in the backward
pass; a third, that the option survives the config and `from_preset`.
"""

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from gpt1_keras.layers import GPT1DecoderBlock
from tests import test_case
from tests.test_case import to_numpy

_BACKEND = keras.config.backend()
_JIT = {"tensorflow": (False, True), "jax": (False, True), "torch": (False,)}[_BACKEND]


def _lms(dropout=0.1):
    """A plain and a rematerialized tiny LM holding the same weights and seed states."""
    plain = test_case.tiny_lm(dropout=dropout)
    test_case.assign_random_weights(plain, stddev=0.2)
    remat = test_case.tiny_lm(dropout=dropout, remat=True)
    for target, source in zip(remat.variables, plain.variables):  # And seed states.
        target.assign(to_numpy(source))  # A copy: JAX steps donate their buffers.
    return plain, remat


def _step(lm, batch, jit_compile, **compile_kwargs):
    """`test_case.sgd_step` and the dropout seed states after it."""
    loss, grads = test_case.sgd_step(lm, batch, jit_compile, **compile_kwargs)
    return loss, grads, [to_numpy(v) for v in lm.non_trainable_variables if "seed" in v.path]


class RematTest(test_case.TestCase, parameterized.TestCase):
    @parameterized.product(jit_compile=_JIT, loss_chunk_size=(None, 4), dropout=(0.0, 0.1))
    def test_train_step_equals_plain(self, jit_compile, loss_chunk_size, dropout):
        (plain, remat), batch = _lms(dropout), test_case.padded_lm_batch(seed=3)
        kwargs = {"loss_chunk_size": loss_chunk_size}
        loss, grads, seeds = _step(remat, batch, jit_compile, **kwargs)
        plain_loss, plain_grads, plain_seeds = _step(plain, batch, jit_compile, **kwargs)
        self.assertAllClose(loss, plain_loss, atol=1e-6)
        self.assertLen(grads, len(plain.trainable_variables))
        for variable, grad, plain_grad in zip(plain.trainable_variables, grads, plain_grads):
            self.assertGreater(np.abs(plain_grad).max(), 0, msg=variable.path)
            self.assertAllClose(grad, plain_grad, atol=1e-6, msg=variable.path)
        # The embeddings' generator and two per block (attention, residual), at the
        # same states after the step: the same draws.
        self.assertLen(plain_seeds, 5 if dropout else 0)
        for got, want in zip(seeds, plain_seeds):
            np.testing.assert_array_equal(got, want)

    def test_dropout_is_active(self):
        # The equality above is not that of two dropout-free models.
        (plain, _), (x, _, _) = _lms(), test_case.padded_lm_batch(seed=3)
        self.assertFalse(np.allclose(to_numpy(plain(x, training=True)),
                                     to_numpy(plain(x, training=False)), atol=1e-3))

    def test_backward_pass_recomputes_the_block(self):
        """Count the block's forward passes in one eager training step: twice per block
        with `remat` (forward, then again in the backward pass), once without. On JAX
        the recomputation is in the step's jaxpr (a `checkpoint`/`remat` equation)
        instead: JAX re-runs the traced block, not the Python function."""
        (plain, remat), batch = _lms(), test_case.padded_lm_batch(seed=3)
        for lm, per_block in ((plain, 1), (remat, 2)):
            calls = []
            for block in lm.backbone.transformer_layers:
                forward = block._forward

                def counted(*args, _forward=forward, **kwargs):
                    calls.append(1)
                    return _forward(*args, **kwargs)

                block._forward = counted
            if _BACKEND == "jax":
                import jax

                lm.compile(optimizer=keras.optimizers.SGD(1.0))
                lm.build(batch[0]["token_ids"].shape)
                state = [v.value for v in lm.trainable_variables]

                def loss_fn(values, lm=lm):
                    y, _ = lm.stateless_call(
                        values, [v.value for v in lm.non_trainable_variables],
                        batch[0], training=True)
                    return keras.ops.sum(y)

                jaxpr = str(jax.make_jaxpr(jax.grad(loss_fn))(state))
                remat_eqns = jaxpr.count("checkpoint[") + jaxpr.count("remat")
                self.assertEqual(remat_eqns > 0, per_block == 2, msg=jaxpr[:300])
                continue
            lm.compile(optimizer=keras.optimizers.SGD(1.0), run_eagerly=True)
            lm.train_on_batch(*batch)  # The first step may also build (torch).
            calls.clear()
            lm.train_on_batch(*batch)
            self.assertLen(calls, per_block * len(lm.backbone.transformer_layers))

    def test_inference_and_cache_do_not_rematerialize(self):
        (plain, remat), (x, _, _) = _lms(), test_case.padded_lm_batch(seed=3)
        self.assertAllClose(remat(x, training=False), plain(x, training=False), atol=1e-6)
        # Rows padded after 7, 5 and 2 prompt tokens: generation fills the padding.
        for lm in (plain, remat):
            lm.compile(sampler="greedy")
        np.testing.assert_array_equal(remat.generate(x, stop_token_ids=None)["token_ids"],
                                      plain.generate(x, stop_token_ids=None)["token_ids"])

    def test_config_and_preset_keep_remat(self):
        from gpt1_keras.models import GPT1Backbone

        backbone = test_case.tiny_backbone(remat=True)
        self.assertTrue(backbone.get_config()["remat"])
        self.assertTrue(all(b.remat for b in backbone.transformer_layers))
        restored = GPT1Backbone.from_config(backbone.get_config())
        self.assertTrue(all(b.remat for b in restored.transformer_layers))
        block = GPT1DecoderBlock.from_config(backbone.transformer_layers[0].get_config())
        self.assertTrue(block.remat)
        # A preset saved without remat, loaded with it (and the reverse default).
        preset = self.create_tempdir().full_path + "/preset"
        test_case.tiny_backbone().save_to_preset(preset)
        loaded = GPT1Backbone.from_preset(preset, remat=True)
        self.assertTrue(all(b.remat for b in loaded.transformer_layers))
        self.assertFalse(GPT1Backbone.from_preset(preset).transformer_layers[0].remat)


if __name__ == "__main__":
    absltest.main()
