"""Optional dependencies ("extras"): one place that maps each to its `pip install` extra.

`pip install gpt1-keras` installs what every model, tokenizer, recipe and the SavedModel
export need. A few parts need more, declared as extras in `pyproject.toml`:

| module               | extra     | needed for |
| -------------------- | --------- | ---------- |
| `matplotlib`         | `plots`   | `loss_curve.png` of pretraining, the reproduction report's plots |
| `tensorflow_serving` | `serving` | TF Serving's warm-up records in an exported SavedModel |
| `jax`                | `jax`     | the JAX backend |
| `torch`              | `torch`   | the PyTorch backend; reading PyTorch `.bin` checkpoints |
| `ftfy`               | `ftfy`    | `fix_text`, the original encoder's Python-side text cleaning |
| `spacy`              | `spacy`   | regenerating the tokenizer's spaCy rules (`make_spacy_rules`) |

`require(module, what)` imports one of them or raises `MissingExtraError`, a `UserError`
whose one-line message names the extra to install: the binaries print it as one `ERROR:`
line, never a traceback. `tests/packaging_test.py` checks that every third-party module the
package imports is a dependency of `pyproject.toml` or listed here.
"""

import importlib
import importlib.util
import json
import os

from gpt1_keras.errors import UserError

# Top-level module -> the extra of `pyproject.toml` that installs it.
EXTRAS = {
    "matplotlib": "plots",
    "tensorflow_serving": "serving",
    "jax": "jax",
    "torch": "torch",
    "ftfy": "ftfy",
    "spacy": "spacy",
}


class MissingExtraError(UserError, ImportError):
    """An optional dependency is not installed; the message names the extra."""


def install_hint(module):
    """`pip install 'gpt1-keras[extra]'` for the top-level `module` of an extra."""
    return f"pip install 'gpt1-keras[{EXTRAS[module.split('.')[0]]}]'"


def require(module, what):
    """Imports `module` (dotted names allowed), or raises `MissingExtraError`.

    Args:
        module: the module to import; its top-level package must be in `EXTRAS`.
        what: what needs it, for the message (e.g. "The loss-curve plot").

    Returns:
        The imported module.
    """
    top = module.split(".")[0]
    if top not in EXTRAS:
        raise ValueError(f"{top!r} is not an optional dependency; EXTRAS lists {sorted(EXTRAS)}.")
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if e.name is None or e.name.split(".")[0] != top:
            raise  # The extra is there but broken: that is not a missing extra.
        raise MissingExtraError(
            f"{what} needs the '{EXTRAS[top]}' extra, which is not installed "
            f"(no module named {e.name!r}): {install_hint(top)}") from None


def missing_backend():
    """The Keras backend Keras would load whose package is not installed, or None.

    Read as Keras reads it (`KERAS_BACKEND`, else `keras.json` in `KERAS_HOME` or
    `~/.keras`), without importing Keras, which would fail with a traceback.
    """
    backend = os.environ.get("KERAS_BACKEND")
    if backend is None:
        home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
        try:
            with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
                backend = json.load(f).get("backend")
        except (OSError, ValueError, AttributeError):
            backend = None
    if backend in ("jax", "torch") and not available(backend):
        return backend
    return None


def missing_backend_error(backend):
    """The `MissingExtraError` of a `missing_backend()`."""
    return MissingExtraError(
        f"KERAS_BACKEND={backend} needs the '{backend}' extra, which is not installed: "
        f"{install_hint(backend)} (or use KERAS_BACKEND=tensorflow).")


def available(module):
    """Whether the optional `module` can be imported (without importing it)."""
    return importlib.util.find_spec(module.split(".")[0]) is not None
