"""Keras callbacks of the trainer: NaN stop, periodic checkpoints, throughput, history.

Order matters and the trainer passes them in this order: `StopOnNonFiniteLoss` first
(so the checkpoint callback sees a diverged step as diverged), then
`PeriodicCheckpoint`, `Throughput`, the user's callbacks, `HistoryLog` (last, so it
records the entries the others add to an epoch's logs), then TensorBoard.
"""

import json
import math
import os
import time

import keras
import numpy as np
from absl import logging
from keras import ops


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or Inf loss."""


def _scalar(value):
    return float(np.asarray(ops.convert_to_numpy(value)))


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops `fit` at the first batch whose loss is NaN or Inf, and remembers where.

    Unlike `keras.callbacks.TerminateOnNaN` it records the step, so the trainer can
    raise a `NonFiniteLossError` naming it and the last good checkpoint, and the
    checkpoint callback skips saving from then on.
    """

    def __init__(self):
        super().__init__()
        self.bad_step = None
        self.bad_loss = None

    @property
    def triggered(self):
        return self.bad_step is not None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or self.triggered:
            return
        loss = _scalar(loss)
        if not math.isfinite(loss):
            self.bad_step = int(_scalar(self.model.optimizer.iterations))
            self.bad_loss = loss
            logging.error("Loss is %s at step %d: stopping.", loss, self.bad_step)
            self.model.stop_training = True


class PeriodicCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint every `every_n_steps` optimizer updates.

    Args:
        manager: a `CheckpointManager`.
        every_n_steps: the interval, counted in `optimizer.iterations`.
        nan_guard: a `StopOnNonFiniteLoss`; nothing is saved once it has triggered.
        metadata: a dict stored in each checkpoint's sidecar.
    """

    def __init__(self, manager, every_n_steps, nan_guard=None, metadata=None):
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"`every_n_steps` must be >= 1. Received: {every_n_steps}")
        self.manager = manager
        self.every_n_steps = int(every_n_steps)
        self.nan_guard = nan_guard
        self.metadata = metadata
        self.last_saved_step = None

    def save_now(self):
        step = int(_scalar(self.model.optimizer.iterations))
        if self.nan_guard is not None and self.nan_guard.triggered:
            return None
        if step == self.last_saved_step:
            return None
        path = self.manager.save(step, self.model, self.model.optimizer, self.metadata)
        self.last_saved_step = step
        if path:
            logging.info("Saved checkpoint %s", path)
        return path

    def on_train_batch_end(self, batch, logs=None):
        step = int(_scalar(self.model.optimizer.iterations))
        if step % self.every_n_steps == 0:
            self.save_now()


class Throughput(keras.callbacks.Callback):
    """Measures training tokens per second, excluding each `fit` call's first step.

    The first step of a `fit` call includes tracing/compilation; it is left out.
    Time is measured from `on_train_batch_begin` to `on_train_batch_end`, which spans
    the input pipeline and the train step (not validation or checkpointing).
    `tokens_per_second` is also added to each epoch's logs.

    Args:
        tokens_per_step: tokens per global batch (`batch_size * sequence_length`).
    """

    def __init__(self, tokens_per_step):
        super().__init__()
        self.tokens_per_step = tokens_per_step
        self.seconds = 0.0
        self.steps = 0
        self._first = True
        self._begin = None

    def on_train_begin(self, logs=None):
        self._first = True

    def on_train_batch_begin(self, batch, logs=None):
        self._begin = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:
            _scalar(logs["loss"])  # Wait for the step to finish.
        if self._first:
            self._first = False
            return
        self.seconds += time.perf_counter() - self._begin
        self.steps += 1

    @property
    def tokens_per_second(self):
        if not self.steps:
            return None
        return self.steps * self.tokens_per_step / self.seconds

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.tokens_per_second:
            logs["tokens_per_second"] = self.tokens_per_second


class HistoryLog(keras.callbacks.Callback):
    """Records each epoch's logs with its optimizer step, in memory and in a file.

    The file (`history.jsonl`, one JSON object per line) survives restarts: a resumed
    run first drops the entries after the restored step (they will be redone), so the
    file always describes one uninterrupted trajectory.

    Args:
        path: the `.jsonl` file, or `None` to keep the history in memory only.
    """

    def __init__(self, path=None):
        super().__init__()
        self.path = path
        self.entries = []

    def load(self, restored_step):
        """Reads the file, keeping entries up to `restored_step`, and rewrites it."""
        if not self.path or not os.path.exists(self.path):
            self.entries = []
            return self.entries
        with open(self.path) as f:
            entries = [json.loads(line) for line in f if line.strip()]
        self.entries = [e for e in entries if e["step"] <= restored_step]
        tmp = self.path + f".tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            for e in self.entries:
                f.write(json.dumps(e) + "\n")
        os.replace(tmp, self.path)
        return self.entries

    def on_epoch_end(self, epoch, logs=None):
        entry = {"step": int(_scalar(self.model.optimizer.iterations)), "epoch": epoch + 1}
        for key, value in (logs or {}).items():
            try:
                entry[key] = _scalar(value)
            except (TypeError, ValueError):
                continue
        if "learning_rate" not in entry:
            entry["learning_rate"] = _scalar(self.model.optimizer.learning_rate)
        self.entries.append(entry)
        if self.path:
            with open(self.path, "a") as f:
                f.write(json.dumps(entry) + "\n")
