"""Atomic, verified training checkpoints that any Keras backend can write and read.

A checkpoint is the full training state after `step` optimizer updates:

- every model variable (`model.variables`: weights *and* the dropout seed-generator
  states, so a resumed run draws the same dropout masks as an uninterrupted one);
- every optimizer variable (`optimizer.variables`: `iterations`, Adam's moments);
- the step; the data position is derived from it (see below).

On disk, in `directory/`:

    ckpt-000000100.npz    the arrays (numpy `.npz`, keys `model/<i>`, `optimizer/<i>`)
    ckpt-000000100.json   the sidecar: step, sha256 and size of the `.npz`, variable
                          paths and shapes, and caller-supplied metadata

Writes are atomic: each file goes to `<name>.tmp-<pid>` in the same directory, is
flushed and fsync'ed, then `os.replace`d into place; the `.npz` first, the sidecar
last. So a checkpoint "exists" only once its sidecar does, and a process killed at any
moment leaves either a complete checkpoint or a leftover temp file (removed on the next
start). A checkpoint is valid when its sidecar parses, the `.npz` has the recorded size
and sha256, and it loads with the recorded variables. `restore_latest` tries the
newest first and falls back, with a logged warning naming the bad file and the reason,
to the previous valid one.

Data position: the training data is a deterministic function of the seed (seeded
shuffles, `deterministic=True` maps), so after restoring step `s` the trainer skips the
`s` global batches already consumed (`Dataset.skip`). This works on every backend and
every `tf.distribute` strategy and costs one pass of the input pipeline (no model
compute) over the consumed data. Saving the tf.data iterator instead would be TF-only,
cannot reach the iterator `model.fit` creates internally, and would store the shuffle
buffer (10k windows) in every checkpoint.
"""

import hashlib
import io
import json
import os
import re
import time

import numpy as np
from absl import logging
from keras import ops

from gpt1_keras.errors import CheckpointWriteError
from gpt1_keras.errors import UserError

