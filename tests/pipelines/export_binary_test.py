"""The export binary as a user runs it: concurrent exports, the lock, bad inputs."""

import json
import os
import subprocess
import sys
import textwrap
import time

import keras
from absl.testing import absltest

from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.saving import atomic_save_model

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([_REPO_ROOT, *sys.path]),
            KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")

# Holds the export directory's lock until a line arrives on stdin.
_HOLDER = textwrap.dedent("""
    import sys
    from gpt1_keras.run_lock import RunLock
    with RunLock(sys.argv[1], "export"):
        print("HELD", flush=True)
        sys.stdin.readline()
""")


def _export(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.export", *args], cwd=_REPO_ROOT, env=_ENV,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process):
    out, err = process.communicate(timeout=900)
    return process.returncode, out, err


def _versions(export_dir):
    return sorted(n for n in os.listdir(export_dir) if n.isdigit())


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("ERROR:")]


class ExportBinaryTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        keras.utils.set_random_seed(0)
        cls.lm = os.path.join(absltest.get_default_test_tmpdir(), "lm.keras")
        atomic_save_model(GPT1CausalLM.from_architecture("gpt1_tiny", num_layers=1), cls.lm)

    def test_two_concurrent_exports_pick_two_versions(self):
        export_dir = self.create_tempdir().full_path
        runs = [_export(f"--model_dir={self.lm}", f"--export_dir={export_dir}")
                for _ in range(2)]
        results = [_finish(run) for run in runs]
        for code, _, err in results:
            self.assertEqual(code, 0, err[-3000:])
        self.assertEqual(_versions(export_dir), ["1", "2"])
        printed = sorted(out.splitlines()[0] for _, out, _ in results)
        self.assertEqual(printed, [f"Exported GPT1CausalLM to {export_dir}/{v}" for v in "12"])
        for version in "12":
            with open(os.path.join(export_dir, version, "assets.extra",
                                   "gpt1_keras_export.json")) as f:
                self.assertEqual(json.load(f)["version"], int(version))
        # Nothing half-built is left (only the versions and the lock file).
        self.assertEqual(sorted(os.listdir(export_dir)), [".gpt1_keras.lock", "1", "2"])

    def test_an_export_waits_for_the_lock_before_picking_its_version(self):
        export_dir = self.create_tempdir().full_path
        holder = subprocess.Popen([sys.executable, "-c", _HOLDER, export_dir], env=_ENV,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.addCleanup(holder.wait)
        self.addCleanup(holder.kill)
        self.assertEqual(holder.stdout.readline().strip(), "HELD")
        run = _export(f"--model_dir={self.lm}", f"--export_dir={export_dir}")
        self.addCleanup(run.kill)
        # It builds its SavedModel under a hidden name, then waits for the lock.
        partial = os.path.join(export_dir, f".export-{run.pid}.partial")
        deadline = time.monotonic() + 600
        while not os.path.exists(os.path.join(partial, "saved_model.pb")):
            self.assertIsNone(run.poll(), run.stderr.read() if run.poll() is not None else "")
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.2)
        time.sleep(2)
        self.assertIsNone(run.poll())
        self.assertEqual(_versions(export_dir), [])
        holder.stdin.write("\n")
        holder.stdin.flush()
        code, out, err = _finish(run)
        self.assertEqual(code, 0, err[-3000:])
        self.assertEqual(_versions(export_dir), ["1"])
        self.assertFalse(os.path.exists(partial))

    def test_bad_inputs_are_one_line(self):
        tmp = self.create_tempdir()
        not_a_model = tmp.create_file("random.keras", content="not a zip archive\n").full_path
        export_dir = tmp.mkdir("export").full_path
        os.makedirs(os.path.join(export_dir, "1"))  # an existing version
        a_file = tmp.create_file("notes.txt").full_path
        cases = [
            ([f"--model_dir={tmp.full_path}/missing", f"--export_dir={export_dir}"],
             f"--model_dir={tmp.full_path}/missing does not exist"),
            ([f"--model_dir={not_a_model}", f"--export_dir={export_dir}"],
             f"model file {not_a_model} exists but is not a valid .keras archive"),
            ([f"--model_dir={tmp.full_path}", f"--export_dir={export_dir}"],
             f"{tmp.full_path} is a directory without model.keras"),
            ([f"--model_dir={self.lm}", f"--export_dir={a_file}"],
             f"--export_dir={a_file} exists and is not a directory"),
            ([f"--model_dir={self.lm}", f"--export_dir={export_dir}", "--version=0"],
             "--version must be >= 1. Received: 0"),
            ([f"--model_dir={self.lm}", f"--export_dir={export_dir}", "--version=1"],
             f"{export_dir}/1 exists; pick another `version`"),
            ([f"--model_dir={self.lm}", f"--export_dir={export_dir}", "--label_names=a,b"],
             "`label_names` is for classifiers"),
        ]
        for args, expected in cases:
            code, _, err = _finish(_export(*args))
            self.assertEqual(code, 2, err[-3000:])
            self.assertNotIn("Traceback", err)
            (line,) = _error_lines(err)
            self.assertIn(expected, line)
        self.assertEqual(_versions(export_dir), ["1"])


if __name__ == "__main__":
    absltest.main()
