"""Export to Hugging Face: `transformers` loads what `export_to_hf` writes, with our logits.

The reference is `transformers` itself (PyTorch): the exported directory is loaded
with `OpenAIGPTLMHeadModel` / `OpenAIGPTDoubleHeadsModel` / `OpenAIGPTTokenizer` and
compared with the Keras model that wrote it, built on the backend under test.
"""

import json
import os
import warnings

import keras
import numpy as np
import torch
import transformers
from absl.testing import absltest

from gpt1_keras.checkpoint_conversion import ExportError
from gpt1_keras.checkpoint_conversion import export_to_hf
from gpt1_keras.checkpoint_conversion import load_pretrained_lm
from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.models import GPT1Classifier

TOLERANCE = 1e-4
# A transformer HF can hold (MLP width 4 x hidden); 3 rows above the "BPE" ids.
SMALL = dict(vocabulary_size=203, num_layers=2, num_heads=4, hidden_dim=32,
             intermediate_dim=128, max_sequence_length=24, dropout=0.1)


def _randomize(model, seed=0, std=0.1):
    """Gives every variable random values (LayerNorm gains 1 + N(0, 0.1)), so that a
    forgotten or mis-mapped tensor (biases and LayerNorms included) changes the logits."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        noise = rng.normal(size=tuple(v.shape)).astype("float32")
        v.assign(1.0 + 0.1 * noise if v.path.endswith("gamma") else std * noise)
    return model


def _inputs(vocabulary_size, shape=(3, 20), seed=0):
    """Random ids; row 1 right-padded, row 2 left-padded (as the HF parity test)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocabulary_size, size=shape).astype("int32")
    mask = np.ones(shape, "int32")
    mask[1, -7:] = 0
    mask[2, :5] = 0
    return ids, mask


def _hf(cls, directory, ids, mask, **kwargs):
    model = cls.from_pretrained(directory).eval()
    with torch.no_grad():
        return model(input_ids=torch.as_tensor(ids, dtype=torch.long),
                     attention_mask=torch.as_tensor(mask, dtype=torch.float32), **kwargs)


def _ours(model, ids, mask):
    return keras.ops.convert_to_numpy(model({"token_ids": ids, "padding_mask": mask}))


