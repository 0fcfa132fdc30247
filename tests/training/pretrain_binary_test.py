"""//pipelines:pretrain end to end, as a user runs it: artifacts, SIGKILL resume,
corrupt-checkpoint fallback, --epochs with mixed_bfloat16, bad flags."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
from absl.testing import absltest

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TINY = ["--preset=gpt1_tiny", "--batch_size=4", "--sequence_length=16", "--noxla",
         "--steps_per_eval=10", "--eval_steps=2", "--num_samples=2", "--sample_tokens=5",
         "--deterministic", "--seed=3"]


def _corpus(directory):
    """The first 400 lines of the shipped tinyshakespeare: real text, a few seconds."""
    source = os.path.join(_REPO_ROOT, "gpt1_keras", "assets", "data", "tinyshakespeare.txt")
    with open(source) as f:
        lines = f.readlines()[:400]
    path = os.path.join(directory, "corpus.txt")
    with open(path, "w") as f:
        f.writelines(lines)
    return path


def _command(*args):
    return [sys.executable, "-m", "pipelines.pretrain", *args]


def _env(backend="tensorflow"):
    return dict(os.environ, PYTHONPATH=_REPO_ROOT, KERAS_BACKEND=backend)


def _run(*args, backend="tensorflow"):
    return subprocess.run(_command(*args), cwd=_REPO_ROOT, env=_env(backend),
                          capture_output=True, text=True, timeout=900)


def _final_arrays(model_dir):
    steps = sorted(glob.glob(os.path.join(model_dir, "checkpoints", "ckpt-*.npz")))
    with np.load(steps[-1]) as data:
        return os.path.basename(steps[-1]), {k: data[k] for k in data.files}


class PretrainBinaryTest(absltest.TestCase):
    def test_artifacts_then_corrupt_checkpoint_fallback(self):
        tmp = self.create_tempdir().full_path
        model_dir = os.path.join(tmp, "run")
        result = _run(*_TINY, f"--train_files={_corpus(tmp)}", f"--model_dir={model_dir}",
                      "--train_steps=20", "--checkpoint_every=5")
        self.assertEqual(result.returncode, 0, result.stderr[-4000:])

        metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
        self.assertEqual(metrics["final_step"], 20)
        for key in ("train_loss", "val_loss", "val_perplexity", "unigram_val_perplexity",
                    "tokens_per_second"):
            self.assertTrue(np.isfinite(metrics[key]) and metrics[key] > 0, key)
        self.assertEqual([e["step"] for e in metrics["history"]], [10, 20])
        self.assertAlmostEqual(metrics["val_perplexity"], np.exp(metrics["val_loss"]), places=3)

        # Checkpoints: the newest two, each with a sidecar whose sha256 matches.
        names = sorted(os.listdir(os.path.join(model_dir, "checkpoints")))
        self.assertEqual(names, ["ckpt-000000015.json", "ckpt-000000015.npz",
                                 "ckpt-000000020.json", "ckpt-000000020.npz"])
        # TensorBoard event files.
        self.assertNotEmpty(glob.glob(os.path.join(model_dir, "logs", "*", "events.out.*")))
        # The .keras model loads and runs.
        check = subprocess.run(
            [sys.executable, "-c",
             "import keras, numpy as np, gpt1_keras, sys; "
             "lm = keras.saving.load_model(sys.argv[1]); "
             "x = {'token_ids': np.ones((1, 4), 'int32'), 'padding_mask': np.ones((1, 4), 'int32')}; "
             "print(lm(x).shape)", os.path.join(model_dir, "model.keras")],
            cwd=_REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=300)
        self.assertIn("(1, 4, 40481)", check.stdout, check.stderr[-2000:])
        # A real PNG, and the samples.
        with open(os.path.join(model_dir, "loss_curve.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertGreater(os.path.getsize(os.path.join(model_dir, "loss_curve.png")), 5000)
        samples = open(os.path.join(model_dir, "samples.txt")).read()
        self.assertEqual(samples.count("--- sample"), 2)
        self.assertIn("romeo :", samples)

        # Corrupt the newest checkpoint; a longer run falls back to step 15, says so.
        npz = os.path.join(model_dir, "checkpoints", "ckpt-000000020.npz")
        with open(npz, "r+b") as f:
            f.truncate(os.path.getsize(npz) // 2)
        result = _run(*_TINY, f"--train_files={_corpus(tmp)}", f"--model_dir={model_dir}",
                      "--train_steps=22", "--checkpoint_every=5")
        self.assertEqual(result.returncode, 0, result.stderr[-4000:])
        self.assertIn("Checkpoint at step 20 is unusable", result.stderr)
        self.assertIn("truncated", result.stderr)
        metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
        self.assertEqual((metrics["resumed_from_step"], metrics["final_step"]), (15, 22))

    def test_epochs_and_mixed_bfloat16(self):
        tmp = self.create_tempdir().full_path
        model_dir = os.path.join(tmp, "run")
        result = _run(*_TINY, f"--train_files={_corpus(tmp)}", f"--model_dir={model_dir}",
                      "--epochs=0.5", "--precision=mixed_bfloat16", "--checkpoint_every=50")
        self.assertEqual(result.returncode, 0, result.stderr[-4000:])

        # --epochs=0.5: half the training tokens (each non-blank line + its separator),
        # in updates of 4 x 16 tokens, rounded up.
        from gpt1_keras.tokenizers import GPT1Tokenizer

        with open(os.path.join(model_dir, "data", "train.txt")) as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        tokens = sum(len(ids) + 1 for ids in GPT1Tokenizer()(lines).to_list())
        metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
        self.assertEqual(metrics["final_step"], int(np.ceil(0.5 * tokens / (4 * 16))))
        self.assertEqual(metrics["precision"], "mixed_bfloat16")
        self.assertTrue(np.isfinite(metrics["val_loss"]))
        check = subprocess.run(
            [sys.executable, "-c",
             "import keras, gpt1_keras, sys; lm = keras.saving.load_model(sys.argv[1]); "
             "print(lm.dtype_policy.name, lm.backbone.layers[-1].compute_dtype, "
             "lm.trainable_variables[0].dtype)", os.path.join(model_dir, "model.keras")],
            cwd=_REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=300)
        # bfloat16 compute, float32 weights.
        self.assertIn("mixed_bfloat16 bfloat16 float32", check.stdout, check.stderr[-2000:])

    def test_sigkill_then_restart_matches_an_uninterrupted_run(self):
        tmp = self.create_tempdir().full_path
        corpus = _corpus(tmp)
        args = [*_TINY, f"--train_files={corpus}", "--train_steps=60", "--checkpoint_every=5"]

        reference = os.path.join(tmp, "reference")
        result = _run(*args, f"--model_dir={reference}")
        self.assertEqual(result.returncode, 0, result.stderr[-4000:])

        killed = os.path.join(tmp, "killed")
        proc = subprocess.Popen(_command(*args, f"--model_dir={killed}"), cwd=_REPO_ROOT,
                                env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        sidecar = os.path.join(killed, "checkpoints", "ckpt-000000015.json")
        deadline = time.time() + 600
        while not os.path.exists(sidecar) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        self.assertFalse(os.path.exists(os.path.join(killed, "metrics.json")))
        steps_at_kill = sorted(glob.glob(os.path.join(killed, "checkpoints", "*.json")))
        self.assertNotEmpty(steps_at_kill)
        last_at_kill = int(os.path.basename(steps_at_kill[-1])[5:14])
        self.assertBetween(last_at_kill, 15, 55)

        result = _run(*args, f"--model_dir={killed}")
        self.assertEqual(result.returncode, 0, result.stderr[-4000:])
        self.assertIn(f"Training from step {last_at_kill} to 60", result.stderr)
        metrics = json.load(open(os.path.join(killed, "metrics.json")))
        self.assertEqual((metrics["resumed_from_step"], metrics["final_step"]),
                         (last_at_kill, 60))
        reference_metrics = json.load(open(os.path.join(reference, "metrics.json")))
        # Validation points are identical; the train loss of the epoch the kill cut is
        # the mean over its resumed part only, so it is not compared.
        self.assertEqual([(e["step"], e["val_loss"]) for e in metrics["history"]],
                         [(e["step"], e["val_loss"]) for e in reference_metrics["history"]])

        # Bitwise: TF op determinism + restored seed states + the same data position.
        name_a, arrays_a = _final_arrays(reference)
        name_b, arrays_b = _final_arrays(killed)
        self.assertEqual(name_a, name_b)
        for key in arrays_a:
            np.testing.assert_array_equal(arrays_a[key], arrays_b[key], err_msg=key)

    def test_bad_flags_fail_before_training_naming_the_flag(self):
        tmp = self.create_tempdir().full_path
        corpus = _corpus(tmp)
        cases = [  # (flags, expected message, Keras backend)
            (["--preset=gpt9"], "--preset: Unknown GPT-1 preset 'gpt9'", "tensorflow"),
            (["--train_files=/no/such/*.txt"], "--train_files: The glob '/no/such/*.txt'",
             "tensorflow"),
            (["--preset=gpt1_tiny", "--sequence_length=65"],
             "--sequence_length=65 must be in [1, 64]", "tensorflow"),
            (["--preset=gpt1_tiny", "--sequence_length=16", "--strategy=mirrored",
              "--cpu_devices=2", "--batch_size=3",
              f"--train_files={corpus}"],
             "--batch_size=3 is not divisible by the 2 replicas", "tensorflow"),
            (["--preset=gpt1_tiny", "--sequence_length=16", "--strategy=data_parallel",
              "--noxla", f"--train_files={corpus}"],
             "--noxla with --strategy=data_parallel", "jax"),
        ]
        for args, message, backend in cases:
            result = _run(*args, f"--model_dir={os.path.join(tmp, 'bad')}", backend=backend)
            self.assertNotEqual(result.returncode, 0, args)
            self.assertIn(message, result.stderr, args)
            self.assertFalse(os.path.exists(os.path.join(tmp, "bad", "checkpoints")), args)


if __name__ == "__main__":
    absltest.main()
