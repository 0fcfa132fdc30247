"""Runs `examples/finetune_in_colab.ipynb` end to end, as a Colab user runs it, and checks it.

`run_colab_notebook` is called by `tests/packaging_test.py` with the fresh virtualenv it
installed the wheel into: the notebook's kernel is that venv's Python (with `ipykernel`,
the notebook runtime Colab has), and its `%pip install` cell runs that venv's pip on
the wheel, so the notebook runs against the package as `pip install` delivers it.

The notebook starts from `GPT1Classifier.from_preset("hf://openai-community/openai-gpt")`;
an offline Hugging Face Hub cache built here stands in for the Hub (`HF_HUB_OFFLINE=1`,
`HF_HOME` a temporary folder holding a random tiny `transformers.OpenAIGPTLMHeadModel`
saved by `save_pretrained` with GPT-1's tokenizer files, in the cache's
`models--openai-community--openai-gpt/snapshots/<commit>/` layout), so the download goes
through the venv's own `huggingface_hub` code. Writing the cache needs torch and
transformers: those come from the test's environment, never the venv's.

The notebook is executed cell by cell with nbclient. Its `parameters` cell is followed by
an injected one (as papermill does) that points the `%pip install` cell at the wheel with
the caller's pip arguments, and shrinks the run. The kernel's working directory is an
empty folder and it has no `PYTHONPATH`, so `import gpt1_keras` in the notebook finds the
pip-installed package, never the source tree. A last appended cell reports the
notebook's own results (fit history, evaluation, predictions, the served SavedModel
output, the saved preset) as JSON for the assertions.
"""

import json
import math
import os
import re
from unittest import mock

import nbclient
import nbformat
import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTEBOOK = os.path.join(_ROOT, "examples", "finetune_in_colab.ipynb")
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


def _hub_cache(tmp):
    """An offline Hub cache holding a tiny random `openai-community/openai-gpt`.

    Returns:
        `(hf_home, embeddings_npy)`: the `HF_HOME` folder, and a `.npy` file of the
        checkpoint's token embeddings (for the notebook's model to match).
    """
    from tests.models import hf_checkpoints
    from tests.models import hf_reference

    hf_home = os.path.join(tmp, "hf_home")
    hf_model = hf_reference.make_hf_lm(seed=0, **hf_checkpoints.TINY_HF_CONFIG)
    staging = hf_checkpoints.write_hf_checkpoint(hf_model, os.path.join(tmp, "hf_checkpoint"))
    hf_checkpoints.write_hub_cache_entry(
        os.path.join(hf_home, "hub"), "openai-community/openai-gpt", staging)
    embeddings = os.path.join(tmp, "hf_embeddings.npy")
    np.save(embeddings, hf_model.transformer.tokens_embed.weight.detach().numpy())
    return hf_home, embeddings


