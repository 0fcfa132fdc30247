"""`examples/finetune_in_colab.ipynb` runs end to end, as a Colab user would run it.

The notebook starts from `GPT1Classifier.from_preset("hf://openai-community/openai-gpt")`;
here an offline Hugging Face Hub cache built by the test stands in for the Hub
(`HF_HUB_OFFLINE=1`, `HF_HOME` a temporary folder holding a random tiny
`transformers.OpenAIGPTLMHeadModel` saved by `save_pretrained` with GPT-1's tokenizer
files, in the cache's `models--openai-community--openai-gpt/snapshots/<commit>/`
layout), so the download goes through `huggingface_hub`'s real code.

The notebook is executed cell by cell with nbclient in a fresh IPython kernel on this
interpreter. Its `parameters` cell is followed by an injected one (as papermill does)
that points the `%pip install` cell at a copy of this checkout instead of GitHub, with
`--no-index --no-deps --target SITE`; SITE is the kernel's only `PYTHONPATH` entry and
its working directory is an empty folder, so `import gpt1_keras` in the notebook finds
the pip-installed package, never the source tree. A last appended cell reports the
notebook's own results (fit history, evaluation, predictions, the served SavedModel
output) as JSON for the assertions below.
"""

import json
import math
import os
import re
import shutil
import sys

import nbclient
import nbformat
import numpy as np
from absl.testing import absltest

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_NOTEBOOK = os.path.join(_ROOT, "examples", "finetune_in_colab.ipynb")
_KERNEL = "gpt1-keras-notebook-test"
_CHECK = "NOTEBOOK_CHECK "
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

_CHECK_CELL = """
import json
import gpt1_keras
print(%r + json.dumps({
    "gpt1_keras_file": gpt1_keras.__file__,
    "backend": keras.backend.backend(),
    "loss": [float(v) for v in history.history["loss"]],
    "evaluate": {k: float(v) for k, v in results.items()},
    "predicted_accuracy": float(np.mean(
        np.argmax(model.predict(test_texts, verbose=0), -1) == np.asarray(test_labels))),
    "num_test": len(test_texts),
    "probs_shape": list(probs.shape),
    "version_dir": version_dir,
    "served": {k: list(v.shape) for k, v in served.items()},
    "served_labels": [s.decode() for s in served["label_name"].numpy()],
    "served_vs_predict": float(np.abs(served["probabilities"].numpy() - probs).max()),
    "backbone": [model.backbone.num_layers, model.backbone.hidden_dim],
    "hub_embeddings_vs_hf": float(np.abs(
        keras.ops.convert_to_numpy(gpt1_keras.GPT1Classifier.from_preset(
            PRESET, num_classes=2).backbone.token_embedding.embeddings)[:40478]
        - np.load(os.environ["HF_EMBEDDINGS_NPY"])).max()),
    "preset_files": sorted(os.listdir(PRESET_DIR)),
    "reloaded_class": type(reloaded).__name__,
    "reloaded_labels": list(reloaded.preprocessor.label_names),
    "reloaded_vs_predict": float(np.abs(reloaded_probs - probs).max()),
}))
""" % _CHECK


