"""//pipelines:pretrain end to end, as a user runs it: artifacts, corrupt-checkpoint
fallback, refused resume, SIGKILL + restart (bitwise), --epochs with mixed_bfloat16, the
books recipe's whole-book split, --validation_files with invalid UTF-8, --schedule,
--model_overrides, a failed report after the model is saved, and the expected errors
(one line, no traceback)."""

import glob
import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
from absl.testing import absltest

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_HERE = os.path.dirname(os.path.abspath(__file__))
_TINY = ["--preset=gpt1_tiny", "--batch_size=4", "--sequence_length=16", "--nojit_compile",
         "--steps_per_epoch=10", "--eval_steps=2", "--num_samples=2", "--sample_tokens=5",
         "--deterministic", "--seed=3"]


def _shakespeare(lines=None):
    source = os.path.join(_REPO_ROOT, "gpt1_keras", "assets", "data", "tinyshakespeare.txt")
    with open(source) as f:
        return f.readlines()[:lines]


def _corpus(directory, lines=400, name="corpus.txt"):
    """The first lines of the shipped tinyshakespeare: real text, a few seconds."""
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.writelines(_shakespeare(lines))
    return path


def _command(*args, module="pipelines.pretrain"):
    return [sys.executable, "-m", module, *args]


def _env(backend="tensorflow"):
    return dict(os.environ, PYTHONPATH=_REPO_ROOT, KERAS_BACKEND=backend)


def _run(*args, backend="tensorflow", module="pipelines.pretrain"):
    return subprocess.run(_command(*args, module=module), cwd=_REPO_ROOT, env=_env(backend),
                          capture_output=True, text=True, timeout=900)


def _final_arrays(model_dir):
    steps = sorted(glob.glob(os.path.join(model_dir, "checkpoints", "ckpt-*.npz")))
    with np.load(steps[-1]) as data:
        return os.path.basename(steps[-1]), {k: data[k] for k in data.files}


def _metrics(model_dir):
    with open(os.path.join(model_dir, "metrics.json")) as f:
        return json.load(f)


