"""Fine-tuning's auxiliary LM loss, chunked, against the same loss over full logits.

`AuxiliaryLMLoss` computes `lm_coef * L_LM` of the tied head from the hidden states a
chunk of positions at a time. Here a `GPT1Classifier` (classification and multiple
choice, padded sequences, dropout) trained one SGD(1) step with the chunked loss (chunk
sizes that do not divide the positions) gives the same loss and every variable's
gradient as the same classifier computing the loss over the full logits
(`chunk_size=None`), with and without XLA; the value equals a NumPy float64 reference.
And a step whose logits would hold more than 2^31 elements runs in bounded memory.
"""

import json
import os
import subprocess
import sys
import textwrap

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
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
        chunk_size=[7, 1024],  # 7 divides neither 24 nor 36 positions
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

    def test_step_past_two_to_the_31_logits_runs_in_bounded_memory(self):
        # 129 x 256 positions x 65,536 tokens = 2.16e9 > 2^31 logits (8.7 GB in
        # float32); hidden size 8 keeps the step cheap. A fresh process, so that its
        # peak resident memory is this step's alone.
        script = textwrap.dedent("""
            import json, resource, numpy as np, keras
            from gpt1_keras.models import GPT1Backbone, GPT1Classifier
            backbone = GPT1Backbone(vocabulary_size=65536, num_layers=1, num_heads=1,
                                    hidden_dim=8, intermediate_dim=16,
                                    max_sequence_length=256, dropout=0.0)
            model = GPT1Classifier(backbone, num_classes=2, lm_coef=0.5, dropout=0.0)
            model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
            rng = np.random.default_rng(0)
            x = {"token_ids": rng.integers(0, 65536, (129, 256)).astype("int32"),
                 "padding_mask": np.ones((129, 256), "int32")}
            y = np.zeros((129,), "int32")
            loss = model.train_on_batch(x, y, return_dict=True)["loss"]
            print(json.dumps({"loss": float(loss), "peak_kb":
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
        """)
        env = {**os.environ, "KERAS_BACKEND": keras.config.backend(), "TF_CPP_MIN_LOG_LEVEL": "3",
               "PYTHONPATH": _ROOT}
        result = subprocess.run([sys.executable, "-c", script], env=env, cwd=_ROOT,
                                capture_output=True, text=True, timeout=900)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        out = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertTrue(np.isfinite(out["loss"]), out)
        # Task loss ~log 2 plus 0.5 x the LM loss of a near-uniform model, ~log 65536.
        self.assertAllClose(out["loss"], np.log(2) + 0.5 * np.log(65536), atol=0.2)
        # Measured 1.7 (JAX), 2.2 (torch), 3.2 GB (TensorFlow): the framework and one
        # 1,024-position chunk's logits and
        # gradient, 256 MB each); the full logits alone would be 8.7 GB.
        peak_gb = out["peak_kb"] / 2**20
        self.assertLess(peak_gb, 5.0, f"peak resident memory {peak_gb:.1f} GB")


if __name__ == "__main__":
    absltest.main()
