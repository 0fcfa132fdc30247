"""`pip install` of the wheel into a fresh virtualenv, with real dependency resolution.

What a user does (`python3 -m venv v && v/bin/pip install gpt1_keras-*.whl`), checked
end to end. The wheel is built once from a copy of the source tree (no Bazel files) and
must carry every package, the BPE assets and the corpus, and no tests. It is then
installed into a new virtualenv (its own pip; no `--system-site-packages`, no `.pth`, no
`PYTHONPATH`: nothing from this test's environment) by `pip install -c requirements.txt
<wheel>`, so pip resolves and downloads the dependencies that `pyproject.toml` declares
(from PyPI), at the versions pinned in `requirements.txt`. Every process below runs the
venv's Python or console scripts from a folder outside the repository.

In order (one test: each stage uses what the one before made):

1. The base install (no extras): `import gpt1_keras` works and comes from the venv
   (its `sys.path` holds nothing of the source tree or of this test's environment), the
   tokenizer loads its shipped vocabulary; the optional modules (matplotlib,
   tensorflow_serving, jax, torch, ftfy, spacy) are absent; every third-party module
   that the wheel's code imports is provided by a declared dependency (`Requires-Dist`)
   or is one of the optional modules of `gpt1_keras/extras.py`, each of which maps to an
   extra that the wheel declares (`Provides-Extra`).
2. Every console script's `--help` exits 0 and lists its flags; `gpt1-convert` on a
   missing input is one `ERROR:` line, exit 2.
3. A tiny `gpt1-pretrain` -> `gpt1-finetune` -> `gpt1-export` chain on the base install:
   pretraining finishes and saves the model but writes no `loss_curve.png`, with one
   warning naming the 'plots' extra; fine-tuning (sst2, a TSV written here) starts from
   the pretrained model; `gpt1-export --warmup_requests` is one `ERROR:` line naming the
   'serving' extra (exit 2, nothing written); a plain `gpt1-export` writes version 1
   without TF Serving's warm-up records, with one warning naming the 'serving' extra.
4. The SavedModel is loaded in a fresh process that imports only `tensorflow` and
   `tensorflow_text` and called with a raw string on `serving_default`: probabilities
   summing to 1, the argmax label and its name. Loading and calling it imports nothing
   of `keras`, `keras_hub` or `gpt1_keras` (TensorFlow 2.20 itself imports `keras`,
   a dependency of TensorFlow, when it is installed; the check is that the SavedModel
   adds no module of them, and that `gpt1_keras` and `keras_hub` are never imported).
5. `pip install '<wheel>[plots,serving]'` (real resolution again): `gpt1-export` now
   writes version 2 with `assets.extra/tf_serving_warmup_requests` (TF Serving
   `PredictionLog` records for `serving_default`), and `plot_history` writes the
   loss-curve PNG; the extras' modules come from the distributions the extras require.
6. The Colab notebook (`examples/finetune_in_colab.ipynb`) runs end to end in a Jupyter
   kernel on the venv's Python (`ipykernel` installed into the venv, as Colab has it),
   its `%pip install` cell running the venv's pip on the wheel (`-c requirements.txt`):
   `tests/examples/notebook_runner.py` executes it (an offline Hub cache stands in for
   `hf://openai-community/openai-gpt`) and checks its results; `gpt1_keras` in the
   notebook comes from the venv's site-packages.

Separately, on the same base install: `KERAS_BACKEND=jax` (or `torch`) without the
extra is one `ERROR:` line naming the extra, exit 2, for every binary.

Needs network access to PyPI (the install downloads TensorFlow and the rest: about a
minute on a fast link); each pip call's output is kept in the test's outputs
(`bazel-testlogs/tests/packaging_test/test.outputs/`).
"""

import ast
import email.parser
import json
import os
import re
import shutil
import site
import subprocess
import sys
import tempfile
import time
import zipfile

from absl import logging
from absl.testing import absltest

