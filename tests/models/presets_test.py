"""Presets, keras-hub's meaning (weights included): directories, local HF checkpoints, errors."""

import json
import os
import shutil
from unittest import mock

import keras
import keras_hub
import numpy as np
from absl.testing import absltest
from absl.testing import parameterized
from keras_hub.src.utils import preset_utils

from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import LSTMBackbone
from gpt1_keras.models import build_backbone
from gpt1_keras.models.preset_loading import PresetError
from gpt1_keras.models.preset_loading import PresetNotFoundError
from gpt1_keras.tokenizers import GPT1Tokenizer
from tests import test_case
from tests.models import hf_checkpoints
from tests.models import hf_reference

TOLERANCE = 1e-4
ARCHITECTURES = (
    ("transformer", GPT1Backbone, test_case.TINY_BACKBONE),
    ("lstm", LSTMBackbone, test_case.TINY_LSTM_BACKBONE),
)


def _outputs(backbone, seed=0):
    inputs = test_case.random_inputs((3, 9), lengths=[9, 5, 7], seed=seed)
    return test_case.to_numpy(backbone(inputs))


class SavedPresetTest(parameterized.TestCase):
    def save(self, cls, config):
        backbone = cls(**config)
        test_case.assign_random_weights(backbone, seed=1, stddev=0.2)
        directory = os.path.join(self.create_tempdir().full_path, "preset")
        backbone.save_to_preset(directory)
        return backbone, directory

    @parameterized.named_parameters(*ARCHITECTURES)
    def test_keras_hub_backbone_from_preset_is_bit_exact(self, cls, config):
        backbone, directory = self.save(cls, config)
        restored = keras_hub.models.Backbone.from_preset(directory)
        self.assertIs(type(restored), cls)
        self.assertEqual(restored.get_config(), backbone.get_config())
        for saved, loaded in zip(backbone.weights, restored.weights):
            self.assertEqual(saved.path, loaded.path)
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(loaded), keras.ops.convert_to_numpy(saved)
            )
        np.testing.assert_array_equal(_outputs(restored), _outputs(backbone))
        # The class's own from_preset, and a tokenizer saved beside the backbone.
        np.testing.assert_array_equal(_outputs(cls.from_preset(directory)), _outputs(backbone))

    @parameterized.named_parameters(*ARCHITECTURES)
    def test_preset_holds_a_tokenizer_keras_hub_resolves(self, cls, config):
        _, directory = self.save(cls, config)
        GPT1Tokenizer(sequence_length=8).save_to_preset(directory)
        tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(directory)
        self.assertIsInstance(tokenizer, GPT1Tokenizer)
        self.assertEqual(tokenizer.sequence_length, 8)
        self.assertEqual(
            tokenizer(["Hello, world!"]).numpy().tolist(),
            [[3570, 240, 1276, 267, 0, 0, 0, 0]],
        )
        self.assertIsInstance(GPT1Tokenizer.from_preset(directory), GPT1Tokenizer)

    @parameterized.named_parameters(*ARCHITECTURES)
    def test_build_backbone_loads_a_preset_directory(self, cls, config):
        backbone, directory = self.save(cls, config)
        architecture = "transformer" if cls is GPT1Backbone else "lstm"
        loaded = build_backbone(architecture, directory, dropout=0.0)
        self.assertEqual(loaded.dropout, 0.0)
        np.testing.assert_array_equal(_outputs(loaded), _outputs(backbone))
        other = "lstm" if architecture == "transformer" else "transformer"
        with self.assertRaisesRegex(PresetError, f"holds a {cls.__name__}"):
            build_backbone(other, directory)
        with self.assertRaisesRegex(ValueError, "takes no argument"):
            build_backbone(architecture, directory, not_an_argument=1)

    def test_build_backbone_still_builds_architectures(self):
        backbone = build_backbone("transformer", "gpt1_tiny", vocabulary_size=50)
        self.assertEqual(backbone.vocabulary_size, 50)
        self.assertEqual(build_backbone("lstm", "lstm_tiny").lstm_units, 64)

    def test_load_weights_false_and_dtype(self):
        backbone, directory = self.save(GPT1Backbone, test_case.TINY_BACKBONE)
        fresh = GPT1Backbone.from_preset(directory, load_weights=False)
        self.assertEqual(fresh.get_config(), backbone.get_config())
        self.assertFalse(np.allclose(_outputs(fresh), _outputs(backbone), atol=1e-3))
        half = GPT1Backbone.from_preset(directory, dtype="bfloat16")
        self.assertEqual(half.dtype_policy.name, "bfloat16")
        np.testing.assert_allclose(
            test_case.to_numpy(keras.ops.cast(half(test_case.random_inputs((3, 9))), "float32")),
            test_case.to_numpy(backbone(test_case.random_inputs((3, 9)))),
            atol=0.1,
        )

    def test_preset_of_the_other_class(self):
        _, directory = self.save(LSTMBackbone, test_case.TINY_LSTM_BACKBONE)
        with self.assertRaisesRegex(PresetError, "holds a LSTMBackbone, not a GPT1Backbone"):
            GPT1Backbone.from_preset(directory)

    def test_a_moved_preset_loads(self):
        backbone, directory = self.save(GPT1Backbone, test_case.TINY_BACKBONE)
        moved = os.path.join(self.create_tempdir().full_path, "elsewhere")
        shutil.move(directory, moved)
        np.testing.assert_array_equal(_outputs(GPT1Backbone.from_preset(moved)), _outputs(backbone))

    def test_kaggle_handle_goes_through_kagglehub(self):
        # keras-hub resolves kaggle:// with kagglehub.model_download(handle, file);
        # here it serves the files of a local preset (no network).
        backbone, directory = self.save(GPT1Backbone, test_case.TINY_BACKBONE)
        requests = []

        def model_download(handle, path):
            requests.append((handle, path))
            local = os.path.join(directory, path)
            if not os.path.exists(local):
                raise ValueError(f"'{path}' is not present in the model files")
            return local

        handle = "kaggle://someone/gpt1/keras/gpt1_tiny/1"
        with mock.patch.object(preset_utils.kagglehub, "model_download", model_download):
            loaded = GPT1Backbone.from_preset(handle)
        np.testing.assert_array_equal(_outputs(loaded), _outputs(backbone))
        self.assertIn(("someone/gpt1/keras/gpt1_tiny/1", "model.weights.h5"), requests)