def _copy_source(dest):
    """The files `pip install` needs, as in a git checkout (no Bazel BUILD files)."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(_ROOT, name), dest)
    # `pipelines/` ships in the wheel as `gpt1_keras.pipelines` (pyproject.toml).
    for package in ("gpt1_keras", "pipelines"):
        shutil.copytree(
            os.path.join(_ROOT, package),
            os.path.join(dest, package),
            ignore=shutil.ignore_patterns("BUILD", "__pycache__"),
        )


class FinetuneInColabNotebookTest(absltest.TestCase):
    def setUp(self):
        super().setUp()
        self.tmp = self.create_tempdir().full_path
        # A kernelspec for this interpreter (the venv's), and Jupyter/IPython state
        # in temporary folders (Bazel's sandbox has no usable HOME).
        jupyter = os.path.join(self.tmp, "jupyter")
        spec_dir = os.path.join(jupyter, "kernels", _KERNEL)
        os.makedirs(spec_dir)
        with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
            json.dump({
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f",
                         "{connection_file}"],
                "display_name": "gpt1-keras test",
                "language": "python",
            }, f)
        env = {
            "JUPYTER_PATH": jupyter,
            "JUPYTER_DATA_DIR": jupyter,
            "JUPYTER_CONFIG_DIR": os.path.join(self.tmp, "jupyter_config"),
            "JUPYTER_RUNTIME_DIR": os.path.join(self.tmp, "jupyter_runtime"),
            "IPYTHONDIR": os.path.join(self.tmp, "ipython"),
            "MPLCONFIGDIR": os.path.join(self.tmp, "matplotlib"),
        }
        self.enter_context(absltest.mock.patch.dict(os.environ, env))

    def _hub_cache(self):
        """An offline Hub cache holding a tiny random `openai-community/openai-gpt`.

        Returns:
            `(hf_home, embeddings_npy)`: the `HF_HOME` folder, and a `.npy` file of
            the checkpoint's token embeddings (for the notebook's model to match).
        """
        from tests.models import hf_checkpoints
        from tests.models import hf_reference

        hf_home = os.path.join(self.tmp, "hf_home")
        hf_model = hf_reference.make_hf_lm(seed=0, **hf_checkpoints.TINY_HF_CONFIG)
        staging = hf_checkpoints.write_hf_checkpoint(
            hf_model, os.path.join(self.tmp, "hf_checkpoint"))
        hf_checkpoints.write_hub_cache_entry(
            os.path.join(hf_home, "hub"), "openai-community/openai-gpt", staging)
        embeddings = os.path.join(self.tmp, "hf_embeddings.npy")
        np.save(embeddings, hf_model.transformer.tokens_embed.weight.detach().numpy())
        return hf_home, embeddings

    def test_notebook_runs_end_to_end(self):
        source = os.path.join(self.tmp, "gpt1-keras")
        site = os.path.join(self.tmp, "site")  # what Colab's dist-packages is to pip
        workdir = os.path.join(self.tmp, "content")  # Colab's /content
        export_dir = os.path.join(self.tmp, "export", "gpt1_sentiment")
        preset_dir = os.path.join(self.tmp, "preset", "gpt1_sentiment")
        for d in (source, site, workdir):
            os.makedirs(d)
        _copy_source(source)
        hf_home, hf_embeddings = self._hub_cache()

        nb = nbformat.read(_NOTEBOOK, as_version=4)
        nbformat.validate(nb)
        index = [i for i, c in enumerate(nb.cells)
                 if "parameters" in c.metadata.get("tags", [])]
        self.assertLen(index, 1, "the notebook needs one cell tagged 'parameters'")
        # No published URL: the default is a wheel built from a checkout (`pip wheel .`).
        self.assertIn('GPT1_KERAS_SOURCE = "gpt1_keras-0.1.0-py3-none-any.whl"',
                      nb.cells[index[0]].source)
        # It starts from the released GPT-1 on the Hub, with GPT-1's fine-tuning rate.
        self.assertIn('PRESET = "hf://openai-community/openai-gpt"', nb.cells[index[0]].source)
        self.assertIn("LEARNING_RATE = 6.25e-5", nb.cells[index[0]].source)
        self.assertIn("GPT1Classifier.from_preset(\n    PRESET,",
                      "".join(c.source for c in nb.cells))
        self.assertNotIn("<org>", "".join(c.source for c in nb.cells))
        install = [c for c in nb.cells if c.cell_type == "code" and "%pip install" in c.source]
        self.assertLen(install, 1)
        self.assertIn("{GPT1_KERAS_SOURCE}", install[0].source)
        overrides = {
            "GPT1_KERAS_SOURCE": source,
            "PIP_ARGS": f"--no-index --no-deps --no-build-isolation --target {site}",
            "EXPORT_DIR": export_dir,
            "PRESET_DIR": preset_dir,
            # The stand-in checkpoint is random, not pretrained: a higher rate and
            # more epochs, so that 40 sentences move the loss.
            "LEARNING_RATE": 3e-3,
            "EPOCHS": 10,
        }
        injected = nbformat.v4.new_code_cell(
            "\n".join(f"{k} = {v!r}" for k, v in overrides.items()),
            id="injected-parameters")
        nb.cells.insert(index[0] + 1, injected)
        nb.cells.append(nbformat.v4.new_code_cell(_CHECK_CELL, id="test-check"))

        kernel_env = {k: v for k, v in os.environ.items()
                      if k not in ("PYTHONPATH", "KERAS_BACKEND")}
        kernel_env.update(
            PYTHONPATH=site,
            PIP_NO_INDEX="1",
            PIP_DISABLE_PIP_VERSION_CHECK="1",
            PIP_CACHE_DIR=os.path.join(self.tmp, "pip_cache"),
            HF_HOME=hf_home,
            HF_HUB_CACHE=os.path.join(hf_home, "hub"),
            HF_HUB_OFFLINE="1",
            HF_EMBEDDINGS_NPY=hf_embeddings,
        )
        client = nbclient.NotebookClient(
            nb, kernel_name=_KERNEL, timeout=600, allow_errors=False,
            resources={"metadata": {"path": workdir}},
        )
        try:
            client.execute(env=kernel_env)
        except nbclient.exceptions.CellExecutionError as e:
            self.fail(f"a notebook cell failed:\n{_ANSI.sub('', str(e))[-6000:]}")
        finally:
            # The executed notebook, for a look at its outputs (Bazel keeps this
            # folder in bazel-testlogs/.../test.outputs/).
            nbformat.write(nb, os.path.join(
                os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", self.tmp),
                "finetune_in_colab.executed.ipynb"))

        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            self.assertIsNotNone(cell.execution_count, cell.source[:80])
            errors = [o for o in cell.outputs if o.output_type == "error"]
            self.assertEqual(errors, [], cell.source[:80])

        printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs
                          if o.output_type == "stream" and o.name == "stdout")
        (line,) = [l for l in printed.splitlines() if l.startswith(_CHECK)]
        check = json.loads(line[len(_CHECK):])

        # The package came from pip's install into SITE, not from the source tree.
        self.assertTrue(check["gpt1_keras_file"].startswith(site + os.sep),
                        check["gpt1_keras_file"])
        self.assertEqual(check["backend"], "tensorflow")
        loss = check["loss"]
        self.assertGreaterEqual(len(loss), 2)
        self.assertTrue(all(math.isfinite(v) for v in loss), loss)
        self.assertLess(loss[-1], loss[0])
        # evaluate's accuracy is the one of the model's own predictions on the test texts.
        accuracy = check["evaluate"]["sparse_categorical_accuracy"]
        self.assertAlmostEqual(accuracy, check["predicted_accuracy"], places=6)
        self.assertGreaterEqual(check["num_test"], 4)
        self.assertTrue(math.isfinite(check["evaluate"]["loss"]))
        self.assertEqual(check["probs_shape"], [3, 2])

        # The SavedModel on disk (TF Serving's EXPORT_DIR/<version>/ layout), and its
        # serving signature's outputs for the 3 new strings, equal to model.predict's.
        self.assertEqual(check["version_dir"], os.path.join(export_dir, "1"))
        self.assertTrue(os.path.isfile(os.path.join(export_dir, "1", "saved_model.pb")))
        self.assertEqual(check["served"]["probabilities"], [3, 2])
        self.assertEqual(check["served"]["label"], [3])
        self.assertEqual(check["served"]["label_name"], [3])
        self.assertContainsSubset(check["served_labels"], {"negative", "positive"})
        self.assertLess(check["served_vs_predict"], 1e-5)

        # The model came from the Hub cache: its architecture, and from_preset(PRESET)
        # holds the checkpoint's own token embeddings.
        self.assertEqual(check["backbone"], [2, 32])
        self.assertEqual(check["hub_embeddings_vs_hf"], 0.0)
        # The saved preset: a keras-hub preset directory that keras-hub's base class
        # loads as the fine-tuned classifier (same predictions, label names kept).
        self.assertContainsSubset(
            {"config.json", "task.json", "task.weights.h5", "model.weights.h5",
             "preprocessor.json", "tokenizer.json", "assets"}, check["preset_files"])
        self.assertEqual(check["reloaded_class"], "GPT1Classifier")
        self.assertEqual(check["reloaded_labels"], ["negative", "positive"])
        self.assertLess(check["reloaded_vs_predict"], 1e-6)


if __name__ == "__main__":
    absltest.main()
