"""Fine-tuning's auxiliary LM loss, chunked, against the same loss over full logits.

`AuxiliaryLMLoss` computes `lm_coef * L_LM` of the tied head from the hidden states a
chunk of positions at a time. Here a `GPT1Classifier` (classification and multiple
choice, padded sequences, dropout) trained one SGD(1) step with the chunked loss (chunk
sizes that do not divide the positions) gives the same loss and every variable's
gradient as the same classifier computing the loss over the full logits
(`chunk_size=None`), with and without XLA; the value equals a NumPy float64 reference.
(`auxiliary_lm_loss_memory_test`: a step past 2^31 logits in bounded memory.)
"""

import keras
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized

from gpt1_keras.layers import AuxiliaryLMLoss
from gpt1_keras.models import GPT1Classifier
from tests import test_case
from tests.test_case import to_numpy

_JIT = {"tensorflow": (False, True), "jax": (False, True), "torch": (False,)}[
    keras.config.backend()]


def _classifier(head, chunk_size, dropout):
    backbone = test_case.tiny_backbone(dropout=dropout)
    test_case.assign_random_weights(backbone, seed=3, stddev=0.2)
    model = GPT1Classifier(backbone, None if head == "multiple_choice" else 3, head,
                           lm_coef=0.5, dropout=dropout)
    model.get_layer("auxiliary_lm_loss").chunk_size = chunk_size
    return model


class AuxiliaryLMLossTest(test_case.TestCase):
    @parameterized.product(
        head_shape=[("classification", (3, 9), [9, 4, 1]),
                    ("multiple_choice", (2, 3, 7), [[7, 5, 2], [6, 3, 7]])],
        # 7 divides neither 24 nor 36 positions (one chunk: gpt1_classifier_test).
        chunk_size=[7],
        jit_compile=_JIT,
    )
    def test_chunked_step_equals_full_logits_step(self, head_shape, chunk_size, jit_compile):
        head, shape, lengths = head_shape
        x = test_case.random_inputs(shape, lengths, seed=2)
        y = np.array([2, 0, 1][:shape[0]], "int32")
        results = []
        for size in (chunk_size, None):
            keras.utils.set_random_seed(5)  # the same dropout masks in both
            results.append(test_case.sgd_step(
                _classifier(head, size, dropout=0.1), (x, y), jit_compile))
        (chunked_loss, chunked_grads), (full_loss, full_grads) = results
        # Measured on the three backends: losses <= 2.4e-7 apart, gradients <= 6e-8
        # (float32 sums in another order); a 10x margin.
        self.assertAllClose(chunked_loss, full_loss, atol=2.5e-6)
        self.assertLen(chunked_grads, len(full_grads))
        for got, want in zip(chunked_grads, full_grads):
            self.assertAllClose(got, want, atol=6e-7)

    def test_value_equals_numpy_reference(self):
        model = _classifier("classification", chunk_size=5, dropout=0.0)
        x = test_case.random_inputs((3, 9), [9, 4, 1], seed=4)
        hidden = to_numpy(model.backbone(x)).astype("float64")
        emb = to_numpy(model.backbone.token_embedding.embeddings).astype("float64")
        log_p = test_case.log_softmax(hidden @ emb.T)
        ids, mask = x["token_ids"], x["padding_mask"]
        nll = -np.take_along_axis(log_p[:, :-1], ids[:, 1:, None], -1)[..., 0]
        want = (nll * mask[:, 1:]).sum() / mask[:, 1:].sum()
        layer = model.get_layer("auxiliary_lm_loss")
        got = layer.lm_loss(keras.ops.convert_to_tensor(hidden.astype("float32")), ids, mask)
        self.assertAllClose(got, want, atol=1e-5)
        # Added in training only, times lm_coef.
        model(x, training=False)
        self.assertEqual(model.losses, [])
        model(x, training=True)
        self.assertLen(model.losses, 1)
        self.assertAllClose(model.losses[0], 0.5 * want, atol=1e-5)

    def test_config_keeps_coefficient_and_chunk_size(self):
        layer = AuxiliaryLMLoss(None, lm_coef=0.25, chunk_size=64)
        config = layer.get_config()
        self.assertEqual((config["lm_coef"], config["chunk_size"]), (0.25, 64))
        self.assertNotIn("embedding", config)

if __name__ == "__main__":
    absltest.main()
