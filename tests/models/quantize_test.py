"""int8 quantization (`model.quantize("int8")`) of GPT-1 at the `gpt1_tiny` size.

Keras quantizes every `Dense` (per-output-channel int8 kernels, inputs quantized per
token at run time) and the `ReversibleEmbedding` (the token table and the tied LM
head); `PositionEmbedding` stays float. The float model is the reference.
"""

import os

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM

# Measured at seed 0 on TF, JAX and torch alike: relative logit error (Frobenius, real
# positions) 0.0095, top-1 agreement 0.991, max abs error 0.106 on logits spanning
# -9.9..12.5; the bounds leave ~2x room.
MAX_RELATIVE_ERROR = 0.02
MIN_TOP1_AGREEMENT = 0.95


def _lm(seed=0):
    """gpt1_tiny with random non-zero weights everywhere (biases and LayerNorms too),
    the embedding at N(0, 0.3) so that the logits are spread and top-1 is meaningful."""
    keras.utils.set_random_seed(seed)
    lm = GPT1CausalLM(GPT1Backbone.from_architecture("gpt1_tiny"))
    rng = np.random.default_rng(seed)
    for v in lm.weights:
        noise = rng.normal(size=tuple(v.shape)).astype("float32")
        if v.path.endswith("gamma"):
            v.assign(1.0 + 0.1 * noise)
        elif v.path.endswith("token_embedding/embeddings"):
            v.assign(0.3 * noise)
        else:
            v.assign(0.05 * noise)
    return lm


def _inputs(vocabulary_size, batch=4, length=32, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocabulary_size, size=(batch, length)).astype("int32")
    mask = np.ones((batch, length), "int32")
    mask[1, length // 2:] = 0
    return {"token_ids": ids, "padding_mask": mask}


def _logits(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def _errors(reference, quantized, mask):
    real = mask.astype(bool)
    ref, got = reference[real].astype("float64"), quantized[real].astype("float64")
    relative = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
    agreement = float(np.mean(ref.argmax(-1) == got.argmax(-1)))
    return relative, agreement


class QuantizeTest(absltest.TestCase):
    def test_int8_logits_close_to_float32(self):
        lm = _lm()
        x = _inputs(lm.backbone.vocabulary_size)
        reference = _logits(lm, x)
        lm.quantize("int8")
        quantized = _logits(lm, x)
        relative, agreement = _errors(reference, quantized, x["padding_mask"])
        print(f"int8 vs float32: relative logit error {relative:.4f}, "
              f"top-1 agreement {agreement:.3f}, "
              f"max abs {np.abs(quantized - reference).max():.4f} "
              f"(logits span {reference.min():.2f}..{reference.max():.2f})")
        self.assertLess(relative, MAX_RELATIVE_ERROR)
        self.assertGreaterEqual(agreement, MIN_TOP1_AGREEMENT)
        self.assertGreater(relative, 0)  # it really computes in int8

        # What was quantized: the token embedding (and tied head), every Dense.
        modes = {layer.path: layer.quantization_mode
                 for layer in lm.backbone._flatten_layers() if layer.quantization_mode}
        expected = {"token_embedding"} | {
            f"transformer_layer_{i}/{dense}" for i in range(2)
            for dense in ("attn/c_attn", "attn/c_proj", "c_fc", "c_proj")}
        self.assertEqual(set(modes), expected)
        self.assertEqual(set(modes.values()), {"int8"})
        self.assertEqual(keras.backend.standardize_dtype(
            lm.backbone.get_layer("transformer_layer_0").attn.c_attn._kernel.dtype), "int8")

    def test_quantized_model_saved_and_reloaded(self):
        lm = _lm(seed=1)
        lm.quantize("int8")
        x = _inputs(lm.backbone.vocabulary_size, seed=1)
        expected = _logits(lm, x)
        path = os.path.join(self.create_tempdir().full_path, "int8.keras")
        lm.save(path)
        reloaded = keras.saving.load_model(path)
        self.assertEqual(
            reloaded.backbone.get_layer("token_embedding").quantization_mode, "int8")
        np.testing.assert_array_equal(_logits(reloaded, x), expected)
        # The file holds int8 kernels: smaller than the float model's.
        float_path = os.path.join(os.path.dirname(path), "float.keras")
        _lm(seed=1).save(float_path)
        self.assertLess(os.path.getsize(path), 0.5 * os.path.getsize(float_path))

    def test_quantized_backbone_saved_and_reloaded(self):
        backbone = _lm(seed=2).backbone
        reference = keras.ops.convert_to_numpy(backbone(_inputs(40481, seed=2)))
        backbone.quantize("int8")
        x = _inputs(backbone.vocabulary_size, seed=2)
        expected = keras.ops.convert_to_numpy(backbone(x))
        relative, _ = _errors(reference, expected, x["padding_mask"])
        self.assertLess(relative, MAX_RELATIVE_ERROR)
        path = os.path.join(self.create_tempdir().full_path, "backbone.keras")
        backbone.save(path)
        reloaded = keras.saving.load_model(path)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(reloaded(x)), expected)


if __name__ == "__main__":
    absltest.main()
