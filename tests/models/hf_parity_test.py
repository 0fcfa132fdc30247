"""Logit parity with Hugging Face's GPT-1 (PyTorch) after weight conversion."""

import copy
import json
import os

import keras
import numpy as np
import torch
from absl.testing import absltest
from absl.testing import parameterized

from gpt1_keras.checkpoint_conversion import CheckpointMismatchError
from gpt1_keras.checkpoint_conversion import backbone_config_from_hf
from gpt1_keras.checkpoint_conversion import convert_hf_weights
from gpt1_keras.checkpoint_conversion import convert_openai_weights
from gpt1_keras.checkpoint_conversion import load_hf_state_dict
from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM
from tests.models import hf_reference

TOLERANCE = 1e-4


def _inputs(vocab_size, batch=3, length=24, seed=0):
    """Random ids with one full row, one right-padded and one left-padded row."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(0, vocab_size, size=(batch, length)).astype("int32")
    padding_mask = np.ones((batch, length), "int32")
    padding_mask[1, length - 7 :] = 0  # right padding
    padding_mask[2, :5] = 0  # left padding
    return token_ids, padding_mask


def _keras_lm(hf_model, vocabulary_size=None):
    config = backbone_config_from_hf(hf_model.config)
    if vocabulary_size:
        config["vocabulary_size"] = vocabulary_size
    backbone = GPT1Backbone(**config)
    convert_hf_weights(backbone, hf_reference.hf_state_dict_numpy(hf_model))
    return GPT1CausalLM(backbone)


def _write_openai_release(hf_model, directory):
    """Writes HF weights in the original release layout (positions first)."""
    state = hf_reference.hf_state_dict_numpy(hf_model)
    state = {k[len("transformer.") :]: v for k, v in state.items() if k.startswith("transformer.")}
    params = [state["positions_embed.weight"], state["tokens_embed.weight"]]
    for i in range(hf_model.config.n_layer):
        for name in (
            "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
            "attn.c_proj.bias", "ln_1.weight", "ln_1.bias", "mlp.c_fc.weight",
            "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias",
            "ln_2.weight", "ln_2.bias",
        ):
            value = state[f"h.{i}.{name}"]
            params.append(value[None] if value.ndim == 2 else value)  # Conv1D [1, in, out]
    with open(os.path.join(directory, "params_shapes.json"), "w") as f:
        json.dump([list(p.shape) for p in params], f)
    flat = np.concatenate([p.reshape(-1) for p in params])
    for i, shard in enumerate(np.array_split(flat, 10)):
        np.save(os.path.join(directory, f"params_{i}.npy"), shard)


def _logit_errors(keras_lm, hf_model, vocab_size, columns=None):
    """Max abs logit differences: (with padding, real positions only; no padding)."""
    token_ids, padding_mask = _inputs(vocab_size)
    errors = []
    for mask in (padding_mask, np.ones_like(token_ids)):
        expected = hf_reference.hf_logits(hf_model, token_ids, mask)
        got = keras.ops.convert_to_numpy(
            keras_lm({"token_ids": token_ids, "padding_mask": mask})
        )
        if columns is not None:
            got = got[..., :columns]
        if got.shape != expected.shape:
            raise AssertionError(f"logits {got.shape} != HF's {expected.shape}")
        real = mask.astype(bool)  # Padded positions' outputs are unused.
        errors.append(float(np.max(np.abs(got[real] - expected[real]))))
    return errors


class HFParityTest(parameterized.TestCase):
    def assert_logits_match(self, keras_lm, hf_model, vocab_size, columns=None):
        for error in _logit_errors(keras_lm, hf_model, vocab_size, columns):
            self.assertLessEqual(error, TOLERANCE, f"max abs logit difference {error}")

    def test_parity_tells_tanh_gelu_from_erf_gelu(self):
        # At N(0, 0.02) the MLP inputs are ~0.2, where the two GELUs agree to
        # ~1e-6; at N(0, 0.2) they reach +-2, where they differ by ~1e-4 per
        # unit, and the logits (~1.6) by ~2e-3, twenty times the tolerance.
        config = hf_reference.SMALL_CONFIG
        hf_model = hf_reference.make_hf_lm(weight_std=0.2, **config)
        keras_lm = _keras_lm(hf_model)
        self.assert_logits_match(keras_lm, hf_model, config["vocab_size"])
        erf_model = hf_reference.use_erf_gelu(copy.deepcopy(hf_model))
        for error in _logit_errors(keras_lm, erf_model, config["vocab_size"]):
            self.assertGreater(error, 5 * TOLERANCE, "the test cannot see the GELU form")

    @parameterized.named_parameters(
        ("small", hf_reference.SMALL_CONFIG), ("gpt1", hf_reference.FULL_CONFIG)
    )
    def test_logits_match_hf(self, config):
        hf_model = hf_reference.make_hf_lm(**config)
        self.assert_logits_match(_keras_lm(hf_model), hf_model, config["vocab_size"])

    def test_extra_special_token_rows_keep_fresh_init(self):
        config = hf_reference.SMALL_CONFIG
        hf_model = hf_reference.make_hf_lm(**config)
        keras_lm = _keras_lm(hf_model, vocabulary_size=config["vocab_size"] + 3)
        table = keras_lm.backbone.token_embedding.embeddings.numpy()
        hf_table = hf_model.transformer.tokens_embed.weight.detach().numpy()
        np.testing.assert_array_equal(table[: config["vocab_size"]], hf_table)
        special = table[config["vocab_size"] :]
        self.assertTrue(np.all(np.abs(special) > 0))  # initialised, not zeros
        self.assertLess(np.std(special), 0.1)  # N(0, 0.02), not a copy of a row
        self.assert_logits_match(keras_lm, hf_model, config["vocab_size"], columns=config["vocab_size"])

    @parameterized.named_parameters(("safetensors", True), ("bin", False))
    def test_load_from_file(self, safe_serialization):
        hf_model = hf_reference.make_hf_lm(**hf_reference.SMALL_CONFIG)
        directory = self.create_tempdir().full_path
        if safe_serialization:
            hf_model.save_pretrained(directory, safe_serialization=True)
        else:
            torch.save(hf_model.state_dict(), os.path.join(directory, "pytorch_model.bin"))
        backbone = GPT1Backbone(**backbone_config_from_hf(hf_model.config))
        convert_hf_weights(backbone, load_hf_state_dict(directory))
        self.assert_logits_match(
            GPT1CausalLM(backbone), hf_model, hf_reference.SMALL_CONFIG["vocab_size"]
        )

    def test_openai_release_layout(self):
        hf_model = hf_reference.make_hf_lm(**hf_reference.SMALL_CONFIG)
        directory = self.create_tempdir().full_path
        _write_openai_release(hf_model, directory)
        backbone = GPT1Backbone(**backbone_config_from_hf(hf_model.config))
        convert_openai_weights(backbone, directory)
        self.assert_logits_match(
            GPT1CausalLM(backbone), hf_model, hf_reference.SMALL_CONFIG["vocab_size"]
        )

    def test_missing_openai_shard_is_named(self):
        hf_model = hf_reference.make_hf_lm(**hf_reference.SMALL_CONFIG)
        directory = self.create_tempdir().full_path
        _write_openai_release(hf_model, directory)
        os.remove(os.path.join(directory, "params_7.npy"))
        backbone = GPT1Backbone(**backbone_config_from_hf(hf_model.config))
        with self.assertRaisesRegex(FileNotFoundError, "params_7.npy"):
            convert_openai_weights(backbone, directory)

    def test_shape_mismatch_names_tensor_and_shapes(self):
        hf_model = hf_reference.make_hf_lm(**hf_reference.SMALL_CONFIG)
        config = backbone_config_from_hf(hf_model.config)
        config["intermediate_dim"] = 128  # HF has 4 * 64 = 256
        backbone = GPT1Backbone(**config)
        with self.assertRaisesRegex(
            CheckpointMismatchError, r"h\.0\.mlp\.c_fc\.weight.*\(64, 256\).*\(64, 128\)"
        ):
            convert_hf_weights(backbone, hf_reference.hf_state_dict_numpy(hf_model))

    def test_missing_tensor_is_named(self):
        hf_model = hf_reference.make_hf_lm(**hf_reference.SMALL_CONFIG)
        state = hf_reference.hf_state_dict_numpy(hf_model)
        del state["transformer.h.1.ln_2.bias"]
        backbone = GPT1Backbone(**backbone_config_from_hf(hf_model.config))
        with self.assertRaisesRegex(CheckpointMismatchError, r"h\.1\.ln_2\.bias"):
            convert_hf_weights(backbone, state)


if __name__ == "__main__":
    absltest.main()
