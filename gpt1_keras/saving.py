"""Reading and writing `.keras` model files with errors a user can act on.

    model = load_model_file(path, expected=GPT1CausalLM, what="--checkpoint")
    atomic_save_model(model, os.path.join(model_dir, "model.keras"))

Keras reports any unreadable file, even one that exists, as "File not found";
`load_model_file` says instead what is wrong with the path (missing, a directory,
not a `.keras` archive, a model of another type). `atomic_save_model` writes beside
the target and renames, so an interrupted or failed save never leaves a torn file,
and a full disk becomes a `CheckpointWriteError` naming the file.
"""

import os
import zipfile
import zlib

from gpt1_keras.errors import UserError
from gpt1_keras.errors import write_error

KERAS_SUFFIX = ".keras"


class ModelFileError(UserError, ValueError):
    """A path that does not hold a loadable `.keras` model (of the expected type)."""


def load_model_file(path, expected=None, what="model file", compile=False):
    """Loads a `.keras` file, raising `ModelFileError` with a one-line reason.

    Args:
        path: the `.keras` file.
        expected: a class or tuple of classes the model must be an instance of.
        what: how the message names the path (e.g. `"--checkpoint"`).
        compile: passed to `keras.saving.load_model`.

    Returns:
        The model.
    """
    import keras

    import gpt1_keras.models  # noqa: F401  (registers the classes with Keras)

    path = os.fspath(path)
    where = f"{what} {path}"
    if not os.path.exists(path):
        raise ModelFileError(f"{where} does not exist; pass a {KERAS_SUFFIX} model file.")
    if os.path.isdir(path):
        inner = os.path.join(path, "model.keras")
        hint = f" (did you mean {inner}?)" if os.path.isfile(inner) else ""
        raise ModelFileError(f"{where} is a directory, not a {KERAS_SUFFIX} file{hint}.")
    if not path.endswith(KERAS_SUFFIX):
        raise ModelFileError(
            f"{where} does not end in {KERAS_SUFFIX}; pass a Keras 3 {KERAS_SUFFIX} model "
            "file (from //pipelines:convert, pretrain or finetune).")
    invalid = (f"{where} exists but is not a valid {KERAS_SUFFIX} archive")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{invalid} (not a zip file: corrupt, truncated or another format); "
            "re-create it or pass another file.")
    with zipfile.ZipFile(path) as archive:
        if "config.json" not in archive.namelist():
            raise ModelFileError(f"{invalid} (no config.json inside); re-create it.")
    try:
        model = keras.saving.load_model(path, compile=compile)
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError,
            TypeError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ModelFileError(
            f"{invalid}: Keras cannot load it ({type(e).__name__}: {first_line[:300]}); "
            "re-create it with this version of gpt1_keras.") from e
    if expected is not None and not isinstance(model, expected):
        names = " or ".join(c.__name__ for c in (
            expected if isinstance(expected, tuple) else (expected,)))
        raise ModelFileError(
            f"{where} holds a {type(model).__name__}; expected a {names}.")
    return model


def atomic_save_model(model, path):
    """Saves `model` to the `.keras` file `path` atomically.

    Writes `<dir>/.<name>.tmp-<pid>.keras`, then `os.replace`s it onto `path`: a
    reader sees the previous file or the new one, never half of one.

    Raises:
        CheckpointWriteError: the file could not be written (disk full, read-only,
            ...); the message names the file and says whether a previous version
            is still in place. Nothing partial is left behind.
    """
    path = os.fspath(path)
    if not path.endswith(KERAS_SUFFIX):
        raise ValueError(f"`path` must end in {KERAS_SUFFIX}. Received: path={path!r}")
    directory = os.path.dirname(os.path.abspath(path))
    partial = os.path.join(directory, f".{os.path.basename(path)}.tmp-{os.getpid()}.keras")
    try:
        os.makedirs(directory, exist_ok=True)
        model.save(partial)
        os.replace(partial, path)
    except OSError as e:
        raise write_error(e, path, f"{path} in {directory}") from e
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return path
