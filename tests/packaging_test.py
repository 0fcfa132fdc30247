"""`pip install` of the package: the wheel carries the code, its assets and the binaries.

Builds a wheel from the source tree once, then installs it (a) into an empty folder and
imports it in a fresh process that cannot see the source tree, and (b) into a fresh
virtualenv (which sees the test environment's dependencies through a `.pth` file, as
`pip install` would have installed them) whose `gpt1-*` console scripts must run.
"""

import os
import shutil
import site
import subprocess
import sys
import tempfile
import zipfile

from absl.testing import absltest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Console script -> flags its --help must list.
_SCRIPTS = {
    "gpt1-pretrain": ("--model_dir", "--train_files", "--config"),
    "gpt1-finetune": ("--task", "--data_dir", "--init_checkpoint"),
    "gpt1-convert": ("--source_format", "--input", "--output"),
    "gpt1-export": ("--model_dir", "--export_dir", "--version"),
    "gpt1-evaluate": ("--zero_shot", "--data_dir", "--checkpoint"),
}


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return env


class PackagingTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
        source = os.path.join(cls.tmp, "src")
        os.makedirs(source)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(os.path.join(_ROOT, name), source)
        for package in ("gpt1_keras", "pipelines"):
            shutil.copytree(
                os.path.join(_ROOT, package), os.path.join(source, package),
                ignore=shutil.ignore_patterns("BUILD", "__pycache__"))
        wheels = os.path.join(cls.tmp, "wheels")
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
             "-q", "-w", wheels, source],
            check=True, capture_output=True, timeout=600,
        )
        (wheel,) = [f for f in os.listdir(wheels) if f.endswith(".whl")]
        cls.wheel = os.path.join(wheels, wheel)

    def test_every_package_is_in_the_wheel(self):
        names = zipfile.ZipFile(self.wheel).namelist()
        for directory, _, files in os.walk(os.path.join(_ROOT, "gpt1_keras")):
            if "__init__.py" in files:
                package = os.path.relpath(directory, _ROOT)
                self.assertIn(f"{package}/__init__.py", names)
        for name in os.listdir(os.path.join(_ROOT, "pipelines")):
            if name.endswith(".py"):
                self.assertIn(f"gpt1_keras/pipelines/{name}", names)

    def test_wheel_installs_with_assets(self):
        wheel = self.wheel
        names = zipfile.ZipFile(wheel).namelist()
        for asset in (
            "gpt1_keras/assets/gpt1_bpe/encoder_bpe_40000.json",
            "gpt1_keras/assets/gpt1_bpe/vocab_40000.bpe",
            "gpt1_keras/assets/gpt1_bpe/LICENSE",
            "gpt1_keras/assets/data/tinyshakespeare.txt",
        ):
            self.assertIn(asset, names)
        self.assertFalse([n for n in names if n.startswith("tests/")])

        target = self.create_tempdir("site").full_path
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
             "--target", target, wheel],
            check=True, capture_output=True, timeout=300,
        )
        script = (
            "import os, gpt1_keras\n"
            "from gpt1_keras.tokenizers import GPT1Tokenizer\n"
            "assert gpt1_keras.__file__.startswith(os.environ['TARGET']), gpt1_keras.__file__\n"
            "tok = GPT1Tokenizer()\n"
            "print(tok.vocabulary_size(), tok(['hello world']).to_list())\n"
        )
        env = _clean_env(PYTHONPATH=target, TARGET=target)
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=self.create_tempdir().full_path,
            env=env, capture_output=True, text=True, timeout=300,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        vocabulary_size, ids = result.stdout.split(" ", 1)
        self.assertEqual(int(vocabulary_size), 40481)
        self.assertIn("[[", ids)

    def test_console_scripts_run_the_binaries(self):
        venv = os.path.join(self.tmp, "venv")
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv],
                       check=True, capture_output=True, timeout=300)
        (site_packages,) = [
            os.path.join(root, name) for root, dirs, _ in os.walk(venv)
            for name in dirs if name == "site-packages"]
        with open(os.path.join(site_packages, "_test_dependencies.pth"), "w") as f:
            f.write("\n".join(site.getsitepackages()) + "\n")
        subprocess.run(
            [sys.executable, "-m", "pip", "--python", os.path.join(venv, "bin", "python"),
             "install", "--no-deps", "--no-index", "-q", self.wheel],
            check=True, capture_output=True, timeout=300)
        cwd = self.create_tempdir().full_path  # not the source tree
        runs = {
            script: subprocess.Popen(
                [os.path.join(venv, "bin", script), "--help"], cwd=cwd, env=_clean_env(),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for script in _SCRIPTS
        }
        for script, run in runs.items():
            out, err = run.communicate(timeout=600)
            self.assertEqual(run.returncode, 0, f"{script}: {err[-3000:]}")
            self.assertNotIn("Traceback", err)
            for flag in _SCRIPTS[script]:
                self.assertIn(flag, out, f"{script} --help")
            self.assertIn("Usage:", out, f"{script} --help: {out[:800]}")  # its docstring

        missing = os.path.join(cwd, "no_such_checkpoint")
        result = subprocess.run(
            [os.path.join(venv, "bin", "gpt1-convert"), f"--input={missing}",
             f"--output={os.path.join(cwd, 'lm.keras')}"],
            cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=600)
        self.assertEqual(result.returncode, 2, result.stderr[-3000:])
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(
            [line for line in result.stderr.splitlines() if line.startswith("ERROR:")],
            [f"ERROR: --input={missing} does not exist."])


if __name__ == "__main__":
    absltest.main()
