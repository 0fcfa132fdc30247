"""cli.run: each expected error is one `ERROR:` line and its exit code; bugs keep a traceback."""

import errno
import os
import subprocess
import sys
import textwrap

from absl.testing import absltest
from absl.testing import parameterized

from gpt1_keras import cli
from gpt1_keras import errors

# A binary whose main raises what `--raise` names.
_BINARY = textwrap.dedent("""
    import errno
    from absl import app, flags
    from gpt1_keras import cli, errors

    _RAISE = flags.DEFINE_string("raise", None, "what main raises")

    class NonFiniteLossError(RuntimeError):
        pass

    CASES = {
        "user": lambda: errors.UserError("data.tsv line 3: no 'label' field; fix the file."),
        "config": lambda: errors.ConfigError("--batch_size must be > 0. Received: 0"),
        "locked": lambda: errors.RunDirectoryLockedError("/runs/a is in use by pretrain pid 7"),
        "checkpoint": lambda: errors.CheckpointWriteError(
            errno.ENOSPC, "could not write /runs/a/ckpt-000000010.npz"),
        "missing": lambda: FileNotFoundError(errno.ENOENT, "No such file or directory", "/x/y.txt"),
        "isdir": lambda: IsADirectoryError(errno.EISDIR, "Is a directory", "/runs"),
        "disk_full": lambda: OSError(errno.ENOSPC, "No space left on device", "/runs/m.keras"),
        "non_finite": lambda: NonFiniteLossError("Loss is NaN at step 5; lower the learning rate."),
        "usage": lambda: app.UsageError("--input is required."),
        "bug": lambda: KeyError("a real bug"),
        "os_bug": lambda: OSError(errno.EBADF, "Bad file descriptor"),
    }

    def main(argv):
        if _RAISE.value:
            raise CASES[_RAISE.value]()
        print("ok")

    if __name__ == "__main__":
        cli.run(main)
""")


def _run(case):
    return subprocess.run(
        [sys.executable, "-c", _BINARY, f"--raise={case}"], capture_output=True,
        text=True, timeout=300, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), TF_CPP_MIN_LOG_LEVEL="3"))


def _error_lines(stderr):
    # TensorFlow may log its own lines at import; the binary's are the ERROR: ones.
    return [line for line in stderr.splitlines() if line.startswith("ERROR:")]


class CliRunTest(parameterized.TestCase):
    @parameterized.parameters(
        ("user", 2, "ERROR: data.tsv line 3: no 'label' field; fix the file."),
        ("config", 2, "ERROR: --batch_size must be > 0. Received: 0"),
        ("locked", 2, "ERROR: /runs/a is in use by pretrain pid 7"),
        ("checkpoint", 2, "ERROR: could not write /runs/a/ckpt-000000010.npz"),
        ("missing", 2, "ERROR: No such file or directory (/x/y.txt)"),
        ("isdir", 2, "ERROR: Is a directory (/runs)"),
        ("disk_full", 2, "ERROR: No space left on device while writing /runs/m.keras: "
                         "free some space (or fix the mount) and rerun to resume."),
        ("non_finite", 3, "ERROR: Loss is NaN at step 5; lower the learning rate."),
    )
    def test_expected_error_is_one_line(self, case, code, line):
        result = _run(case)
        self.assertEqual(result.returncode, code, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(_error_lines(result.stderr), [line], result.stderr)

    def test_usage_error_keeps_absls_hint(self):
        result = _run("usage")
        self.assertEqual(result.returncode, 1)
        self.assertNotIn("Traceback", result.stderr)
        self.assertIn("--input is required.", result.stderr)
        self.assertIn("USAGE:", result.stderr)

    @parameterized.parameters("bug", "os_bug")
    def test_a_bug_keeps_its_traceback(self, case):
        result = _run(case)
        self.assertEqual(result.returncode, 1)
        self.assertIn("Traceback", result.stderr)
        self.assertEqual(_error_lines(result.stderr), [])

    def test_success_and_help(self):
        result = _run("")
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "ok"))
        result = subprocess.run(
            [sys.executable, "-c", _BINARY, "--help"], capture_output=True, text=True,
            timeout=300, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path),
                                  TF_CPP_MIN_LOG_LEVEL="3"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("--raise: what main raises", result.stdout)

    def test_error_line(self):
        self.assertEqual(cli.error_line(errors.ConfigError("bad")), "bad")
        self.assertIsNone(cli.error_line(ValueError("bad")))
        self.assertEqual(cli.error_line(FileNotFoundError("No model at /m")), "No model at /m")
        # The error classes keep the builtins callers already catch.
        self.assertIsInstance(errors.ConfigError("x"), ValueError)
        self.assertIsInstance(errors.CheckpointWriteError("x"), OSError)
        self.assertTrue(issubclass(errors.RunDirectoryLockedError, errors.UserError))


if __name__ == "__main__":
    absltest.main()
