"""`pip install` of the package: the wheel carries the code and its assets.

Builds a wheel from the source tree, installs it into an empty folder and imports it
in a fresh process that cannot see the source tree.
"""

import os
import shutil
import subprocess
import sys
import zipfile

from absl.testing import absltest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class PackagingTest(absltest.TestCase):
    def test_wheel_installs_with_assets(self):
        source = self.create_tempdir("src").full_path
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(os.path.join(_ROOT, name), source)
        shutil.copytree(
            os.path.join(_ROOT, "gpt1_keras"),
            os.path.join(source, "gpt1_keras"),
            ignore=shutil.ignore_patterns("BUILD", "__pycache__"),
        )
        wheels = self.create_tempdir("wheels").full_path
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
             "-q", "-w", wheels, source],
            check=True, capture_output=True, timeout=300,
        )
        (wheel,) = [f for f in os.listdir(wheels) if f.endswith(".whl")]
        names = zipfile.ZipFile(os.path.join(wheels, wheel)).namelist()
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
             "--target", target, os.path.join(wheels, wheel)],
            check=True, capture_output=True, timeout=300,
        )
        script = (
            "import os, gpt1_keras\n"
            "from gpt1_keras.tokenizers import GPT1Tokenizer\n"
            "assert gpt1_keras.__file__.startswith(os.environ['TARGET']), gpt1_keras.__file__\n"
            "tok = GPT1Tokenizer()\n"
            "print(tok.vocabulary_size(), tok(['hello world']).to_list())\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(PYTHONPATH=target, TARGET=target, KERAS_BACKEND="tensorflow")
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=self.create_tempdir().full_path,
            env=env, capture_output=True, text=True, timeout=300,
        )
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        vocabulary_size, ids = result.stdout.split(" ", 1)
        self.assertEqual(int(vocabulary_size), 40481)
        self.assertIn("[[", ids)


if __name__ == "__main__":
    absltest.main()