class ExportToHFTest(absltest.TestCase):
    def assert_lm_logits_match(self, lm, directory, columns=None):
        vocab = columns or lm.backbone.vocabulary_size
        ids, padded = _inputs(vocab)
        errors = []
        for mask in (padded, np.ones_like(ids)):
            expected = _hf(transformers.OpenAIGPTLMHeadModel, directory, ids, mask).logits
            got = _ours(lm, ids, mask)[..., :vocab]
            self.assertEqual(got.shape, tuple(expected.shape))
            real = mask.astype(bool)  # Padded positions' outputs are unused.
            errors.append(float(np.abs(got[real] - expected.numpy()[real]).max()))
            self.assertLessEqual(errors[-1], TOLERANCE, f"max abs logit difference {errors}")
        return errors

    def test_causal_lm_logits_match_transformers(self):
        lm = GPT1CausalLM(_randomize(GPT1Backbone(**SMALL)))
        directory = self.create_tempdir().full_path
        written = export_to_hf(lm, directory)
        self.assertEqual(sorted(os.path.basename(p) for p in written),
                         ["config.json", "model.safetensors"])  # 203 ids: no tokenizer
        errors = self.assert_lm_logits_match(lm, directory)
        # The logits are O(1): 1e-4 is a real bound, not a trivially small one.
        self.assertGreater(np.abs(_ours(lm, *_inputs(203))).max(), 1.0)
        print(f"max abs logit difference (padded, unpadded): {errors}")
        with open(os.path.join(directory, "config.json")) as f:
            config = json.load(f)
        self.assertEqual(config["architectures"], ["OpenAIGPTLMHeadModel"])
        self.assertEqual((config["vocab_size"], config["n_positions"], config["n_embd"],
                          config["n_layer"], config["n_head"]), (203, 24, 32, 2, 4))
        # The base model (no LM head) loads the same file: its hidden states are ours.
        ids, mask = _inputs(203)
        hidden = _hf(transformers.OpenAIGPTModel, directory, ids, mask).last_hidden_state
        ours = _ours(lm.backbone, ids, mask)
        real = mask.astype(bool)
        np.testing.assert_allclose(ours[real], hidden.numpy()[real], atol=TOLERANCE)

    def test_round_trip_through_our_converter_gives_equal_weights(self):
        backbone = _randomize(GPT1Backbone(**SMALL), seed=1)
        directory = self.create_tempdir().full_path
        export_to_hf(backbone, directory)
        reloaded = load_pretrained_lm("hf", directory, num_special_tokens=0).backbone
        self.assertEqual(reloaded.get_config()["vocabulary_size"], SMALL["vocabulary_size"])
        self.assertEqual(len(reloaded.weights), len(backbone.weights))
        for a, b in zip(backbone.weights, reloaded.weights):
            self.assertEqual(a.path, b.path)
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)

    def test_keras_hub_export_to_transformers_is_ours(self):
        # keras-hub's exporter knows no GPT-1; the backbone's method is export_to_hf.
        lm = GPT1CausalLM(_randomize(GPT1Backbone(**SMALL), seed=2))
        for model in (lm, lm.backbone):
            directory = self.create_tempdir().full_path
            model.export_to_transformers(directory)
            self.assert_lm_logits_match(lm, directory)

    def test_vocabulary_size_drops_the_special_rows(self):
        lm = GPT1CausalLM(_randomize(GPT1Backbone(**SMALL), seed=2))
        directory = self.create_tempdir().full_path
        export_to_hf(lm, directory, vocabulary_size=200)
        with open(os.path.join(directory, "config.json")) as f:
            self.assertEqual(json.load(f)["vocab_size"], 200)
        self.assert_lm_logits_match(lm, directory, columns=200)
        reloaded = load_pretrained_lm("hf", directory)  # + 3 fresh special rows
        np.testing.assert_array_equal(
            reloaded.backbone.token_embedding.embeddings.numpy()[:200],
            lm.backbone.token_embedding.embeddings.numpy()[:200])

    def test_tokenizer_files_load_in_transformers(self):
        from gpt1_keras.tokenizers.gpt1_tokenizer import GPT1Tokenizer

        lm = GPT1CausalLM.from_architecture("gpt1_tiny")  # GPT-1's 40,478 + 3 ids
        directory = self.create_tempdir().full_path
        written = export_to_hf(lm, directory)
        self.assertIn(os.path.join(directory, "merges.txt"), written)
        hf_tokenizer = transformers.OpenAIGPTTokenizer.from_pretrained(directory)
        self.assertLen(hf_tokenizer, 40481)
        self.assertEqual(
            hf_tokenizer.convert_tokens_to_ids(["_start_", "_delimiter_", "_classify_"]),
            [40478, 40479, 40480])
        # transformers uses ftfy + spaCy when installed (our "openai" mode), else
        # BERT's basic tokenizer (our "bert" mode).
        mode = "openai" if hf_tokenizer.fix_text is not None else "bert"
        ours = GPT1Tokenizer(normalization=mode)
        texts = ["Hello, world! The quick brown fox.", "Don't panic: it's 42 km away.",
                 "hyperparameterization of transformers"]
        for text in texts:
            self.assertEqual(hf_tokenizer(text)["input_ids"], ours(text).numpy().tolist(),
                             text)
        # The special tokens written in text are ours too.
        self.assertEqual(hf_tokenizer("_start_ hello _classify_")["input_ids"],
                         [40478] + ours("hello").numpy().tolist() + [40480])

    def test_the_preprocessors_tokenizer_is_written(self):
        from gpt1_keras.preprocessing.gpt1_causal_lm_preprocessor import (
            GPT1CausalLMPreprocessor,
        )
        from gpt1_keras.tokenizers.gpt1_tokenizer import GPT1Tokenizer

        # A small BPE of its own (not GPT-1's files): "hello</w>" is 4 merges away.
        chars = list("abcdefghijklmnopqrstuvwxyz")
        tokens = ["<unk>"] + chars + [c + "</w>" for c in chars] + [
            "he", "ll", "hell", "hello</w>"]
        merges = ["h e", "l l", "he ll", "hell o</w>"]
        tokenizer = GPT1Tokenizer(vocabulary={t: i for i, t in enumerate(tokens)},
                                  merges=merges)
        self.assertEqual(tokenizer.vocabulary_size(), len(tokens) + 3)
        backbone = GPT1Backbone(**{**SMALL, "vocabulary_size": len(tokens) + 3})
        lm = GPT1CausalLM(backbone, preprocessor=GPT1CausalLMPreprocessor(tokenizer))
        directory = self.create_tempdir().full_path
        export_to_hf(lm, directory)
        hf_tokenizer = transformers.OpenAIGPTTokenizer.from_pretrained(directory)
        self.assertLen(hf_tokenizer, len(tokens) + 3)
        mode = "openai" if hf_tokenizer.fix_text is not None else "bert"
        ours = GPT1Tokenizer(vocabulary={t: i for i, t in enumerate(tokens)},
                             merges=merges, normalization=mode)
        for text in ("hello world", "Hello, hello shell!", "_classify_ hello"):
            expected = ours(text).numpy().tolist()
            if text.startswith("_classify_"):
                expected = [len(tokens) + 2] + ours("hello").numpy().tolist()
            self.assertEqual(hf_tokenizer(text)["input_ids"], expected, text)
        self.assertIn(tokens.index("hello</w>"), hf_tokenizer("hello")["input_ids"])

    def test_multiple_choice_head_maps_to_double_heads_model(self):
        backbone = GPT1Backbone(**SMALL)
        model = _randomize(GPT1Classifier(backbone, head="multiple_choice"), seed=3)
        directory = self.create_tempdir().full_path
        export_to_hf(model, directory)
        rng = np.random.default_rng(4)
        shape = (2, 3, 12)  # (batch, choices, length), right-padded, lengths differ.
        ids = rng.integers(0, 200, size=shape).astype("int32")
        lengths = rng.integers(4, shape[-1] + 1, size=shape[:-1])
        mask = (np.arange(shape[-1]) < lengths[..., None]).astype("int32")
        # HF flattens `input_ids` to (B*K, T) but not `attention_mask`: pass it flat.
        out = _hf(transformers.OpenAIGPTDoubleHeadsModel, directory, ids,
                  mask.reshape(-1, shape[-1]),
                  mc_token_ids=torch.as_tensor(lengths - 1, dtype=torch.long))
        np.testing.assert_allclose(_ours(model, ids, mask), out.mc_logits.numpy(),
                                   atol=TOLERANCE)
        # The LM head of the same checkpoint is our backbone's tied head.
        flat_ids, flat_mask = ids.reshape(-1, shape[-1]), mask.reshape(-1, shape[-1])
        expected_lm = out.logits.numpy().reshape(flat_ids.shape + (-1,))
        got_lm = _ours(GPT1CausalLM(model.backbone), flat_ids, flat_mask)
        real = flat_mask.astype(bool)
        np.testing.assert_allclose(got_lm[real], expected_lm[real], atol=TOLERANCE)

    def test_heads_hf_cannot_hold_are_not_written_and_say_so(self):
        for head, num_classes in (("similarity", 1), ("classification", 3)):
            backbone = _randomize(GPT1Backbone(**SMALL), seed=7)
            model = GPT1Classifier(backbone, num_classes=num_classes, head=head)
            directory = self.create_tempdir().full_path
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                export_to_hf(model, directory)
            self.assertTrue(any(f"head={head!r}" in str(w.message) for w in caught), head)
            with open(os.path.join(directory, "config.json")) as f:
                self.assertEqual(json.load(f)["architectures"], ["OpenAIGPTLMHeadModel"])
            self.assert_lm_logits_match(GPT1CausalLM(backbone), directory)

    def test_lora_weights_are_merged(self):
        backbone = _randomize(GPT1Backbone(**SMALL), seed=5)
        lm = GPT1CausalLM(backbone)
        backbone.enable_lora(2)
        rng = np.random.default_rng(6)
        for v in backbone.trainable_weights:
            if "lora_kernel" in v.path:  # LoRA's B starts at zero: make it count.
                v.assign(0.1 * rng.normal(size=tuple(v.shape)).astype("float32"))
        directory = self.create_tempdir().full_path
        export_to_hf(lm, directory)
        self.assert_lm_logits_match(lm, directory)

    def test_models_that_cannot_be_exported_are_one_clear_error(self):
        directory = self.create_tempdir().full_path
        quantized = GPT1CausalLM(GPT1Backbone(**SMALL))
        quantized.quantize("int8")
        with self.assertRaisesRegex(ExportError, "quantized.*export the float model"):
            export_to_hf(quantized, directory)
        with self.assertRaisesRegex(ExportError, r"4 x n_embd.*intermediate_dim=64"):
            export_to_hf(GPT1Backbone(**{**SMALL, "intermediate_dim": 64}), directory)
        with self.assertRaisesRegex(ExportError, r"vocabulary_size.*\[1, 203\].*204"):
            export_to_hf(GPT1Backbone(**SMALL), directory, vocabulary_size=204)
        with self.assertRaisesRegex(ExportError, "Received: Dense"):
            export_to_hf(keras.layers.Dense(2), directory)
        from gpt1_keras.models import LSTMBackbone

        lstm = LSTMBackbone.from_architecture("lstm_tiny")
        with self.assertRaisesRegex(ExportError, "LSTMBackbone backbone cannot be exported"):
            export_to_hf(GPT1CausalLM(lstm), directory)
        self.assertEqual(os.listdir(directory), [])


if __name__ == "__main__":
    absltest.main()
