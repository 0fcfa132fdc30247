"""`from_preset("hf://...")` through huggingface_hub's real download code, offline.

The test builds a Hugging Face Hub cache in a temporary `HF_HOME` (a random
`transformers.OpenAIGPTLMHeadModel` saved by `save_pretrained`, laid out as
`models--openai-community--openai-gpt/snapshots/<commit>/` with `refs/main`)
and sets `HF_HUB_OFFLINE=1`, both before `huggingface_hub` is imported (it reads
them once, into `huggingface_hub.constants`). keras-hub's `get_file` then calls
`hf_hub_download`, which serves the files from that cache.
"""

import atexit
import os
import shutil
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="gpt1_hf_home_")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_CACHE"] = os.path.join(_HF_HOME, "hub")
os.environ["HF_HUB_OFFLINE"] = "1"

import huggingface_hub  # noqa: E402  (after the environment above)
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
from absl.testing import absltest  # noqa: E402
from keras_hub.src.utils import preset_utils  # noqa: E402

from gpt1_keras.models import GPT1Backbone  # noqa: E402
from gpt1_keras.models import build_backbone  # noqa: E402
from gpt1_keras.models import preset_loading  # noqa: E402
from gpt1_keras.tokenizers import GPT1Tokenizer  # noqa: E402
from tests.models import hf_checkpoints  # noqa: E402
from tests.models import hf_reference  # noqa: E402

TOLERANCE = 1e-4
REPO = "openai-community/openai-gpt"
OTHER_REPO = "someone/tiny-gpt1-bin"
KERAS_REPO = "someone/gpt1-keras-preset"


class HFHubTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The environment was read at import: the cache and offline mode are ours.
        assert huggingface_hub.constants.HF_HUB_CACHE == os.environ["HF_HUB_CACHE"]
        assert huggingface_hub.constants.HF_HUB_OFFLINE
        hub_cache = huggingface_hub.constants.HF_HUB_CACHE
        cls.hf_model = hf_reference.make_hf_lm(seed=0, **hf_checkpoints.TINY_HF_CONFIG)
        cls.bin_model = hf_reference.make_hf_lm(seed=5, **hf_checkpoints.TINY_HF_CONFIG)
        for repo, model, safe in ((REPO, cls.hf_model, True), (OTHER_REPO, cls.bin_model, False)):
            staging = tempfile.mkdtemp(dir=_HF_HOME)
            hf_checkpoints.write_hf_checkpoint(model, staging, safe_serialization=safe)
            hf_checkpoints.write_hub_cache_entry(hub_cache, repo, staging)
        # A keras-hub preset (save_to_preset) uploaded to the Hub.
        cls.keras_backbone = GPT1Backbone.from_preset(f"hf://{REPO}")
        staging = os.path.join(tempfile.mkdtemp(dir=_HF_HOME), "preset")
        cls.keras_backbone.save_to_preset(staging)
        hf_checkpoints.write_hub_cache_entry(hub_cache, KERAS_REPO, staging)

    def assert_parity(self, backbone, hf_model):
        for name, error in hf_checkpoints.parity_errors(backbone, hf_model).items():
            self.assertLessEqual(error, TOLERANCE, f"{name}: max abs difference {error}")

    def test_files_come_through_hf_hub_download_from_the_cache(self):
        path = preset_utils.get_file(f"hf://{REPO}", "config.json")
        snapshot = os.path.join(
            huggingface_hub.constants.HF_HUB_CACHE,
            "models--openai-community--openai-gpt",
            "snapshots",
            hf_checkpoints.COMMIT,
        )
        self.assertEqual(os.path.dirname(path), snapshot)

    def test_backbone_matches_hf(self):
        backbone = GPT1Backbone.from_preset(f"hf://{REPO}")
        self.assertIsInstance(backbone, GPT1Backbone)
        config = hf_checkpoints.TINY_HF_CONFIG
        # The checkpoint's vocabulary plus `_start_`, `_delimiter_`, `_classify_`.
        self.assertEqual(backbone.vocabulary_size, config["vocab_size"] + 3)
        self.assertEqual(backbone.num_layers, config["n_layer"])
        self.assertEqual(backbone.max_sequence_length, config["n_positions"])
        self.assert_parity(backbone, self.hf_model)

    def test_the_test_sees_a_different_checkpoint(self):
        # The parity check can fail: another model's weights are far off.
        errors = hf_checkpoints.parity_errors(
            GPT1Backbone.from_preset(f"hf://{REPO}"), self.bin_model
        )
        self.assertGreater(min(errors.values()), 100 * TOLERANCE, errors)

    def test_any_repository_with_a_pytorch_bin(self):
        backbone = GPT1Backbone.from_preset(f"hf://{OTHER_REPO}")
        self.assert_parity(backbone, self.bin_model)

    def test_keras_hub_preset_on_the_hub(self):
        ids, mask = hf_checkpoints.padded_inputs(hf_checkpoints.TINY_HF_CONFIG["vocab_size"])
        inputs = {"token_ids": ids, "padding_mask": mask}
        for cls in (GPT1Backbone, keras_hub.models.Backbone):
            loaded = cls.from_preset(f"hf://{KERAS_REPO}")
            self.assertIsInstance(loaded, GPT1Backbone)
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(loaded(inputs)),
                keras.ops.convert_to_numpy(self.keras_backbone(inputs)),
            )

    def test_build_backbone_with_a_hub_preset(self):
        backbone = build_backbone("transformer", f"hf://{REPO}", dropout=0.0)
        self.assertEqual(backbone.dropout, 0.0)
        self.assert_parity(backbone, self.hf_model)
        with self.assertRaisesRegex(preset_loading.PresetError, "GPT1Backbone"):
            build_backbone("lstm", f"hf://{REPO}")

    def test_load_weights_false_keeps_the_config_only(self):
        backbone = GPT1Backbone.from_preset(f"hf://{REPO}", load_weights=False)
        self.assertEqual(backbone.hidden_dim, hf_checkpoints.TINY_HF_CONFIG["n_embd"])
        errors = hf_checkpoints.parity_errors(backbone, self.hf_model)
        self.assertGreater(errors["hidden/unpadded"], 100 * TOLERANCE)

    def test_dtype(self):
        backbone = GPT1Backbone.from_preset(f"hf://{REPO}", dtype="bfloat16")
        self.assertEqual(backbone.dtype_policy.name, "bfloat16")
        self.assertEqual(
            keras.backend.standardize_dtype(backbone.token_embedding.embeddings.dtype),
            "bfloat16",
        )

    def test_tokenizer_from_hub_is_gpt1s(self):
        tokenizer = GPT1Tokenizer.from_preset(f"hf://{REPO}")
        self.assertIsInstance(tokenizer, GPT1Tokenizer)
        text = ["Hello, world! Don't panic.", "The quick brown fox."]
        self.assertEqual(tokenizer(text).to_list(), GPT1Tokenizer()(text).to_list())
        self.assertEqual(
            tokenizer.vocabulary_size(), GPT1Backbone.from_preset(f"hf://{REPO}").vocabulary_size
        )

    def test_repository_not_in_the_cache(self):
        with self.assertRaises(preset_loading.PresetNotFoundError) as raised:
            GPT1Backbone.from_preset("hf://nobody/nothing-here")
        message = str(raised.exception)
        self.assertIn("hf://nobody/nothing-here", message)
        self.assertIn("config.json", message)
        self.assertNotIn("\n", message)

    def test_hidden_states_are_finite_and_not_trivial(self):
        backbone = GPT1Backbone.from_preset(f"hf://{REPO}")
        ids, mask = hf_checkpoints.padded_inputs(hf_checkpoints.TINY_HF_CONFIG["vocab_size"])
        hidden = keras.ops.convert_to_numpy(backbone({"token_ids": ids, "padding_mask": mask}))
        self.assertTrue(np.all(np.isfinite(hidden)))
        self.assertGreater(np.std(hidden), 0.1)


if __name__ == "__main__":
    absltest.main()