_NAME = re.compile(r"^ckpt-(\d{9})\.json$")
_AUTO_NUMBER = re.compile(r"_\d+(?=/|$)")
_TMP = re.compile(r"\.tmp-\d+$")


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be used (corrupt, truncated, or incompatible)."""


class IncompatibleCheckpointError(CheckpointError):
    """A readable checkpoint whose variables do not match the model being trained."""


def _training_state(model, optimizer):
    return list(model.variables), list(optimizer.variables)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path, write_fn):
    """Writes `path` through a temp file in the same directory, fsync, `os.replace`."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointManager:
    """Saves, prunes, verifies and restores training checkpoints in one directory.

    Args:
        directory: where checkpoints live (created if missing).
        max_to_keep: the number of newest checkpoints kept; older ones are deleted
            after each successful save.
        is_chief: only the chief writes (multi-worker training); every process reads.

    Example:
    ```python
    manager = CheckpointManager("/runs/a/checkpoints", max_to_keep=3)
    step = manager.restore_latest(model, optimizer)  # 0 when there is none
    ...
    manager.save(step, model, optimizer)
    ```
    """

    def __init__(self, directory, max_to_keep=3, is_chief=True):
        if max_to_keep < 1:
            raise ValueError(f"`max_to_keep` must be >= 1. Received: max_to_keep={max_to_keep}")
        self.directory = os.path.abspath(directory)
        self.max_to_keep = int(max_to_keep)
        self.is_chief = is_chief
        if is_chief:
            os.makedirs(self.directory, exist_ok=True)
            self._remove_leftover_temp_files()

    # -- paths ---------------------------------------------------------------------

    def paths(self, step):
        """The `(arrays, sidecar)` paths of the checkpoint at `step`."""
        stem = os.path.join(self.directory, f"ckpt-{step:09d}")
        return stem + ".npz", stem + ".json"

    def steps(self):
        """Steps of the checkpoints whose sidecar exists, oldest first."""
        if not os.path.isdir(self.directory):
            return []
        found = (_NAME.match(name) for name in os.listdir(self.directory))
        return sorted(int(m.group(1)) for m in found if m)

    def _remove_leftover_temp_files(self):
        for name in os.listdir(self.directory):
            if _TMP.search(name):
                logging.info("Removing an unfinished checkpoint write: %s", name)
                os.remove(os.path.join(self.directory, name))

    # -- save ----------------------------------------------------------------------

    def save(self, step, model, optimizer, metadata=None):
        """Writes the checkpoint for `step` atomically, then prunes old ones.

        Refuses (raises `CheckpointError`) to write non-finite weights, so a diverged
        run can never replace the last good checkpoint. Non-chief processes return
        `None` without writing.

        Returns:
            The `.npz` path written, or `None` on a non-chief process.

        Raises:
            CheckpointWriteError: a file could not be written (disk full, quota,
                read-only, ...). Nothing of this step is left behind and the older
                checkpoints are untouched: the message names the checkpoint being
                written, the directory and the last good checkpoint, from which
                the run resumes once rerun.
        """
        model_vars, optimizer_vars = _training_state(model, optimizer)
        arrays = {}
        for prefix, variables in (("model", model_vars), ("optimizer", optimizer_vars)):
            for i, v in enumerate(variables):
                arrays[f"{prefix}/{i}"] = np.asarray(ops.convert_to_numpy(v.value))
        for v, key in zip(model_vars, arrays):
            value = arrays[key]
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                raise CheckpointError(
                    f"Not saving step {step}: variable {v.path} has NaN/Inf values."
                )
        if not self.is_chief:
            return None
        npz_path, sidecar_path = self.paths(step)
        try:
            self._write(step, arrays, model_vars, optimizer_vars, metadata)
        except OSError as e:
            self._discard(step)
            good = [s for s in self.steps() if s != step]
            last_good = (f"{self.paths(good[-1])[0]} (step {good[-1]}), unchanged"
                         if good else "none yet")
            raise CheckpointWriteError(
                e.errno,
                f"Could not write checkpoint {os.path.basename(npz_path)} (step {step}) in "
                f"{self.directory}: {e.strerror or e}. Last good checkpoint: {last_good}. "
                "Free some space (or fix the directory) and rerun to resume from it.",
            ) from e
        self._prune()
        return npz_path

    def _write(self, step, arrays, model_vars, optimizer_vars, metadata):
        npz_path, sidecar_path = self.paths(step)

        def write_arrays(f):
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            f.write(buffer.getbuffer())

        _atomic_write(npz_path, write_arrays)
        sidecar = {
            "step": int(step),
            "file": os.path.basename(npz_path),
            "size": os.path.getsize(npz_path),
            "sha256": _sha256(npz_path),
            "model_variables": [[v.path, list(v.shape)] for v in model_vars],
            "optimizer_variables": [[v.path, list(v.shape)] for v in optimizer_vars],
            "time": time.time(),
            "metadata": metadata or {},
        }
        _atomic_write(
            sidecar_path, lambda f: f.write(json.dumps(sidecar, indent=1).encode())
        )
        _fsync_dir(self.directory)

    def _discard(self, step):
        """Removes what a failed save of `step` left, unless it is still whole.

        (A save of a step that already had a checkpoint may fail before replacing
        either file: that checkpoint is still good and stays.)
        """
        npz_path, sidecar_path = self.paths(step)
        try:
            with open(sidecar_path) as f:
                sidecar = json.load(f)
            if (os.path.getsize(npz_path) == sidecar.get("size")
                    and _sha256(npz_path) == sidecar.get("sha256")):
                return
        except (OSError, ValueError):
            pass
        for path in (sidecar_path, npz_path):
            try:
                os.remove(path)
            except OSError:
                pass

    def _prune(self):
        for step in self.steps()[: -self.max_to_keep]:
            npz_path, sidecar_path = self.paths(step)
            # Sidecar first: a half-deleted checkpoint is then simply absent.
            for path in (sidecar_path, npz_path):
                if os.path.exists(path):
                    os.remove(path)

    # -- restore -------------------------------------------------------------------

    def _verified(self, step):
        """`(sidecar, arrays)` of the checkpoint at `step` once its files check out."""
        npz_path, sidecar_path = self.paths(step)
        try:
            with open(sidecar_path) as f:
                sidecar = json.load(f)
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{sidecar_path}: unreadable sidecar ({e})") from e
        if not os.path.exists(npz_path):
            raise CheckpointError(f"{npz_path}: missing")
        size = os.path.getsize(npz_path)
        if size != sidecar.get("size"):
            raise CheckpointError(
                f"{npz_path}: truncated or overwritten ({size} bytes, expected "
                f"{sidecar.get('size')})"
            )
        if _sha256(npz_path) != sidecar.get("sha256"):
            raise CheckpointError(f"{npz_path}: sha256 mismatch (corrupt)")
        try:
            with np.load(npz_path) as data:
                arrays = {key: data[key] for key in data.files}
        except Exception as e:  # zipfile/pickle/format errors all mean "corrupt".
            raise CheckpointError(f"{npz_path}: unreadable ({e})") from e
        return sidecar, arrays

    def read(self, step, model, optimizer):
        """Verifies the checkpoint at `step` against the files and the model.

        Returns:
            `(sidecar, arrays)` ready for `assign`.

        Raises:
            CheckpointError: missing, truncated or corrupt files.
            IncompatibleCheckpointError: the variables differ from the model's.
        """
        sidecar, arrays = self._verified(step)
        npz_path = self.paths(step)[0]
        model_vars, optimizer_vars = _training_state(model, optimizer)
        for kind, variables in (
            ("model_variables", model_vars),
            ("optimizer_variables", optimizer_vars),
        ):
            expected = [[_generic(v.path), list(v.shape)] for v in variables]
            stored = [[_generic(path), shape] for path, shape in sidecar.get(kind, [])]
            if stored != expected:
                raise IncompatibleCheckpointError(
                    f"{npz_path} was written for different {kind.replace('_', ' ')} "
                    f"(first difference: {_first_difference(stored, expected)}). "
                    "Use a new model directory for a different model or optimizer."
                )
        if len(arrays) != len(model_vars) + len(optimizer_vars):
            raise CheckpointError(f"{npz_path}: {len(arrays)} arrays, expected "
                                  f"{len(model_vars) + len(optimizer_vars)}")
        return sidecar, arrays

    def restore_model_weights(self, step, model):
        """Loads only the model's variables of the checkpoint at `step`.

        For evaluating a model as it was along training (e.g. zero-shot scores
        per checkpoint) without building its optimizer. `model` is the run's
        architecture (e.g. its `model.keras`); the variables are matched by order
        and shape, not by path, so a model built by a later version of this
        library whose layers are named differently still loads.

        Returns:
            The checkpoint's sidecar dict.

        Raises:
            CheckpointError: missing, truncated or corrupt files.
            IncompatibleCheckpointError: the model's variables have other shapes or
                another count than the checkpoint's.
        """
        sidecar, arrays = self._verified(step)
        npz_path = self.paths(step)[0]
        variables = list(model.variables)  # the trainer's order (`_training_state`)
        stored = [shape for _, shape in sidecar.get("model_variables", [])]
        expected = [list(v.shape) for v in variables]
        if stored != expected:
            raise IncompatibleCheckpointError(
                f"{npz_path} holds model variables of other shapes than the model "
                f"(first difference: {_first_difference(stored, expected)}); is it "
                "a checkpoint of this model's run?"
            )
        for i, v in enumerate(variables):
            v.assign(arrays[f"model/{i}"])
        return sidecar

    def restore(self, step, model, optimizer):
        """Loads the checkpoint at `step` into `model` and `optimizer` (built)."""
        sidecar, arrays = self.read(step, model, optimizer)
        model_vars, optimizer_vars = _training_state(model, optimizer)
        for prefix, variables in (("model", model_vars), ("optimizer", optimizer_vars)):
            for i, v in enumerate(variables):
                v.assign(arrays[f"{prefix}/{i}"])
        return sidecar

    def restore_latest(self, model, optimizer):
        """Restores the newest valid checkpoint, falling back past corrupt ones.

        Returns:
            The sidecar dict of the restored checkpoint (its `"step"` is the number of
            updates done), or `None` when there is no valid checkpoint.

        Raises:
            IncompatibleCheckpointError: the newest readable checkpoint belongs to a
                different model (never silently start over on top of it).
        """
        for step in reversed(self.steps()):
            try:
                sidecar = self.restore(step, model, optimizer)
            except IncompatibleCheckpointError:
                raise
            except CheckpointError as e:
                logging.warning(
                    "Checkpoint at step %d is unusable, falling back to the previous "
                    "one: %s", step, e,
                )
                continue
            logging.info("Restored checkpoint %s (step %d).", self.paths(step)[0], step)
            return sidecar
        return None


def _generic(path):
    """A variable path without Keras' auto-numbering (`dense_3` -> `dense`).

    Auto-generated names depend on how many layers the process built before; the
    order and shapes of the variables still pin the architecture down.
    """
    return _AUTO_NUMBER.sub("", path)


def _first_difference(got, expected):
    got = got or []
    for i, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            return f"#{i}: checkpoint {a} vs model {b}"
    return f"checkpoint has {len(got)} variables, model {len(expected)}"
