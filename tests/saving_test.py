"""load_model_file names what is wrong with a path; atomic_save_model never tears a file."""

import errno
import os
from unittest import mock

import keras
from absl.testing import absltest

from gpt1_keras import saving
from gpt1_keras.errors import CheckpointWriteError
from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM


def _tiny_lm():
    keras.utils.set_random_seed(0)
    return GPT1CausalLM.from_architecture("gpt1_tiny", num_layers=1)


class LoadModelFileTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = absltest.get_default_test_tmpdir()
        cls.lm_path = os.path.join(cls.dir, "lm.keras")
        saving.atomic_save_model(_tiny_lm(), cls.lm_path)

    def _assert_error(self, path, *fragments, **kwargs):
        with self.assertRaises(saving.ModelFileError) as caught:
            saving.load_model_file(path, what="--checkpoint", **kwargs)
        message = str(caught.exception)
        self.assertIn(f"--checkpoint {path}", message)
        self.assertNotIn("\n", message)
        for fragment in fragments:
            self.assertIn(fragment, message)

    def test_loads_a_valid_file_of_the_expected_type(self):
        lm = saving.load_model_file(self.lm_path, expected=GPT1CausalLM)
        self.assertIsInstance(lm, GPT1CausalLM)

    def test_invalid_files_that_exist(self):
        random_bytes = self.create_tempfile("random.keras").full_path
        with open(random_bytes, "wb") as f:
            f.write(os.urandom(4096))
        text = self.create_tempfile("notes.keras", content="not a model\n").full_path
        truncated = self.create_tempfile("truncated.keras").full_path
        with open(self.lm_path, "rb") as f:
            data = f.read()
        with open(truncated, "wb") as f:
            f.write(data[: len(data) // 2])
        for path in (random_bytes, text, truncated):
            self._assert_error(path, "exists but is not a valid .keras archive")

    def test_missing_directory_wrong_suffix_and_wrong_type(self):
        self._assert_error(os.path.join(self.dir, "nope.keras"), "does not exist")
        run_dir = self.create_tempdir().full_path
        saving.atomic_save_model(_tiny_lm(), os.path.join(run_dir, "model.keras"))
        self._assert_error(run_dir, "is a directory", "did you mean")
        self._assert_error(self.create_tempfile("weights.h5").full_path,
                           "does not end in .keras")
        self._assert_error(self.lm_path, "holds a GPT1CausalLM; expected a GPT1Backbone",
                           expected=GPT1Backbone)


class AtomicSaveModelTest(absltest.TestCase):
    def test_disk_full_keeps_the_previous_file_and_leaves_nothing(self):
        directory = self.create_tempdir().full_path
        path = os.path.join(directory, "model.keras")
        lm = _tiny_lm()
        with mock.patch.object(keras.Model, "save",
                               side_effect=OSError(errno.ENOSPC, "No space left on device")):
            with self.assertRaises(CheckpointWriteError) as caught:
                saving.atomic_save_model(lm, path)
        self.assertEqual(caught.exception.errno, errno.ENOSPC)
        self.assertIn(f"Could not write {path}", str(caught.exception))
        self.assertIn("No space left on device (nothing was written)", str(caught.exception))
        self.assertEqual(os.listdir(directory), [])

        saving.atomic_save_model(lm, path)
        before = os.path.getsize(path)
        real_save = keras.Model.save

        def save_half_then_fail(model, filepath, *args, **kwargs):
            real_save(model, filepath, *args, **kwargs)
            with open(filepath, "r+b") as f:
                f.truncate(100)
            raise OSError(errno.ENOSPC, "No space left on device", filepath)

        with mock.patch.object(keras.Model, "save", save_half_then_fail):
            with self.assertRaisesRegex(CheckpointWriteError, "previous version is unchanged"):
                saving.atomic_save_model(lm, path)
        self.assertEqual(os.listdir(directory), ["model.keras"])
        self.assertEqual(os.path.getsize(path), before)
        saving.load_model_file(path, expected=GPT1CausalLM)


if __name__ == "__main__":
    absltest.main()