from tests.examples import notebook_runner

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONSTRAINTS = os.path.join(_ROOT, "requirements.txt")

# Console script -> flags its --help must list.
_SCRIPTS = {
    "gpt1-pretrain": ("--model_dir", "--train_files", "--config"),
    "gpt1-finetune": ("--task", "--data_dir", "--init_checkpoint"),
    "gpt1-convert": ("--source_format", "--input", "--output"),
    "gpt1-export": ("--model_dir", "--export_dir", "--version",
                    "--[no]warmup_requests"),
    "gpt1-evaluate": ("--zero_shot", "--data_dir", "--checkpoint"),
}
# The optional modules, each behind an extra (gpt1_keras/extras.py).
_OPTIONAL = ("matplotlib", "tensorflow_serving", "jax", "torch", "ftfy", "spacy")
# A few seconds per binary on 2 cores (tests/pipelines/pretrain_binary_test.py).
_TINY_PRETRAIN = ["--preset=gpt1_tiny", "--batch_size=4", "--sequence_length=16",
                  "--nojit_compile", "--steps_per_epoch=10", "--train_steps=10",
                  "--eval_steps=2", "--num_samples=2", "--sample_tokens=5",
                  "--deterministic", "--seed=3"]
_PIP_TIMEOUT = 1800
_RUN_TIMEOUT = 900

# Run in the venv after the base install: where everything comes from.
_BASE_CHECK = """
import importlib.metadata, importlib.util, json, sys, sysconfig
import gpt1_keras
from gpt1_keras.tokenizers import GPT1Tokenizer
tokenizer = GPT1Tokenizer()
print(json.dumps({
    "file": gpt1_keras.__file__,
    "prefix": sys.prefix,
    "purelib": sysconfig.get_paths()["purelib"],
    "path": [p for p in sys.path if p],
    "vocabulary_size": int(tokenizer.vocabulary_size()),
    "ids": tokenizer(["hello world"]).to_list(),
    "optional": {m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]},
    "distributions": importlib.metadata.packages_distributions(),
}))
"""

