"""The convert binary, run as a user would, on checkpoints the test writes."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
from absl.testing import absltest

import gpt1_keras  # noqa: F401 (registers the serializable classes)
from gpt1_keras.models import GPT1CausalLM
from tests.models import hf_reference

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# The original release's tensor order inside each block (the `model/h{i}/...` variables of
# finetune-transformer-lm), written out here independently of the converter's own table.
_RELEASE_BLOCK_ORDER = (
    "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias",
    "ln_1.weight", "ln_1.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
    "mlp.c_proj.weight", "mlp.c_proj.bias", "ln_2.weight", "ln_2.bias",
)


def _write_openai_release(hf_model, directory):
    """Writes `hf_model`'s weights as the original release: `params_shapes.json` plus
    the flattened tensors (positions first, then tokens, Conv1D weights `[1, in, out]`)
    split in `params_0.npy` .. `params_9.npy`."""
    state = {k[len("transformer."):]: v for k, v in
             hf_reference.hf_state_dict_numpy(hf_model).items()
             if k.startswith("transformer.")}
    params = [state["positions_embed.weight"], state["tokens_embed.weight"]]
    for i in range(hf_model.config.n_layer):
        for name in _RELEASE_BLOCK_ORDER:
            value = state[f"h.{i}.{name}"]
            params.append(value[None] if value.ndim == 2 else value)
    with open(os.path.join(directory, "params_shapes.json"), "w") as f:
        json.dump([list(p.shape) for p in params], f)
    flat = np.concatenate([p.reshape(-1) for p in params])
    for i, shard in enumerate(np.array_split(flat, 10)):
        np.save(os.path.join(directory, f"params_{i}.npy"), shard)


def _run_convert(*args):
    env = dict(os.environ, PYTHONPATH=_REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "pipelines.convert", *args],
        cwd=_REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


class ConvertBinaryTest(absltest.TestCase):
    def test_hf_directory_to_keras_file(self):
        hf_model = hf_reference.make_hf_lm(**hf_reference.SMALL_CONFIG)
        source = self.create_tempdir().full_path
        hf_model.save_pretrained(source)
        output = os.path.join(self.create_tempdir().full_path, "out", "lm.keras")
        result = _run_convert("--source_format=hf", f"--input={source}", f"--output={output}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertFalse(os.path.exists(output + ".partial.keras"))

        lm = keras.saving.load_model(output)
        vocab = hf_reference.SMALL_CONFIG["vocab_size"]
        self.assertEqual(lm.backbone.vocabulary_size, vocab + 3)
        ids = np.random.default_rng(0).integers(0, vocab, (2, 10)).astype("int32")
        got = keras.ops.convert_to_numpy(
            lm({"token_ids": ids, "padding_mask": np.ones_like(ids)})
        )[..., :vocab]
        np.testing.assert_allclose(got, hf_reference.hf_logits(hf_model, ids), atol=1e-4)

    def test_openai_release_to_keras_file(self):
        # The shapes of the gpt1_tiny preset, which names the architecture (the release
        # has no config file); a small vocabulary keeps the checkpoint small.
        vocab = 300
        hf_model = hf_reference.make_hf_lm(
            vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=2)
        source = self.create_tempdir().full_path
        _write_openai_release(hf_model, source)
        output = os.path.join(self.create_tempdir().full_path, "lm.keras")
        result = _run_convert("--source_format=openai", f"--input={source}",
                              "--preset=gpt1_tiny", f"--output={output}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])

        lm = keras.saving.load_model(output)
        self.assertEqual(lm.backbone.vocabulary_size, vocab + 3)
        ids = np.random.default_rng(1).integers(0, vocab, (2, 12)).astype("int32")
        got = keras.ops.convert_to_numpy(
            lm({"token_ids": ids, "padding_mask": np.ones_like(ids)})
        )[..., :vocab]
        np.testing.assert_allclose(got, hf_reference.hf_logits(hf_model, ids), atol=1e-4)

    def test_bad_flags_are_named(self):
        result = _run_convert("--input=/does/not/exist", "--output=/tmp/x.keras")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("--input=/does/not/exist does not exist", result.stderr)
        source = self.create_tempdir().full_path
        result = _run_convert(f"--input={source}", "--output=/tmp/model.h5")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("--output must be a path ending in .keras", result.stderr)

    def test_corrupt_checkpoints_are_one_line_naming_the_file(self):
        source = self.create_tempdir()
        source.create_file("config.json", content="{}")
        weights = source.create_file("model.safetensors", content="\xff" * 4096).full_path
        torch_dir = self.create_tempdir()
        torch_weights = torch_dir.create_file("pytorch_model.bin",
                                              content="not a pickle").full_path
        output = os.path.join(self.create_tempdir().full_path, "lm.keras")
        for path, expected in (
            (source.full_path, f"{weights} exists but is not a readable .safetensors "
                               "checkpoint"),
            (torch_dir.full_path, f"{torch_weights} exists but is not a readable .bin "
                                  "checkpoint"),
        ):
            result = _run_convert(f"--input={path}", f"--output={output}")
            self.assertEqual(result.returncode, 2, result.stderr[-3000:])
            self.assertNotIn("Traceback", result.stderr)
            (line,) = [l for l in result.stderr.splitlines() if l.startswith("ERROR:")]
            self.assertIn(expected, line)
            self.assertFalse(os.path.exists(output))

    def test_missing_weights_are_named(self):
        source = self.create_tempdir().full_path
        result = _run_convert(f"--input={source}", "--output=/tmp/x.keras")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("model.safetensors", result.stderr)

    def test_keras_file_to_hf_directory(self):
        # --direction=to_hf: a .keras model (written by the binary from a random HF
        # model, so that every tensor is non-trivial) back to a transformers directory.
        import transformers

        hf_model = hf_reference.make_hf_lm(**hf_reference.SMALL_CONFIG)
        source = self.create_tempdir().full_path
        hf_model.save_pretrained(source)
        model_path = os.path.join(self.create_tempdir().full_path, "lm.keras")
        result = _run_convert(f"--input={source}", f"--output={model_path}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        output = os.path.join(self.create_tempdir().full_path, "hf")
        result = _run_convert("--direction=to_hf", f"--input={model_path}",
                              f"--output={output}")
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])

        exported = transformers.OpenAIGPTLMHeadModel.from_pretrained(output).eval()
        vocab = hf_reference.SMALL_CONFIG["vocab_size"]
        self.assertEqual(exported.config.vocab_size, vocab + 3)  # with the special rows
        ids = np.random.default_rng(2).integers(0, vocab, (2, 10)).astype("int32")
        mask = np.ones_like(ids)
        mask[1, 6:] = 0
        lm = keras.saving.load_model(model_path)
        ours = keras.ops.convert_to_numpy(lm({"token_ids": ids, "padding_mask": mask}))
        got = hf_reference.hf_logits(exported, ids, mask)
        real = mask.astype(bool)
        np.testing.assert_allclose(got[real], ours[real], atol=1e-4)
        # ... and the original model's, on its own vocabulary.
        np.testing.assert_allclose(got[real][:, :vocab],
                                   hf_reference.hf_logits(hf_model, ids, mask)[real],
                                   atol=1e-4)

    def test_to_hf_bad_flags_are_one_line(self):
        source = self.create_tempdir()
        not_keras = source.create_file("model.h5", content="x").full_path
        output = self.create_tempdir().full_path
        lstm_path = os.path.join(source.full_path, "lstm.keras")
        GPT1CausalLM.from_architecture("lstm_tiny").save(lstm_path)
        for args, expected in (
            ([f"--input={not_keras}", f"--output={output}"],
             "--input must be a .keras model file with --direction=to_hf"),
            ([f"--input={lstm_path}", f"--output={not_keras}"],
             f"--output={not_keras} is a file; pass a directory"),
            ([f"--input={lstm_path}", f"--output={output}", "--source_format=openai"],
             "--source_format is not used with --direction=to_hf"),
            ([f"--input={lstm_path}", f"--output={output}"],
             "LSTMBackbone backbone cannot be exported"),
        ):
            result = _run_convert("--direction=to_hf", *args)
            self.assertEqual(result.returncode, 2, result.stderr[-3000:])
            self.assertNotIn("Traceback", result.stderr)
            (line,) = [l for l in result.stderr.splitlines() if l.startswith("ERROR:")]
            self.assertIn(expected, line)
        result = _run_convert(f"--input={source.full_path}", "--output=/tmp/x.keras",
                              "--vocabulary_size=10")
        self.assertIn("--vocabulary_size is not used with --direction=to_keras",
                      result.stderr)


if __name__ == "__main__":
    absltest.main()
