"""One trainer for GPT-1 pretraining and fine-tuning, on `model.fit`.

`train()` builds the model and GPT-1's optimizer inside the distribution scope,
restores the newest valid checkpoint (model, optimizer, step; the data position
follows from the step, see `checkpointing`), and calls `model.fit` with the
checkpoint/NaN/throughput/history/TensorBoard callbacks until `train_steps` updates
are done. A run killed at any point and started again with the same arguments
continues from its last checkpoint and ends with the same weights as an uninterrupted
run (bitwise with `tf.config.experimental.enable_op_determinism()`).

`fit` "epochs" here are `steps_per_epoch` updates long: each ends with a validation
pass, a history entry and a TensorBoard point. A run resumed between two epoch ends
first finishes that epoch with a shorter `fit` call, so that the data, the steps and
the validation points line up with an uninterrupted run.
"""

import dataclasses
import os
import tempfile

import keras
from absl import logging

from gpt1_keras.training import callbacks as callbacks_lib
from gpt1_keras.training import checkpointing
from gpt1_keras.training import distribution as distribution_lib
from gpt1_keras.training import optimizers
from gpt1_keras.training import schedules


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What `train` does; every field is a plain value (no flags).

    Attributes:
        model_dir: checkpoints (`checkpoints/`), TensorBoard logs (`logs/`) and the
            history (`history.jsonl`) go here.
        train_steps: total optimizer updates (including those before a restart).
        global_batch_size: examples per update, over all replicas.
        sequence_length: tokens per example (for the tokens/s figure).
        learning_rate: the peak learning rate.
        schedule: `"cosine"` (warm-up + cosine to 0, pretraining), `"linear"`
            (GPT-1's clamped `warmup_linear`, fine-tuning) or `"constant"`.
        warmup_steps: linear warm-up updates.
        weight_decay: GPT-1's decoupled L2 on weights of rank > 1 (`build_optimizer`
            passes it on as `GPT1Adam`'s `l2`).
        clip_norm: global gradient-norm clipping (0 disables).
        steps_per_epoch: updates per `fit` epoch (validation/history interval).
        validation_steps: batches per validation pass (required with validation data).
        checkpoint_every: updates between checkpoints (one is also written at the end).
        keep_checkpoints: the newest checkpoints kept.
        jit_compile: compile the train step with XLA.
        verbose: `fit`'s verbosity (`"auto"`: progress bar).
    """

    model_dir: str
    train_steps: int
    global_batch_size: int
    sequence_length: int
    learning_rate: float = 2.5e-4
    schedule: str = "cosine"
    warmup_steps: int = 2000
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    steps_per_epoch: int = 100
    validation_steps: int | None = None
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    jit_compile: bool = False
    verbose: object = "auto"

    def __post_init__(self):
        for name in ("train_steps", "global_batch_size", "sequence_length",
                     "steps_per_epoch", "checkpoint_every", "keep_checkpoints"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
        if not 0 <= self.warmup_steps <= self.train_steps:
            raise ValueError(
                "`warmup_steps` must be in [0, train_steps]. Received: "
                f"warmup_steps={self.warmup_steps}, train_steps={self.train_steps}"
            )


@dataclasses.dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        model: the trained model (inside the distribution's scope).
        initial_step: the step training started from (0, or the restored one).
        final_step: `optimizer.iterations` at the end.
        history: one dict per `fit` epoch (`step`, `loss`, `val_loss`, ...),
            including the epochs done before a restart.
        tokens_per_second: training throughput of this process (None if no step ran).
        restored_from: the restored checkpoint's sidecar, or None.
    """

    model: object
    initial_step: int
    final_step: int
    history: list
    tokens_per_second: float | None
    restored_from: dict | None


def train(
    build_model,
    train_dataset_fn,
    config,
    val_dataset_fn=None,
    distribution=None,
    callbacks=(),
    compile_kwargs=None,
    checkpoint_metadata=None,
):
    """Trains (or resumes training) with `model.fit`; see the module docstring.

    Args:
        build_model: a no-argument function returning the (uncompiled) Keras model;
            called inside the distribution scope.
        train_dataset_fn: `fn(input_context)` returning an infinite, deterministic
            `tf.data.Dataset` of training batches: global batches for
            `input_context=None`, else that pipeline's per-replica batches (e.g.
            `make_lm_dataset(..., repeat=True, seed=s, input_context=ctx)`).
        config: a `TrainConfig`.
        val_dataset_fn: like `train_dataset_fn`, for validation (finite is fine: its
            first `config.validation_steps` batches are used for every pass).
        distribution: a `Distribution` (`make_distribution`); default: one device.
        callbacks: extra Keras callbacks. They run after the NaN guard, the checkpoints
            and the throughput meter, and before the history and TensorBoard: entries
            a callback adds to `logs` in `on_epoch_end` (e.g.
            `gpt1_keras.evaluation.zero_shot_callback.ZeroShotProbes`' scores) are
            recorded in `history.jsonl`, `TrainResult.history` and TensorBoard.
        compile_kwargs: extra `model.compile` arguments (loss, metrics, ...). The
            optimizer is always GPT-1's (`build_optimizer`).
        checkpoint_metadata: a JSON-able dict stored in every checkpoint sidecar.

    Returns:
        A `TrainResult`.

    Raises:
        NonFiniteLossError: the loss became NaN/Inf; the message names the step and
            the last good checkpoint, which is left intact.
        ConfigError: the global batch does not split over the replicas, or the
            distribution cannot run with `config.jit_compile` (`Distribution.check`).
    """
    distribution = distribution or distribution_lib.Distribution(name="default")
    distribution.check(config.global_batch_size, config.jit_compile)
    if val_dataset_fn is not None and not config.validation_steps:
        raise ValueError("`validation_steps` is required with `val_dataset_fn`.")

    # === Model, optimizer, state ===
    with distribution.scope():
        model = distribution.prepare_model(build_model())
        schedule = schedules.make_schedule(
            config.schedule, config.learning_rate, config.warmup_steps, config.train_steps
        )
        optimizer = optimizers.build_optimizer(
            schedule, weight_decay=config.weight_decay, clip_norm=config.clip_norm
        )
        model.compile(optimizer=optimizer, jit_compile=config.jit_compile,
                      **(compile_kwargs or {}))
        optimizer.build(model.trainable_variables)

    manager = checkpointing.CheckpointManager(
        os.path.join(config.model_dir, "checkpoints"),
        max_to_keep=config.keep_checkpoints,
        is_chief=distribution.is_chief,
    )
    restored = manager.restore_latest(model, optimizer)
    step = int(keras.ops.convert_to_numpy(optimizer.iterations)) if restored else 0
    if restored is None and manager.steps():
        logging.warning("No usable checkpoint in %s; starting from step 0.", manager.directory)
    initial_step = step
    logging.info("Training from step %d to %d.", step, config.train_steps)

    # === Callbacks ===
    nan_guard = callbacks_lib.StopOnNonFiniteLoss()
    checkpoint = callbacks_lib.PeriodicCheckpoint(
        manager, config.checkpoint_every, nan_guard, checkpoint_metadata
    )
    throughput = callbacks_lib.Throughput(config.global_batch_size * config.sequence_length)
    history_path = os.path.join(config.model_dir, "history.jsonl")
    history = callbacks_lib.HistoryLog(history_path if distribution.is_chief else None)
    history.load(step)
    log_dir = os.path.join(config.model_dir, "logs")
    if not distribution.is_chief:
        log_dir = tempfile.mkdtemp(prefix="gpt1_worker_logs_")
    # User callbacks run before the history and TensorBoard, so that the entries they
    # add to an epoch's `logs` (e.g. `ZeroShotProbes`' scores) are recorded.
    all_callbacks = [
        nan_guard,
        checkpoint,
        throughput,
        *callbacks,
        history,
        keras.callbacks.TensorBoard(log_dir=log_dir),
    ]

    val_data = None
    if val_dataset_fn is not None:
        val_data = distribution.dataset(val_dataset_fn, take_steps=config.validation_steps)

    # === Fit, in epochs of `steps_per_epoch` updates ===
    with distribution.fit_scope():
        spe = config.steps_per_epoch
        while step < config.train_steps and not nan_guard.triggered:
            into_epoch = step % spe
            if into_epoch:  # Finish the epoch a restart interrupted.
                steps, epochs = min(spe - into_epoch, config.train_steps - step), 1
            elif config.train_steps - step >= spe:  # Whole epochs.
                steps, epochs = spe, (config.train_steps - step) // spe
            else:  # The last, shorter epoch.
                steps, epochs = config.train_steps - step, 1
            first_epoch = step // spe
            model.fit(
                distribution.dataset(train_dataset_fn, skip_steps=step),
                epochs=first_epoch + epochs,
                initial_epoch=first_epoch,
                steps_per_epoch=steps,
                validation_data=val_data,
                validation_steps=config.validation_steps if val_data is not None else None,
                callbacks=all_callbacks,
                verbose=config.verbose,
                shuffle=False,  # The datasets are shuffled (seeded) already.
            )
            step = int(keras.ops.convert_to_numpy(optimizer.iterations))

        if nan_guard.triggered:
            good = manager.steps()
            last_good = manager.paths(good[-1])[0] if good else "none (no checkpoint yet)"
            raise callbacks_lib.NonFiniteLossError(
                f"The training loss became {nan_guard.bad_loss} at step {nan_guard.bad_step}; "
                f"training stopped. Last good checkpoint: {last_good}. Try a lower learning "
                "rate, more warm-up, or float32 instead of mixed precision."
            )
        if step not in manager.steps():
            checkpoint.set_model(model)
            checkpoint.save_now()

    return TrainResult(
        model=model,
        initial_step=initial_step,
        final_step=step,
        history=history.entries,
        tokens_per_second=throughput.tokens_per_second,
        restored_from=restored,
    )