class PretrainBinaryTest(absltest.TestCase):

    def assertFailsInOneLine(self, result, message, returncode=None):
        self.assertNotEqual(result.returncode, 0, result.stderr[-3000:])
        if returncode is not None:
            self.assertEqual(result.returncode, returncode, result.stderr[-3000:])
        self.assertIn(message, result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def test_artifacts_corrupt_checkpoint_fallback_and_refused_resume(self):
        tmp = self.create_tempdir().full_path
        model_dir = os.path.join(tmp, "run")
        args = [*_TINY, f"--train_files={_corpus(tmp)}", f"--model_dir={model_dir}",
                "--checkpoint_every=5"]
        result = _run(*args, "--train_steps=20")
        self.assertEqual(result.returncode, 0, result.stderr[-4000:])

        metrics = _metrics(model_dir)
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
        with open(os.path.join(model_dir, "samples.txt")) as f:
            samples = f.read()
        self.assertEqual(samples.count("--- sample"), 2)
        self.assertIn("romeo :", samples)

        # Corrupt the newest checkpoint; a longer run falls back to step 15, says so.
        npz = os.path.join(model_dir, "checkpoints", "ckpt-000000020.npz")
        with open(npz, "r+b") as f:
            f.truncate(os.path.getsize(npz) // 2)
        result = _run(*args, "--train_steps=22")
        self.assertEqual(result.returncode, 0, result.stderr[-4000:])
        self.assertIn("Checkpoint at step 20 is unusable", result.stderr)
        self.assertIn("truncated", result.stderr)
        metrics = _metrics(model_dir)
        self.assertEqual((metrics["resumed_from_step"], metrics["final_step"]), (15, 22))

        # Other data settings on the same directory: refused, naming the flag.
        result = _run(*args, "--train_steps=22", "--batch_size=8")
        self.assertFailsInOneLine(
            result, f"--model_dir={model_dir} holds a run with different batch_size "
                    "(was 4, now 8)")

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
        metrics = _metrics(model_dir)
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

    def test_books_recipe_holds_out_whole_books_with_mixed_float16_and_no_samples(self):
        tmp = self.create_tempdir().full_path
        lines = _shakespeare(600)
        books = [f"BOOK {i}\n\n" + "".join(lines[i * 100:(i + 1) * 100]).strip("\n")
                 for i in range(6)]  # Blank lines inside books, two between books.
        corpus = os.path.join(tmp, "books.txt")
        with open(corpus, "w") as f:
            f.write("\n\n\n".join(books) + "\n")
        model_dir = os.path.join(tmp, "run")
        result = _run("--config=books", "--preset=gpt1_tiny", f"--train_files={corpus}",
                      "--validation_books=2", "--train_steps=6", "--batch_size=4",
                      "--sequence_length=16", "--steps_per_epoch=3", "--checkpoint_every=2",
                      "--eval_steps=2", "--num_samples=0", "--precision=mixed_float16",
                      "--nojit_compile", f"--model_dir={model_dir}")
        self.assertEqual(result.returncode, 0, result.stderr[-4000:])
        metrics = _metrics(model_dir)
        held_out = metrics["split"]["validation_books"]
        self.assertLen(held_out, 2)
        self.assertEqual(metrics["split"]["books"], 6)
        with open(os.path.join(model_dir, "data", "train.txt")) as f:
            train = f.read()
        with open(os.path.join(model_dir, "data", "valid.txt")) as f:
            valid = f.read()
        for i, book in enumerate(books):  # Every book whole, on exactly one side.
            self.assertEqual((book in valid, book in train), (i in held_out, i not in held_out))
        self.assertIn("Held out 2 of 6 books", result.stderr)
        # mixed_float16 trains (loss scaling) to finite losses.
        self.assertEqual(metrics["precision"], "mixed_float16")
        self.assertTrue(np.isfinite(metrics["val_loss"]))
        # The recipe keeps every checkpoint; --num_samples=0 writes none.
        self.assertLen(glob.glob(os.path.join(model_dir, "checkpoints", "*.npz")), 3)
        self.assertFalse(os.path.exists(os.path.join(model_dir, "samples.txt")))

    def test_validation_files_invalid_utf8_schedule_overrides_and_a_failed_report(self):
        tmp = self.create_tempdir().full_path
        train = os.path.join(tmp, "train.txt")
        with open(train, "wb") as f:
            text = "".join(_shakespeare(400)).encode()
            f.write(text[:100] + b"\xff\xfe" + text[100:200] + b"\xc3\n" + text[200:])
        valid = _corpus(tmp, lines=60, name="valid.txt")
        model_dir = os.path.join(tmp, "run")
        # samples.txt cannot be written (a directory is in the way): reported, not fatal.
        os.makedirs(os.path.join(model_dir, "samples.txt"))
        result = _run(*_TINY, f"--train_files={train}", f"--validation_files={valid}",
                      "--train_steps=20", "--warmup_steps=2", "--schedule=linear",
                      "--learning_rate=1e-3", "--model_overrides=num_layers=1,dropout=0.0",
                      "--num_samples=1", f"--model_dir={model_dir}")
        self.assertEqual(result.returncode, 0, result.stderr[-4000:])
        self.assertRegex(result.stderr, r"train.txt: 2 of 40\d lines \(3 bytes, first at line "
                                        r"\d+\) are not valid UTF-8; each invalid byte "
                                        r"sequence is replaced by U\+FFFD")
        self.assertNotIn("valid.txt: ", result.stderr)
        self.assertIn("Writing samples.txt failed (IsADirectoryError", result.stderr)
        self.assertIn(f"the model was saved at {model_dir}/model.keras", result.stderr)
        self.assertTrue(os.path.exists(os.path.join(model_dir, "metrics.json")))
        self.assertFalse(os.path.exists(os.path.join(model_dir, "data")))  # No split made.
        # --schedule=linear: after 10 of 20 updates, peak * (1 - 10/20) (cosine: 5.87e-4).
        history = _metrics(model_dir)["history"]
        self.assertEqual(history[0]["step"], 10)
        self.assertAlmostEqual(history[0]["learning_rate"], 5e-4, places=7)
        # --model_overrides: one block.
        with open(sorted(glob.glob(os.path.join(model_dir, "checkpoints", "*.json")))[-1]) as f:
            names = [name for name, _ in json.load(f)["model_variables"]]
        self.assertTrue(any(n.startswith("transformer_layer_0/") for n in names))
        self.assertFalse(any(n.startswith("transformer_layer_1/") for n in names))
        with open(os.path.join(model_dir, "config.json")) as f:
            self.assertEqual(json.load(f)["model_overrides"], [["dropout", 0.0],
                                                               ["num_layers", 1]])

    def test_sigkill_at_a_checkpoint_then_restart_matches_an_uninterrupted_run(self):
        tmp = self.create_tempdir().full_path
        corpus = _corpus(tmp)
        args = [*_TINY, f"--train_files={corpus}", "--train_steps=30", "--checkpoint_every=5"]
        reference = os.path.join(tmp, "reference")
        killed = os.path.join(tmp, "killed")
        # The helper is the binary plus a callback that SIGKILLs the process right after
        # the step-15 checkpoint is written: a deterministic point, mid-epoch.
        procs = [
            subprocess.Popen(_command(*args, f"--model_dir={reference}"), cwd=_REPO_ROOT,
                             env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True),
            subprocess.Popen(
                _command(*args, f"--model_dir={killed}", "--kill_at=15",
                         module="tests.pipelines.pretrain_kill_helper"),
                cwd=_REPO_ROOT, env=_env(), stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True),
        ]
        errs = [p.communicate(timeout=900)[1] for p in procs]
        self.assertEqual(procs[0].returncode, 0, errs[0][-4000:])
        self.assertEqual(procs[1].returncode, -signal.SIGKILL, errs[1][-4000:])
        self.assertFalse(os.path.exists(os.path.join(killed, "metrics.json")))
        self.assertEqual(
            [os.path.basename(p)
             for p in sorted(glob.glob(os.path.join(killed, "checkpoints", "*.json")))],
            ["ckpt-000000010.json", "ckpt-000000015.json"])

        result = _run(*args, f"--model_dir={killed}")
        self.assertEqual(result.returncode, 0, result.stderr[-4000:])
        self.assertIn("Training from step 15 to 30", result.stderr)
        metrics = _metrics(killed)
        self.assertEqual((metrics["resumed_from_step"], metrics["final_step"]), (15, 30))
        reference_metrics = _metrics(reference)
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

    def test_help_and_expected_errors_fail_in_one_line(self):
        tmp = self.create_tempdir().full_path
        corpus = _corpus(tmp)
        base = ["--preset=gpt1_tiny", "--sequence_length=16", "--nojit_compile",
                f"--train_files={corpus}"]

        result = _run("--help")  # absl exits 1 after printing the help.
        self.assertNotIn("Traceback", result.stderr)
        for flag in ("--config", "--validation_books", "--steps_per_epoch", "--jit_compile",
                     "--num_samples", "books"):
            self.assertIn(flag, result.stdout)

        # A directory held by another live process: refused at once, naming it.
        locked = os.path.join(tmp, "locked")
        holder = subprocess.Popen([sys.executable, os.path.join(_HERE, "hold_run_lock.py"),
                                   locked], cwd=_REPO_ROOT, env=_env(),
                                  stdout=subprocess.PIPE, text=True)
        try:
            self.assertEqual(holder.stdout.readline().strip(), "locked")
            result = _run(*base, f"--model_dir={locked}")
            self.assertFailsInOneLine(
                result, f"ERROR: {locked} is in use by pretrain pid {holder.pid} on host "
                        f"{socket.gethostname()}", returncode=2)
        finally:
            holder.kill()
            holder.wait()
        self.assertFalse(os.path.exists(os.path.join(locked, "checkpoints")))

        # --model_dir under a file.
        a_file = _corpus(tmp, lines=1, name="a_file")
        result = _run(*base, f"--model_dir={a_file}/run")
        self.assertFailsInOneLine(result, f"ERROR: {a_file}/run cannot be used as a pretrain "
                                          "directory", returncode=2)

        # A diverging run: exit 3 and one line naming the step and the checkpoint.
        result = _run(*base, "--batch_size=4", "--train_steps=4", "--schedule=constant",
                      "--learning_rate=1e30", "--clip_norm=0", "--steps_per_epoch=2",
                      "--eval_steps=1", f"--model_dir={os.path.join(tmp, 'nan')}")
        self.assertFailsInOneLine(result, "ERROR: The training loss became nan at step",
                                  returncode=3)

        # Settings checked before any training, named as flags.
        tiny_valid = _corpus(tmp, lines=3, name="tiny_valid.txt")
        cases = [  # (flags, expected message, Keras backend)
            (["--preset=gpt9"], "--preset: Unknown GPT-1 preset 'gpt9'", "tensorflow"),
            ([f"--validation_files={tiny_valid}", "--batch_size=4"],
             "--validation_files: the validation text (", "tensorflow"),
            (["--strategy=mirrored", "--cpu_devices=2", "--batch_size=3"],
             "--batch_size=3 is not divisible by the 2 replicas", "tensorflow"),
            (["--strategy=data_parallel", "--batch_size=4"],
             "--jit_compile=False with strategy=data_parallel", "jax"),
        ]
        for args, message, backend in cases:
            bad = os.path.join(tmp, "bad")
            result = _run(*base, *args, f"--model_dir={bad}", backend=backend)
            self.assertFailsInOneLine(result, message)
            self.assertFalse(os.path.exists(os.path.join(bad, "checkpoints")), args)


if __name__ == "__main__":
    absltest.main()
