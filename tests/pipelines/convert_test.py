"""The convert binary, run as a user would, on checkpoints the test writes."""

import os
import subprocess
import sys

import keras
import numpy as np
from absl.testing import absltest

import gpt1_keras  # noqa: F401 (registers the serializable classes)
from tests.models import hf_reference

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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


if __name__ == "__main__":
    absltest.main()
