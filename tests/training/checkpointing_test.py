"""CheckpointManager: round trip, pruning, atomicity, corruption fallback, refusals."""

import errno
import os
import subprocess
from unittest import mock

import keras
import numpy as np
from absl.testing import absltest
from keras import ops

from gpt1_keras.errors import CheckpointWriteError
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.training import checkpointing
from gpt1_keras.training import optimizers

_X = {"token_ids": np.arange(16, dtype="int32").reshape(2, 8),
      "padding_mask": np.ones((2, 8), "int32")}
_Y = np.arange(1, 17, dtype="int32").reshape(2, 8)


def _trained_lm(seed, steps):
    keras.utils.set_random_seed(seed)
    lm = GPT1CausalLM.from_architecture("gpt1_tiny", num_layers=1)
    lm.compile(optimizer=optimizers.build_optimizer(1e-3))
    lm.optimizer.build(lm.trainable_variables)
    for _ in range(steps):
        lm.train_on_batch(_X, _Y)
    return lm


def _state(lm):
    return [ops.convert_to_numpy(v) for v in lm.variables + lm.optimizer.variables]


class CheckpointManagerTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.dir = self.create_tempdir().full_path
        self.manager = checkpointing.CheckpointManager(self.dir, max_to_keep=2)

    def test_round_trip_restores_model_optimizer_and_seeds(self):
        lm = _trained_lm(0, steps=2)
        self.manager.save(2, lm, lm.optimizer)
        other = _trained_lm(1, steps=1)
        sidecar = self.manager.restore_latest(other, other.optimizer)
        self.assertEqual(sidecar["step"], 2)
        self.assertEqual(int(ops.convert_to_numpy(other.optimizer.iterations)), 2)
        for a, b in zip(_state(lm), _state(other)):
            np.testing.assert_array_equal(a, b)
        # The dropout seed states are part of it (bitwise resume needs them).
        self.assertTrue(any("seed_generator_state" in k[0] for k in sidecar["model_variables"]))

    def test_keeps_the_newest_and_leaves_no_temp_files(self):
        lm = _trained_lm(0, steps=1)
        for step in (1, 2, 3):
            self.manager.save(step, lm, lm.optimizer)
        self.assertEqual(self.manager.steps(), [2, 3])
        self.assertCountEqual(
            os.listdir(self.dir),
            ["ckpt-000000002.npz", "ckpt-000000002.json", "ckpt-000000003.npz",
             "ckpt-000000003.json"],
        )

    def test_corrupt_or_truncated_newest_falls_back_with_a_message(self):
        lm = _trained_lm(0, steps=1)
        self.manager.save(1, lm, lm.optimizer)
        expected = _state(lm)
        lm.train_on_batch(_X, _Y)
        self.manager.save(2, lm, lm.optimizer)
        npz, _ = self.manager.paths(2)
        for damage in ("flip", "truncate"):
            with open(npz, "r+b") as f:
                if damage == "flip":
                    f.seek(os.path.getsize(npz) // 2)
                    byte = f.read(1)
                    f.seek(-1, 1)
                    f.write(bytes([byte[0] ^ 0xFF]))
                else:
                    f.truncate(os.path.getsize(npz) // 3)
            other = _trained_lm(1, steps=1)
            with self.assertLogs(level="WARNING") as logs:
                sidecar = self.manager.restore_latest(other, other.optimizer)
            self.assertEqual(sidecar["step"], 1)
            self.assertIn("step 2 is unusable", "\n".join(logs.output))
            self.assertIn("ckpt-000000002.npz", "\n".join(logs.output))
            for a, b in zip(expected, _state(other)):
                np.testing.assert_array_equal(a, b)

    def test_a_write_killed_before_its_sidecar_is_invisible_and_cleaned(self):
        lm = _trained_lm(0, steps=1)
        self.manager.save(1, lm, lm.optimizer)
        npz, _ = self.manager.paths(5)
        with open(npz, "wb") as f:  # arrays written, sidecar never written
            f.write(b"partial")
        with open(npz + ".tmp-123", "wb") as f:  # a write interrupted mid-file
            f.write(b"partial")
        manager = checkpointing.CheckpointManager(self.dir, max_to_keep=2)
        self.assertEqual(manager.steps(), [1])
        self.assertFalse(os.path.exists(npz + ".tmp-123"))
        other = _trained_lm(1, steps=1)
        self.assertEqual(manager.restore_latest(other, other.optimizer)["step"], 1)

    def test_incompatible_model_is_an_error_not_a_fresh_start(self):
        lm = _trained_lm(0, steps=1)
        self.manager.save(1, lm, lm.optimizer)
        keras.utils.set_random_seed(0)
        bigger = GPT1CausalLM.from_architecture("gpt1_tiny", num_layers=2)
        bigger.compile(optimizer=optimizers.build_optimizer(1e-3))
        bigger.optimizer.build(bigger.trainable_variables)
        with self.assertRaisesRegex(checkpointing.IncompatibleCheckpointError,
                                    "different model variables"):
            self.manager.restore_latest(bigger, bigger.optimizer)

    def test_restore_model_weights_needs_no_optimizer(self):
        lm = _trained_lm(0, steps=2)
        self.manager.save(2, lm, lm.optimizer)
        keras.utils.set_random_seed(1)
        fresh = GPT1CausalLM.from_architecture("gpt1_tiny", num_layers=1)  # no optimizer
        reader = checkpointing.CheckpointManager(self.dir, is_chief=False)
        self.assertEqual(reader.restore_model_weights(2, fresh)["step"], 2)
        for a, b in zip(lm.variables, fresh.variables):
            np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))
        np.testing.assert_allclose(ops.convert_to_numpy(fresh(_X)),
                                   ops.convert_to_numpy(lm(_X)), rtol=0, atol=0)
        bigger = GPT1CausalLM.from_architecture("gpt1_tiny", num_layers=2)
        with self.assertRaisesRegex(checkpointing.IncompatibleCheckpointError,
                                    "other shapes than the model"):
            reader.restore_model_weights(2, bigger)
        npz = self.manager.paths(2)[0]
        with open(npz, "r+b") as f:
            f.seek(100)
            f.write(b"garbage!")
        with self.assertRaisesRegex(checkpointing.CheckpointError, "sha256 mismatch"):
            reader.restore_model_weights(2, fresh)

    def test_refuses_to_save_non_finite_weights(self):
        lm = _trained_lm(0, steps=1)
        self.manager.save(1, lm, lm.optimizer)
        weight = lm.trainable_variables[0]
        weight.assign(ops.full(weight.shape, float("nan")))
        with self.assertRaisesRegex(checkpointing.CheckpointError, "NaN/Inf"):
            self.manager.save(2, lm, lm.optimizer)
        self.assertEqual(self.manager.steps(), [1])

    def _assert_resumes_from(self, directory, step, expected):
        other = _trained_lm(1, steps=1)
        manager = checkpointing.CheckpointManager(directory, max_to_keep=2)
        self.assertEqual(manager.restore_latest(other, other.optimizer)["step"], step)
        for a, b in zip(expected, _state(other)):
            np.testing.assert_array_equal(a, b)

    def test_disk_full_names_the_checkpoint_and_the_last_good_one(self):
        lm = _trained_lm(0, steps=1)
        enospc = OSError(errno.ENOSPC, "No space left on device")
        # Full before anything was saved, then full while writing the arrays of
        # step 2, then full while writing its sidecar (the arrays already in place).
        with mock.patch.object(os, "fsync", side_effect=enospc):
            with self.assertRaises(CheckpointWriteError) as caught:
                self.manager.save(1, lm, lm.optimizer)
        message = str(caught.exception)
        self.assertEqual(caught.exception.errno, errno.ENOSPC)
        self.assertIn("Could not write checkpoint ckpt-000000001.npz (step 1)", message)
        self.assertIn(f"in {self.dir}: No space left on device", message)
        self.assertIn("Last good checkpoint: none yet", message)
        self.assertEqual(os.listdir(self.dir), [])

        self.manager.save(1, lm, lm.optimizer)
        expected = _state(lm)
        lm.train_on_batch(_X, _Y)
        for side_effect in ([enospc], [None, enospc]):
            with mock.patch.object(os, "fsync", side_effect=side_effect):
                with self.assertRaises(CheckpointWriteError) as caught:
                    self.manager.save(2, lm, lm.optimizer)
            message = str(caught.exception)
            self.assertIn("checkpoint ckpt-000000002.npz (step 2)", message)
            self.assertIn(
                f"Last good checkpoint: {self.manager.paths(1)[0]} (step 1), unchanged", message)
            self.assertIn("rerun to resume", message)
            self.assertCountEqual(os.listdir(self.dir),
                                  ["ckpt-000000001.npz", "ckpt-000000001.json"])
            self._assert_resumes_from(self.dir, 1, expected)

    def test_failed_resave_of_an_existing_step_keeps_it(self):
        lm = _trained_lm(0, steps=1)
        self.manager.save(1, lm, lm.optimizer)
        expected = _state(lm)
        with mock.patch.object(os, "fsync", side_effect=OSError(errno.EDQUOT, "Quota")):
            with self.assertRaisesRegex(CheckpointWriteError, "step 1.*Quota"):
                self.manager.save(1, lm, lm.optimizer)
        self._assert_resumes_from(self.dir, 1, expected)

    def test_full_tmpfs(self):
        """The same on a real full file system (a tmpfs; needs root to mount)."""
        lm = _trained_lm(0, steps=1)
        probe = self.create_tempdir().full_path
        checkpointing.CheckpointManager(probe).save(1, lm, lm.optimizer)
        size = sum(os.path.getsize(os.path.join(probe, n)) for n in os.listdir(probe))
        mount_point = self.create_tempdir().full_path
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={int(size * 1.5)}", "tmpfs", mount_point],
            capture_output=True, text=True)
        if mounted.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", mount_point], check=True)
        directory = os.path.join(mount_point, "checkpoints")
        manager = checkpointing.CheckpointManager(directory, max_to_keep=2)
        manager.save(1, lm, lm.optimizer)
        expected = _state(lm)
        lm.train_on_batch(_X, _Y)
        with self.assertRaises(CheckpointWriteError) as caught:
            manager.save(2, lm, lm.optimizer)
        self.assertEqual(caught.exception.errno, errno.ENOSPC)
        self.assertIn("ckpt-000000002.npz (step 2)", str(caught.exception))
        self.assertIn("Last good checkpoint:", str(caught.exception))
        self.assertIn("(step 1), unchanged", str(caught.exception))
        self.assertEqual(sorted(os.listdir(directory)),
                         ["ckpt-000000001.json", "ckpt-000000001.npz"])
        self._assert_resumes_from(directory, 1, expected)
        # Space is freed: the rerun resumes from step 1 and saves step 2.
        subprocess.run(["mount", "-o", f"remount,size={size * 3}", mount_point], check=True)
        manager.save(2, lm, lm.optimizer)
        self.assertEqual(manager.steps(), [1, 2])

    def test_non_chief_writes_nothing(self):
        lm = _trained_lm(0, steps=1)
        directory = os.path.join(self.dir, "worker")
        manager = checkpointing.CheckpointManager(directory, is_chief=False)
        self.assertIsNone(manager.save(1, lm, lm.optimizer))
        self.assertFalse(os.path.exists(directory))


if __name__ == "__main__":
    absltest.main()
