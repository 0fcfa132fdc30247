"""LoRA on GPT-1 through keras-hub's `Backbone.enable_lora`, at the `gpt1_tiny` size."""

import os

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM

RANK = 4


def _batch(vocabulary_size, batch=8, length=16, seed=0):
    """One fixed batch of random ids (the last row right-padded) and its next tokens."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocabulary_size, size=(batch, length + 1)).astype("int32")
    mask = np.ones((batch, length), "int32")
    mask[-1, length // 2:] = 0
    x = {"token_ids": ids[:, :-1], "padding_mask": mask}
    return x, ids[:, 1:], mask.astype("float32")


def _lm(seed=0):
    keras.utils.set_random_seed(seed)
    # dropout=0: the loss of a few steps on one batch then falls deterministically.
    lm = GPT1CausalLM(GPT1Backbone.from_architecture("gpt1_tiny", dropout=0.0))
    # A stand-in for pretrained weights: at N(0, 0.02) the frozen tied embedding
    # bounds every logit by ~0.6 (LayerNormed hidden states of norm ~sqrt(32)), so
    # no adapter could lower the loss much; at N(0, 0.3) the logits can reach ~10.
    table = lm.backbone.token_embedding.embeddings
    rng = np.random.default_rng(seed)
    table.assign(0.3 * rng.normal(size=tuple(table.shape)).astype("float32"))
    return lm


def _expected_trainable_paths(backbone):
    """The LoRA factors of every c_attn / c_proj Dense: nothing else (keras-hub's
    `Dense.enable_lora` leaves the bias trainable; `GPT1Backbone.enable_lora` freezes it)."""
    paths = set()
    for i in range(backbone.num_layers):
        for dense in ("attn/c_attn", "attn/c_proj", "c_proj"):
            for weight in ("lora_kernel_a", "lora_kernel_b"):
                paths.add(f"transformer_layer_{i}/{dense}/{weight}")
    return paths


def _predict(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


class LoRATest(absltest.TestCase):
    def test_only_lora_weights_train_and_the_loss_falls(self):
        lm = _lm()
        backbone = lm.backbone
        total = len(lm.weights)
        backbone.enable_lora(RANK)
        trainable = {v.path for v in lm.trainable_weights}
        self.assertEqual(trainable, _expected_trainable_paths(backbone))
        self.assertLen(trainable, 2 * 3 * 2)  # 2 blocks x 3 Dense x (A, B)
        self.assertLen(lm.weights, total + 2 * 3 * 2)  # the LoRA factors were added
        for v in lm.trainable_weights:
            if v.path.endswith("lora_kernel_a"):
                self.assertEqual(v.shape[-1], RANK)
        frozen = {v.path: v.numpy().copy() for v in lm.non_trainable_weights}
        # Only trainable weights are LoRA A/B: the embeddings, LayerNorms and every
        # base kernel and bias are frozen.
        self.assertIn("token_embedding/embeddings", frozen)
        self.assertIn("transformer_layer_0/attn/c_attn/kernel", frozen)
        self.assertIn("transformer_layer_0/ln_1/gamma", frozen)
        self.assertIn("transformer_layer_0/attn/c_attn/bias", frozen)

        x, y, weights = _batch(backbone.vocabulary_size)
        lm.compile(optimizer=keras.optimizers.Adam(5e-2))
        before = lm.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)
        history = lm.fit(x, y, sample_weight=weights, batch_size=8, epochs=10, verbose=0)
        after = lm.evaluate(x, y, sample_weight=weights, verbose=0, return_dict=True)
        print(f"loss before {before['loss']:.4f}, after 10 LoRA steps {after['loss']:.4f}; "
              f"fit: {np.round(history.history['loss'], 3).tolist()}")
        self.assertLess(after["loss"], before["loss"] - 0.5)
        for v in lm.non_trainable_weights:
            np.testing.assert_array_equal(v.numpy(), frozen[v.path], err_msg=v.path)
        lora_b = [v for v in lm.trainable_weights if v.path.endswith("lora_kernel_b")]
        self.assertTrue(all(np.abs(v.numpy()).max() > 0 for v in lora_b))  # B starts at 0

    def test_saved_and_reloaded(self):
        lm = _lm(seed=1)
        lm.backbone.enable_lora(RANK)
        x, y, weights = _batch(lm.backbone.vocabulary_size, seed=1)
        lm.compile(optimizer=keras.optimizers.Adam(1e-2))
        lm.fit(x, y, sample_weight=weights, batch_size=8, epochs=3, verbose=0)
        expected = _predict(lm, x)
        directory = self.create_tempdir().full_path

        # A whole .keras model: LoRA layers and factors come back as they were.
        path = os.path.join(directory, "lora.keras")
        lm.save(path)
        reloaded = keras.saving.load_model(path)
        np.testing.assert_allclose(_predict(reloaded, x), expected, atol=1e-6)

        # keras-hub's LoRA file holds the factors only (A and B of each layer); with
        # everything else frozen, the untouched base plus the file is the fine-tuned
        # model.
        lora_path = os.path.join(directory, "adapter.lora.h5")
        lm.backbone.save_lora_weights(lora_path)
        fresh = _lm(seed=1)  # the same base as `lm` before fine-tuning
        self.assertFalse(np.allclose(_predict(fresh, x), expected, atol=1e-3))
        fresh.backbone.load_lora_weights(lora_path)  # enables LoRA at the file's rank
        np.testing.assert_allclose(_predict(fresh, x), expected, atol=1e-6)
        for v in fresh.trainable_weights:
            if "lora_kernel" in v.path:
                np.testing.assert_array_equal(
                    v.numpy(), {w.path: w for w in lm.weights}[v.path].numpy())

    def test_lora_is_a_no_op_until_trained(self):
        # B starts at zero: enabling LoRA does not change the model's outputs.
        lm = _lm(seed=3)
        x, _, _ = _batch(lm.backbone.vocabulary_size, seed=3)
        expected = _predict(lm, x)
        lm.backbone.enable_lora(RANK)
        np.testing.assert_array_equal(_predict(lm, x), expected)


if __name__ == "__main__":
    absltest.main()