def run_colab_notebook(test, tmp, python, source, pip_args, package_dir, env=None):
    """Executes the Colab notebook in a kernel on `python` and checks what it did.

    Args:
        test: the `absltest.TestCase` that asserts (and holds the patched environment).
        tmp: an empty folder for the run (Jupyter state, the Hub cache, the outputs).
        python: the interpreter of the kernel (with `ipykernel` installed).
        source: `GPT1_KERAS_SOURCE`, what the notebook's `%pip install` cell installs.
        pip_args: `PIP_ARGS`, the other arguments of that cell.
        package_dir: where `import gpt1_keras` in the notebook must find the package
            (the folder that holds `gpt1_keras/`).
        env: the kernel's environment (default: this process's); `PYTHONPATH` and
            `KERAS_BACKEND` are removed from it.
    """
    # A kernelspec for `python`, and Jupyter/IPython state in temporary folders (Bazel's
    # sandbox has no usable HOME).
    jupyter = os.path.join(tmp, "jupyter")
    spec_dir = os.path.join(jupyter, "kernels", _KERNEL)
    os.makedirs(spec_dir)
    with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
        json.dump({
            "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "gpt1-keras test",
            "language": "python",
        }, f)
    jupyter_env = {
        "JUPYTER_PATH": jupyter,
        "JUPYTER_DATA_DIR": jupyter,
        "JUPYTER_CONFIG_DIR": os.path.join(tmp, "jupyter_config"),
        "JUPYTER_RUNTIME_DIR": os.path.join(tmp, "jupyter_runtime"),
        "IPYTHONDIR": os.path.join(tmp, "ipython"),
        "MPLCONFIGDIR": os.path.join(tmp, "matplotlib"),
    }
    test.enter_context(mock.patch.dict(os.environ, jupyter_env))

    workdir = os.path.join(tmp, "content")  # Colab's /content
    export_dir = os.path.join(tmp, "export", "gpt1_sentiment")
    preset_dir = os.path.join(tmp, "preset", "gpt1_sentiment")
    os.makedirs(workdir)
    hf_home, hf_embeddings = _hub_cache(tmp)

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    index = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    test.assertLen(index, 1, "the notebook needs one cell tagged 'parameters'")
    parameters = nb.cells[index[0]].source
    # No published URL: the default is a wheel built from a checkout (`pip wheel .`).
    test.assertIn('GPT1_KERAS_SOURCE = "gpt1_keras-0.1.0-py3-none-any.whl"', parameters)
    # It starts from the released GPT-1 on the Hub, with GPT-1's fine-tuning rate.
    test.assertIn('PRESET = "hf://openai-community/openai-gpt"', parameters)
    test.assertIn("LEARNING_RATE = 6.25e-5", parameters)
    test.assertIn("GPT1Classifier.from_preset(\n    PRESET,", "".join(c.source for c in nb.cells))
    test.assertNotIn("<org>", "".join(c.source for c in nb.cells))
    install = [c for c in nb.cells if c.cell_type == "code" and "%pip install" in c.source]
    test.assertLen(install, 1)
    test.assertIn("{GPT1_KERAS_SOURCE}", install[0].source)
    overrides = {
        "GPT1_KERAS_SOURCE": source,
        "PIP_ARGS": pip_args,
        "EXPORT_DIR": export_dir,
        "PRESET_DIR": preset_dir,
        # The stand-in checkpoint is random, not pretrained: a higher rate and more
        # epochs, so that 40 sentences move the loss.
        "LEARNING_RATE": 3e-3,
        "EPOCHS": 10,
    }
    injected = nbformat.v4.new_code_cell(
        "\n".join(f"{k} = {v!r}" for k, v in overrides.items()), id="injected-parameters")
    nb.cells.insert(index[0] + 1, injected)
    nb.cells.append(nbformat.v4.new_code_cell(_CHECK_CELL, id="test-check"))

    kernel_env = {k: v for k, v in (os.environ if env is None else env).items()
                  if k not in ("PYTHONPATH", "KERAS_BACKEND")}
    kernel_env.update(
        jupyter_env,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        HF_HOME=hf_home,
        HF_HUB_CACHE=os.path.join(hf_home, "hub"),
        HF_HUB_OFFLINE="1",
        HF_EMBEDDINGS_NPY=hf_embeddings,
    )
    client = nbclient.NotebookClient(
        nb, kernel_name=_KERNEL, timeout=900, allow_errors=False,
        resources={"metadata": {"path": workdir}},
    )
    try:
        client.execute(env=kernel_env)
    except nbclient.exceptions.CellExecutionError as e:
        test.fail(f"a notebook cell failed:\n{_ANSI.sub('', str(e))[-6000:]}")
    finally:
        # The executed notebook, for a look at its outputs (Bazel keeps this folder in
        # bazel-testlogs/.../test.outputs/).
        nbformat.write(nb, os.path.join(
            os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", tmp),
            "finetune_in_colab.executed.ipynb"))

    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        test.assertIsNotNone(cell.execution_count, cell.source[:80])
        errors = [o for o in cell.outputs if o.output_type == "error"]
        test.assertEqual(errors, [], cell.source[:80])

    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs
                      if o.output_type == "stream" and o.name == "stdout")
    (line,) = [l for l in printed.splitlines() if l.startswith(_CHECK)]
    check = json.loads(line[len(_CHECK):])

    # The package came from pip's install into `package_dir`, not from the source tree.
    test.assertTrue(check["gpt1_keras_file"].startswith(package_dir.rstrip(os.sep) + os.sep),
                    check["gpt1_keras_file"])
    test.assertEqual(check["backend"], "tensorflow")
    loss = check["loss"]
    test.assertGreaterEqual(len(loss), 2)
    test.assertTrue(all(math.isfinite(v) for v in loss), loss)
    test.assertLess(loss[-1], loss[0])
    # evaluate's accuracy is the one of the model's own predictions on the test texts.
    accuracy = check["evaluate"]["sparse_categorical_accuracy"]
    test.assertAlmostEqual(accuracy, check["predicted_accuracy"], places=6)
    test.assertGreaterEqual(check["num_test"], 4)
    test.assertTrue(math.isfinite(check["evaluate"]["loss"]))
    test.assertEqual(check["probs_shape"], [3, 2])

    # The SavedModel on disk (TF Serving's EXPORT_DIR/<version>/ layout), and its
    # serving signature's outputs for the 3 new strings, equal to model.predict's.
    test.assertEqual(check["version_dir"], os.path.join(export_dir, "1"))
    test.assertTrue(os.path.isfile(os.path.join(export_dir, "1", "saved_model.pb")))
    test.assertEqual(check["served"]["probabilities"], [3, 2])
    test.assertEqual(check["served"]["label"], [3])
    test.assertEqual(check["served"]["label_name"], [3])
    test.assertContainsSubset(check["served_labels"], {"negative", "positive"})
    test.assertLess(check["served_vs_predict"], 1e-5)

    # The model came from the Hub cache: its architecture, and from_preset(PRESET) holds
    # the checkpoint's own token embeddings.
    test.assertEqual(check["backbone"], [2, 32])
    test.assertEqual(check["hub_embeddings_vs_hf"], 0.0)
    # The saved preset: a keras-hub preset directory that keras-hub's base class loads
    # as the fine-tuned classifier (same predictions, label names kept).
    test.assertContainsSubset(
        {"config.json", "task.json", "task.weights.h5", "model.weights.h5",
         "preprocessor.json", "tokenizer.json", "assets"}, check["preset_files"])
    test.assertEqual(check["reloaded_class"], "GPT1Classifier")
    test.assertEqual(check["reloaded_labels"], ["negative", "positive"])
    test.assertLess(check["reloaded_vs_predict"], 1e-6)
    return check