class SavePresetTest(absltest.TestCase):
    def test_a_failed_write_keeps_the_previous_preset_and_says_so(self):
        import errno

        from gpt1_keras.errors import CheckpointWriteError
        from gpt1_keras.models.preset_loading import save_preset

        backbone = test_case.assign_random_weights(GPT1Backbone(**test_case.TINY_BACKBONE), 1)
        root = self.create_tempdir().full_path
        directory = save_preset(os.path.join(root, "preset"), backbone)
        expected = _outputs(GPT1Backbone.from_preset(directory))
        other = test_case.assign_random_weights(GPT1Backbone(**test_case.TINY_BACKBONE), 2)
        full = OSError(errno.ENOSPC, "No space left on device")
        real_replace = os.replace

        def replace_failing_into_place(src, dst):
            if os.path.basename(src).startswith(".preset.tmp-"):
                raise full
            return real_replace(src, dst)

        for patch in (mock.patch.object(GPT1Backbone, "save_to_preset", side_effect=full),
                      mock.patch("os.replace", side_effect=replace_failing_into_place)):
            with patch, self.assertRaises(CheckpointWriteError) as raised:
                save_preset(directory, other)
            self.assertEqual(raised.exception.errno, errno.ENOSPC)
            self.assertEqual(str(raised.exception), (
                f"Could not write the preset {directory}: No space left on device (the "
                "previous version is unchanged); free some space or fix the directory, "
                "then rerun."))
            self.assertEqual(os.listdir(root), ["preset"])  # no partial left behind
            np.testing.assert_array_equal(_outputs(GPT1Backbone.from_preset(directory)),
                                          expected)


class LocalHFDirectoryTest(parameterized.TestCase):
    @parameterized.named_parameters(("safetensors", True), ("pytorch_bin", False))
    def test_matches_hf(self, safe_serialization):
        hf_model = hf_reference.make_hf_lm(seed=2, **hf_checkpoints.TINY_HF_CONFIG)
        directory = hf_checkpoints.write_hf_checkpoint(
            hf_model, self.create_tempdir().full_path, safe_serialization=safe_serialization
        )
        backbone = GPT1Backbone.from_preset(directory)
        for name, error in hf_checkpoints.parity_errors(backbone, hf_model).items():
            self.assertLessEqual(error, TOLERANCE, f"{name}: max abs difference {error}")
        # The converted checkpoint, saved as a keras-hub preset, reloads bit-exactly.
        preset = os.path.join(self.create_tempdir().full_path, "preset")
        backbone.save_to_preset(preset)
        np.testing.assert_array_equal(
            _outputs(keras_hub.models.Backbone.from_preset(preset)), _outputs(backbone)
        )

    def test_tokenizer_of_a_checkpoint_without_tokenizer_files(self):
        hf_model = hf_reference.make_hf_lm(**hf_reference.SMALL_CONFIG)
        directory = hf_checkpoints.write_hf_checkpoint(
            hf_model, self.create_tempdir().full_path, tokenizer=False
        )
        self.assertEqual(GPT1Backbone.from_preset(directory).vocabulary_size, 1003)
        with self.assertRaisesRegex(PresetNotFoundError, "has no vocab.json"):
            GPT1Tokenizer.from_preset(directory)

    def test_checkpoint_without_weights(self):
        hf_model = hf_reference.make_hf_lm(**hf_reference.SMALL_CONFIG)
        directory = self.create_tempdir().full_path
        hf_model.config.to_json_file(os.path.join(directory, "config.json"))
        with self.assertRaisesRegex(PresetNotFoundError, "has no weights"):
            GPT1Backbone.from_preset(directory)


