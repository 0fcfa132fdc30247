"""Shared pieces of the export tests: tiny model directories, a fresh Python process
that serves a SavedModel without `gpt1_keras`, and `saved_model_cli` parsing."""

import base64
import json
import os
import re
import subprocess
import sys

import numpy as np

# What the fresh process runs before and after a test's code. It imports TensorFlow
# and TF Text only (TF Serving links TF Text's ops in; the tokenizer's NFC step is
# one), loads the SavedModel and never touches gpt1_keras.
_PRELUDE = r'''
import base64, json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers NormalizeUTF8)

with open(sys.argv[1]) as f:
    payload = json.load(f)


def tensor(spec):
    def decode(v):
        return [decode(x) for x in v] if isinstance(v, list) else base64.b64decode(v)
    value = decode(spec["value"]) if spec["dtype"] == "string" else spec["value"]
    t = tf.constant(value, dtype=spec["dtype"])
    return tf.reshape(t, spec["shape"]) if "shape" in spec else t


def plain(outputs):
    out = {}
    for name, t in outputs.items():
        a = t.numpy()
        if a.dtype == object:
            value = np.vectorize(lambda b: base64.b64encode(b).decode("ascii"),
                                 otypes=[object])(a).tolist() if a.size else a.tolist()
        else:
            value = a.tolist()
        out[name] = {"dtype": t.dtype.name, "shape": list(a.shape), "value": value}
    return out


def call(fn, inputs):
    return plain(fn(**{k: tensor(v) for k, v in inputs.items()}))


result = {}
'''

_EPILOGUE = r'''
result["gpt1_keras_modules"] = sorted(
    m for m in sys.modules if m == "gpt1_keras" or m.startswith("gpt1_keras."))
with open(sys.argv[2], "w") as f:
    json.dump(result, f)
'''


def encode(value, dtype=None):
    """A NumPy-able value (strings as `str` or `bytes`) as a payload tensor spec."""
    array = np.asarray(value, dtype=object if dtype in (None, "string") else dtype)
    if dtype in (None, "string"):
        def enc(v):
            if isinstance(v, list):
                return [enc(x) for x in v]
            v = v.encode("utf-8") if isinstance(v, str) else bytes(v)
            return base64.b64encode(v).decode("ascii")
        return {"dtype": "string", "value": enc(array.tolist()), "shape": list(array.shape)}
    return {"dtype": dtype, "value": array.tolist(), "shape": list(array.shape)}


def decode(spec):
    """A result tensor spec from the fresh process as a NumPy array (strings: bytes)."""
    if spec["dtype"] == "string":
        def dec(v):
            return [dec(x) for x in v] if isinstance(v, list) else base64.b64decode(v)
        values = dec(spec["value"])
        array = np.empty(spec["shape"], dtype=object)
        if array.size:
            array[...] = np.asarray(values, dtype=object).reshape(spec["shape"])
        return array
    return np.asarray(spec["value"], dtype=spec["dtype"]).reshape(spec["shape"])


def run_fresh(code, payload, tmpdir, timeout=600):
    """Runs `code` in a new Python process that does not import gpt1_keras.

    `code` sees `payload` (JSON), `tensor(spec)`, `call(fn, inputs)`, `tf`, `np`,
    and fills the dict `result` (JSON-able). The process starts in `tmpdir` with no
    PYTHONPATH, so `gpt1_keras` is not even importable there; the returned dict's
    `gpt1_keras_modules` lists any gpt1_keras module it imported anyway.

    Returns:
        `result`. Raises `AssertionError` with the process's stderr if it fails.
    """
    script = os.path.join(tmpdir, "fresh_process.py")
    with open(script, "w") as f:
        f.write(_PRELUDE + code + _EPILOGUE)
    payload_file = os.path.join(tmpdir, "payload.json")
    result_file = os.path.join(tmpdir, "result.json")
    with open(payload_file, "w") as f:
        json.dump(payload, f)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run([sys.executable, script, payload_file, result_file], cwd=tmpdir,
                          env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(
            f"The fresh process failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}")
    with open(result_file) as f:
        return json.load(f)


def save_model_dir(model, directory, task=None, sequence_length=None):
    """Writes `model.keras` (and, for a task, a `metrics.json` as fine-tuning does)."""
    os.makedirs(directory, exist_ok=True)
    model.save(os.path.join(directory, "model.keras"))
    if task is not None:
        with open(os.path.join(directory, "metrics.json"), "w") as f:
            json.dump({"task": task, "config": {"sequence_length": sequence_length}}, f)
    return directory


def saved_model_cli_show(path):
    """`saved_model_cli show --all --dir path`'s output (the venv's script)."""
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    command = [cli] if os.path.exists(cli) else [
        sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(command + ["show", "--all", "--dir", path], env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise AssertionError(f"saved_model_cli failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


def parse_saved_model_cli(text):
    """`{signature: {"inputs"|"outputs": {name: (dtype, shape)}, "method": str}}`."""
    signatures = {}
    for block in re.split(r"\nsignature_def\['", text)[1:]:
        name = block[:block.index("'")]
        entry = {"inputs": {}, "outputs": {}, "method": None}
        side = None
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if "following input(s)" in line:
                side = "inputs"
            elif "following output(s)" in line:
                side = "outputs"
            match = re.match(r"\s+(inputs|outputs)\['(.+)'\] tensor_info:", line)
            if match:
                dtype = lines[i + 1].split("dtype:")[1].strip()
                shape = lines[i + 2].split("shape:")[1].strip()
                entry[side][match.group(2)] = (dtype, shape)
            if line.startswith("  Method name is:"):
                entry["method"] = line.split(":", 1)[1].strip()
        signatures[name] = entry
    return signatures