# Loads the SavedModel with TensorFlow and tensorflow-text alone, calls it on a raw string.
_SERVE = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401 (registers the tokenizer's ops)
imported = set(sys.modules)
signature = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
outputs = signature(text=tf.constant(["a great movie"]))
ours = ("keras", "keras_hub", "gpt1_keras")
added = sorted(m for m in set(sys.modules) - imported if m.split(".")[0] in ours)
assert not added, f"loading the SavedModel imported {added}"
assert "gpt1_keras" not in sys.modules and "keras_hub" not in sys.modules, sorted(
    m for m in sys.modules if m.split(".")[0] in ("gpt1_keras", "keras_hub"))
print(json.dumps({
    name: ([s.decode() for s in value.numpy().ravel()] if value.dtype == tf.string
           else value.numpy().tolist())
    for name, value in outputs.items()}))
"""

# With the extras: the loss-curve PNG, and the warm-up records of an export version.
_EXTRAS_CHECK = """
import importlib.metadata, json, sys
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2
from gpt1_keras.training.pretraining import plot_history
with open(sys.argv[1]) as f:
    plot_history([json.loads(line) for line in f if line.strip()], sys.argv[2])
signatures = []
for record in tf.data.TFRecordDataset(sys.argv[3]):
    log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
    signatures.append(log.predict_log.request.model_spec.signature_name)
print(json.dumps({"warmup_signatures": signatures,
                  "distributions": importlib.metadata.packages_distributions()}))
"""


def _normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _tail(text, n=4000):
    return text[-n:]


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("ERROR:")]


def _warning_lines(stderr, *needles):
    """absl warning lines (`W1207 12:00:00.000 ...`) holding every needle."""
    return [line for line in stderr.splitlines()
            if re.match(r"W\d{4} ", line) and all(n in line for n in needles)]


def _imported_modules(wheel):
    """Top-level third-party modules imported by the wheel's code -> the files."""
    modules = {}
    with zipfile.ZipFile(wheel) as z:
        for name in z.namelist():
            if not name.endswith(".py"):
                continue
            for node in ast.walk(ast.parse(z.read(name), name)):
                if isinstance(node, ast.Import):
                    found = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    found = [node.module]
                else:
                    continue
                for module in found:
                    top = module.split(".")[0]
                    if top not in sys.stdlib_module_names and top != "gpt1_keras":
                        modules.setdefault(top, set()).add(name)
    return modules


def _wheel_metadata(wheel):
    """(core requirement names, {extra: requirement names}, EXTRAS of extras.py)."""
    with zipfile.ZipFile(wheel) as z:
        (metadata,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        message = email.parser.Parser().parsestr(z.read(metadata).decode())
        extras_source = z.read("gpt1_keras/extras.py")
    core, extras = set(), {e: set() for e in message.get_all("Provides-Extra") or ()}
    for requirement in message.get_all("Requires-Dist") or ():
        name = _normalize(re.match(r"[A-Za-z0-9_.-]+", requirement).group())
        marker = re.search(r"""extra\s*==\s*["']([^"']+)["']""", requirement)
        if marker:
            extras[marker.group(1)].add(name)
        else:
            core.add(name)
    (mapping,) = [ast.literal_eval(node.value) for node in ast.parse(extras_source).body
                  if isinstance(node, ast.Assign)
                  and [getattr(t, "id", None) for t in node.targets] == ["EXTRAS"]]
    return core, extras, mapping


class PackagingTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(dir=absltest.get_default_test_tmpdir())
        cls.outputs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", cls.tmp)
        cls.timings = {}
        # The wheel, from a copy of what a git checkout holds (no Bazel files).
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
        cls.constraints = os.path.join(cls.tmp, "constraints.txt")
        shutil.copy(_CONSTRAINTS, cls.constraints)

        # A new virtualenv with its own pip; the base interpreter's stdlib only.
        cls.venv = os.path.join(cls.tmp, "venv")
        cls.bin = os.path.join(cls.venv, "bin")
        cls.python = os.path.join(cls.bin, "python")
        cls.cwd = os.path.join(cls.tmp, "work")  # not the source tree
        os.makedirs(cls.cwd)
        result = subprocess.run([sys.executable, "-m", "venv", cls.venv],
                                capture_output=True, text=True, timeout=600)
        if result.returncode:
            raise AssertionError(f"python -m venv failed: {_tail(result.stderr)}")
        cls._pip_install("base", cls.wheel)

    @classmethod
    def _env(cls, **extra):
        """The environment of every venv process: nothing of this test's Python."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV",
                            "KERAS_BACKEND")}
        env.update(
            PATH=os.pathsep.join([cls.bin, env.get("PATH", "/usr/bin:/bin")]),
            VIRTUAL_ENV=cls.venv,
            TF_CPP_MIN_LOG_LEVEL="3",
            MPLCONFIGDIR=os.path.join(cls.tmp, "matplotlib"),
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            PIP_NO_INPUT="1",
            PIP_CACHE_DIR=os.path.join(cls.tmp, "pip_cache"),
        )
        env.update(extra)
        return env

    @classmethod
    def _pip_install(cls, label, *requirements):
        """`pip install -c requirements.txt ...` in the venv: real resolution, from PyPI."""
        start = time.monotonic()
        result = subprocess.run(
            [cls.python, "-m", "pip", "install", "-c", cls.constraints, *requirements],
            cwd=cls.cwd, env=cls._env(), capture_output=True, text=True,
            timeout=_PIP_TIMEOUT)
        cls.timings[f"pip install ({label})"] = time.monotonic() - start
        with open(os.path.join(cls.outputs, f"pip_install_{label}.log"), "w") as f:
            f.write(result.stdout + "\n--- stderr ---\n" + result.stderr)
        logging.info("pip install (%s): %.0f s", label, cls.timings[f"pip install ({label})"])
        if result.returncode:
            raise AssertionError(
                f"pip install -c requirements.txt {' '.join(requirements)} failed "
                f"(exit {result.returncode}):\n{_tail(result.stdout, 2000)}\n"
                f"{_tail(result.stderr)}")

    @classmethod
    def tearDownClass(cls):
        print("packaging_test timings: " + ", ".join(
            f"{k} {v:.0f} s" for k, v in cls.timings.items()), file=sys.stderr)
        shutil.rmtree(cls.venv, ignore_errors=True)  # ~2.5 GB
        super().tearDownClass()

    def _run(self, *argv, label=None, timeout=_RUN_TIMEOUT, **env):
        """A venv console script (or its Python), from a folder outside the repository."""
        program = argv[0] if os.path.isabs(argv[0]) else os.path.join(self.bin, argv[0])
        start = time.monotonic()
        result = subprocess.run([program, *argv[1:]], cwd=self.cwd, env=self._env(**env),
                                capture_output=True, text=True, timeout=timeout)
        if label:
            self.timings[label] = time.monotonic() - start
        return result

    def assertExits(self, result, code, what):
        self.assertEqual(
            result.returncode, code,
            f"{what}: exit {result.returncode}\nstdout: {_tail(result.stdout, 1500)}\n"
            f"stderr: {_tail(result.stderr)}")

    def assertOneErrorLine(self, result, what, *needles):
        """Exit 2, no traceback, exactly one `ERROR:` line, holding every needle."""
        self.assertExits(result, 2, what)
        self.assertNotIn("Traceback", result.stderr, f"{what}: {_tail(result.stderr)}")
        errors = _error_lines(result.stderr)
        self.assertLen(errors, 1, f"{what}: {_tail(result.stderr)}")
        for needle in needles:
            self.assertIn(needle, errors[0], what)

    def _json_line(self, result, what):
        self.assertExits(result, 0, what)
        return json.loads(result.stdout.strip().splitlines()[-1])

    def test_every_package_is_in_the_wheel(self):
        names = zipfile.ZipFile(self.wheel).namelist()
        for directory, _, files in os.walk(os.path.join(_ROOT, "gpt1_keras")):
            if "__init__.py" in files:
                package = os.path.relpath(directory, _ROOT)
                self.assertIn(f"{package}/__init__.py", names)
        for name in os.listdir(os.path.join(_ROOT, "pipelines")):
            if name.endswith(".py"):
                self.assertIn(f"gpt1_keras/pipelines/{name}", names)

    def test_wheel_carries_the_assets_and_no_tests(self):
        names = zipfile.ZipFile(self.wheel).namelist()
        for asset in (
            "gpt1_keras/assets/gpt1_bpe/encoder_bpe_40000.json",
            "gpt1_keras/assets/gpt1_bpe/vocab_40000.bpe",
            "gpt1_keras/assets/gpt1_bpe/LICENSE",
            "gpt1_keras/assets/data/tinyshakespeare.txt",
        ):
            self.assertIn(asset, names)
        self.assertFalse([n for n in names if n.startswith("tests/")])

    def test_a_backend_without_its_extra_is_one_error_line(self):
        # Neither jax nor torch is installed in the venv, in any stage (the other
        # test's extras are plots and serving).
        never = os.path.join(self.cwd, "never_written")
        args = {
            "gpt1-pretrain": ["--train_files=corpus.txt", f"--model_dir={never}"],
            "gpt1-finetune": ["--task=sst2", "--data_dir=data", "--no_pretraining",
                              f"--output_dir={never}"],
        }
        runs = {
            (backend, script): subprocess.Popen(
                [os.path.join(self.bin, script), *args[script]],
                cwd=self.cwd, env=self._env(KERAS_BACKEND=backend),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for backend in ("jax", "torch") for script in args
        }
        for (backend, script), run in runs.items():
            out, err = run.communicate(timeout=_RUN_TIMEOUT)
            result = subprocess.CompletedProcess(run.args, run.returncode, out, err)
            self.assertOneErrorLine(result, f"KERAS_BACKEND={backend} {script}",
                                    f"KERAS_BACKEND={backend}", f"'{backend}' extra",
                                    f"pip install 'gpt1-keras[{backend}]'")
        self.assertFalse(os.path.exists(never))

    def test_installed_wheel_runs_its_binaries_the_export_and_the_notebook(self):
        self._base_install_is_self_contained()
        self._console_scripts_run()
        finetuned, export_dir, history = self._pretrain_finetune_export_without_extras()
        self._saved_model_serves_without_keras(os.path.join(export_dir, "1"))
        self._extras_install_and_work(finetuned, export_dir, history)
        self._notebook_runs_against_the_installed_wheel()

    def _base_install_is_self_contained(self):
        check = self._json_line(self._run(self.python, "-c", _BASE_CHECK, *_OPTIONAL),
                                "import gpt1_keras in the venv")
        self.site_packages = check["purelib"]
        self.assertTrue(check["file"].startswith(self.site_packages + os.sep), check["file"])
        self.assertEqual(os.path.realpath(check["prefix"]), os.path.realpath(self.venv))
        # Nothing of the source tree or of this test's environment on its path.
        ours = [os.path.realpath(_ROOT)] + [
            os.path.realpath(p) for p in (*site.getsitepackages(), *sys.path)
            if any(s in p for s in ("site-packages", "dist-packages", ".runfiles"))]
        for entry in check["path"]:
            real = os.path.realpath(entry)
            self.assertFalse([p for p in ours if real == p or real.startswith(p + os.sep)],
                             f"{entry} (of this test's environment) on the venv's sys.path")
            if "site-packages" in entry or "dist-packages" in entry:
                self.assertTrue(real.startswith(os.path.realpath(self.venv) + os.sep), entry)
        self.assertEqual(check["vocabulary_size"], 40481)
        self.assertLen(check["ids"], 1)
        self.assertNotEmpty(check["ids"][0])
        # The base install has none of the optional modules.
        self.assertEqual(check["optional"], {m: False for m in _OPTIONAL})

        # Every third-party module the code imports is declared: a dependency's, or an
        # optional module whose extra the wheel declares.
        core, extras, mapping = _wheel_metadata(self.wheel)
        self.assertContainsSubset(
            {"keras", "keras-hub", "tensorflow", "tensorflow-text"}, core)
        self.assertEqual(set(mapping), set(_OPTIONAL))
        self.assertContainsSubset(set(mapping.values()), set(extras))
        distributions = {m: {_normalize(d) for d in ds}
                         for m, ds in check["distributions"].items()}
        for module, files in sorted(_imported_modules(self.wheel).items()):
            if module in mapping:
                continue
            self.assertTrue(
                distributions.get(module, set()) & core,
                f"{sorted(files)} import {module!r}, which no dependency of the wheel "
                f"provides (it comes from {sorted(distributions.get(module, []))}; "
                f"the dependencies: {sorted(core)}): declare it in pyproject.toml or "
                "make it an extra (gpt1_keras/extras.py)")
        self.extras = (extras, mapping)

    def _console_scripts_run(self):
        runs = {
            script: subprocess.Popen(
                [os.path.join(self.bin, script), "--help"], cwd=self.cwd, env=self._env(),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for script in _SCRIPTS
        }
        for script, run in runs.items():
            out, err = run.communicate(timeout=_RUN_TIMEOUT)
            self.assertEqual(run.returncode, 0, f"{script} --help: {_tail(err)}")
            self.assertNotIn("Traceback", err)
            for flag in _SCRIPTS[script]:
                self.assertIn(flag, out, f"{script} --help")
            self.assertIn("Usage:", out, f"{script} --help: {out[:800]}")  # its docstring

        missing = os.path.join(self.cwd, "no_such_checkpoint")
        result = self._run("gpt1-convert", f"--input={missing}",
                           f"--output={os.path.join(self.cwd, 'lm.keras')}")
        self.assertOneErrorLine(result, "gpt1-convert")
        self.assertEqual(_error_lines(result.stderr),
                         [f"ERROR: --input={missing} does not exist."])

    def _pretrain_finetune_export_without_extras(self):
        run = os.path.join(self.cwd, "chain")
        os.makedirs(run)
        # The first lines of the tinyshakespeare the wheel ships.
        with open(os.path.join(self.site_packages, "gpt1_keras", "assets", "data",
                               "tinyshakespeare.txt")) as f:
            lines = f.readlines()[:400]
        corpus = os.path.join(run, "corpus.txt")
        with open(corpus, "w") as f:
            f.writelines(lines)

        pretrained = os.path.join(run, "pretrain")
        result = self._run("gpt1-pretrain", *_TINY_PRETRAIN, f"--train_files={corpus}",
                           f"--model_dir={pretrained}", label="gpt1-pretrain")
        self.assertExits(result, 0, "gpt1-pretrain")
        self.assertNotIn("Traceback", result.stderr)
        self.assertTrue(os.path.isfile(os.path.join(pretrained, "model.keras")))
        with open(os.path.join(pretrained, "metrics.json")) as f:
            self.assertEqual(json.load(f)["final_step"], 10)
        # No plot without matplotlib: one warning line naming the extra, not a failure.
        self.assertFalse(os.path.exists(os.path.join(pretrained, "loss_curve.png")))
        self.assertLen(_warning_lines(result.stderr, "loss_curve.png not written",
                                      "'plots' extra", "pip install 'gpt1-keras[plots]'"),
                       1, _tail(result.stderr))
        self.assertEqual(_error_lines(result.stderr), [])

        data = os.path.join(run, "sst2")
        os.makedirs(data)
        with open(os.path.join(data, "train.tsv"), "w") as f:
            f.write("sentence\tlabel\na great movie\t1\na dull movie\t0\n"
                    "i loved it\t1\ni hated it\t0\n")
        with open(os.path.join(data, "dev.tsv"), "w") as f:
            f.write("sentence\tlabel\na good film\t1\na bad film\t0\n")
        finetuned = os.path.join(run, "finetune")
        result = self._run("gpt1-finetune", "--task=sst2", f"--data_dir={data}",
                           f"--output_dir={finetuned}",
                           f"--init_checkpoint={os.path.join(pretrained, 'model.keras')}",
                           "--batch_size=2", "--epochs=1", "--sequence_length=16",
                           label="gpt1-finetune")
        self.assertExits(result, 0, "gpt1-finetune")
        self.assertNotIn("Traceback", result.stderr)
        self.assertRegex(result.stdout, r"sst2 dev: accuracy=[0-9.]+, num_examples=2")
        self.assertTrue(os.path.isfile(os.path.join(finetuned, "model.keras")))
        with open(os.path.join(finetuned, "metrics.json")) as f:
            self.assertEqual(json.load(f)["config"]["init_checkpoint"],
                             os.path.join(pretrained, "model.keras"))

        export_dir = os.path.join(run, "export")
        result = self._run("gpt1-export", f"--model_dir={finetuned}",
                           f"--export_dir={export_dir}", "--warmup_requests")
        self.assertOneErrorLine(result, "gpt1-export --warmup_requests", "'serving' extra",
                                "pip install 'gpt1-keras[serving]'")
        self.assertFalse(os.path.exists(os.path.join(export_dir, "1")))

        result = self._run("gpt1-export", f"--model_dir={finetuned}",
                           f"--export_dir={export_dir}", label="gpt1-export")
        self.assertExits(result, 0, "gpt1-export")
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(result.stdout.splitlines()[0],
                         f"Exported GPT1Classifier to {export_dir}/1")
        version = os.path.join(export_dir, "1")
        self.assertTrue(os.path.isfile(os.path.join(version, "saved_model.pb")))
        self.assertFalse(os.path.exists(
            os.path.join(version, "assets.extra", "tf_serving_warmup_requests")))
        with open(os.path.join(version, "assets.extra", "gpt1_keras_export.json")) as f:
            info = json.load(f)
        self.assertFalse(info["warmup_requests"])
        self.assertLen(_warning_lines(result.stderr, "warm-up records", "'serving' extra"),
                       1, _tail(result.stderr))
        self.assertEqual(_error_lines(result.stderr), [])
        self.label_names = info["label_names"]
        return finetuned, export_dir, os.path.join(pretrained, "history.jsonl")

    def _saved_model_serves_without_keras(self, version):
        served = self._json_line(self._run(self.python, "-c", _SERVE, version),
                                 "the SavedModel in TensorFlow alone")
        self.assertEqual(sorted(served), ["label", "label_name", "probabilities"])
        (probabilities,) = served["probabilities"]
        self.assertLen(probabilities, 2)
        self.assertAlmostEqual(sum(probabilities), 1.0, places=5)
        self.assertTrue(all(0 <= p <= 1 for p in probabilities), probabilities)
        self.assertEqual(served["label"], [probabilities.index(max(probabilities))])
        self.assertEqual(served["label_name"], [self.label_names[served["label"][0]]])

    def _extras_install_and_work(self, finetuned, export_dir, history):
        self._pip_install("extras", f"{self.wheel}[plots,serving]")
        result = self._run("gpt1-export", f"--model_dir={finetuned}",
                           f"--export_dir={export_dir}", label="gpt1-export (serving)")
        self.assertExits(result, 0, "gpt1-export with the serving extra")
        self.assertEqual(result.stdout.splitlines()[0],
                         f"Exported GPT1Classifier to {export_dir}/2")
        self.assertEqual(_warning_lines(result.stderr, "'serving' extra"), [])
        warmup = os.path.join(export_dir, "2", "assets.extra", "tf_serving_warmup_requests")
        self.assertTrue(os.path.isfile(warmup))
        with open(os.path.join(export_dir, "2", "assets.extra", "gpt1_keras_export.json")) as f:
            self.assertTrue(json.load(f)["warmup_requests"])

        png = os.path.join(self.cwd, "loss_curve.png")
        check = self._json_line(self._run(self.python, "-c", _EXTRAS_CHECK, history, png, warmup),
                                "plot_history and the warm-up records with the extras")
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertNotEmpty(check["warmup_signatures"])
        self.assertEqual(set(check["warmup_signatures"]), {"serving_default"})
        # The extras' modules come from the distributions those extras require.
        extras, mapping = self.extras
        for module in ("matplotlib", "tensorflow_serving"):
            provided = {_normalize(d) for d in check["distributions"].get(module, ())}
            self.assertTrue(provided & extras[mapping[module]],
                            f"{module} comes from {sorted(provided)}, not from the "
                            f"'{mapping[module]}' extra's {sorted(extras[mapping[module]])}")

    def _notebook_runs_against_the_installed_wheel(self):
        # The notebook runtime (Colab has it); the notebook's own %pip cell then runs
        # this venv's pip on the wheel, which finds it installed.
        self._pip_install("ipykernel", "ipykernel")
        start = time.monotonic()
        check = notebook_runner.run_colab_notebook(
            self, tmp=self.create_tempdir("notebook").full_path, python=self.python,
            source=self.wheel, pip_args=f"-c {self.constraints}",
            package_dir=self.site_packages, env=self._env())
        self.timings["notebook"] = time.monotonic() - start
        # With the serving extra installed, the notebook's export has warm-up records.
        self.assertTrue(os.path.isfile(os.path.join(
            check["version_dir"], "assets.extra", "tf_serving_warmup_requests")))


if __name__ == "__main__":
    absltest.main()