class PresetErrorsTest(parameterized.TestCase):
    def assert_one_line(self, error_cls, pattern, fn):
        with self.assertRaisesRegex(error_cls, pattern) as raised:
            fn()
        self.assertNotIn("\n", str(raised.exception))

    @parameterized.named_parameters(
        ("gpt1", GPT1Backbone, "gpt1"),
        ("gpt1_tiny", GPT1Backbone, "gpt1_tiny"),
        ("lstm_tiny", LSTMBackbone, "lstm_tiny"),
    )
    def test_architecture_name(self, cls, name):
        self.assert_one_line(
            PresetError,
            rf"architecture configuration.*{cls.__name__}\.from_architecture\('{name}'\)",
            lambda: cls.from_preset(name),
        )

    def test_architecture_name_to_the_tokenizer(self):
        self.assert_one_line(
            PresetError, r"architecture configuration.*GPT1Tokenizer\(\)",
            lambda: GPT1Tokenizer.from_preset("gpt1"),
        )

    def test_missing_directory(self):
        missing = os.path.join(self.create_tempdir().full_path, "nothing")
        self.assert_one_line(
            PresetNotFoundError, "Preset directory not found: .*nothing",
            lambda: GPT1Backbone.from_preset(missing),
        )

    def test_directory_without_config(self):
        directory = self.create_tempdir().full_path
        self.assert_one_line(
            PresetNotFoundError, "config.json not found",
            lambda: GPT1Backbone.from_preset(directory),
        )

    @parameterized.named_parameters(
        ("not_json", "{not json", "is not valid JSON"),
        ("not_an_object", "[1, 2]", "holds a JSON list"),
        ("neither_format", '{"a": 1}', "neither a keras-hub preset"),
        ("other_hf_model", '{"model_type": "gpt2"}', "Hugging Face 'gpt2' checkpoint"),
        ("bad_hf_config", '{"model_type": "openai-gpt"}', "not an OpenAIGPTConfig"),
    )
    def test_corrupt_config(self, contents, pattern):
        directory = self.create_tempdir().full_path
        with open(os.path.join(directory, "config.json"), "w") as f:
            f.write(contents)
        self.assert_one_line(PresetError, pattern, lambda: GPT1Backbone.from_preset(directory))

    def test_not_a_string(self):
        self.assert_one_line(PresetError, "must be a preset directory", lambda: GPT1Backbone.from_preset(3))

    def test_corrupt_tokenizer_config(self):
        directory = self.create_tempdir().full_path
        GPT1Tokenizer().save_to_preset(directory)
        with open(os.path.join(directory, "tokenizer.json"), "w") as f:
            f.write("{")
        self.assert_one_line(
            PresetError, "tokenizer.json is not valid JSON", lambda: GPT1Tokenizer.from_preset(directory)
        )

    def test_errors_are_user_errors(self):
        from gpt1_keras.errors import UserError

        self.assertTrue(issubclass(PresetError, (UserError, ValueError)))
        self.assertTrue(issubclass(PresetNotFoundError, (UserError, FileNotFoundError)))


class TokenizerPresetTest(absltest.TestCase):
    def test_tokenizer_only_preset_with_its_own_vocabulary(self):
        vocabulary = {"<unk>": 0, "a</w>": 1, "b</w>": 2, "a": 3, "ab</w>": 4}
        tokenizer = GPT1Tokenizer(vocabulary=vocabulary, merges=["a b</w>"])
        directory = os.path.join(self.create_tempdir().full_path, "tokenizer")
        tokenizer.save_to_preset(directory)
        with open(os.path.join(directory, "tokenizer.json")) as f:
            config = json.load(f)["config"]
        # The files are the preset's assets, not paths or inline dicts.
        self.assertIsNone(config["vocabulary"])
        self.assertIsNone(config["merges"])
        restored = GPT1Tokenizer.from_preset(directory)
        self.assertEqual(restored.get_vocabulary(), tokenizer.get_vocabulary())
        self.assertEqual(restored(["ab a b"]).to_list(), [[4, 1, 2]])
        self.assertEqual(restored.start_token_id, 5)


if __name__ == "__main__":
    absltest.main()
