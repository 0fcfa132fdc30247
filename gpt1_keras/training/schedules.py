"""GPT-1 learning-rate schedules as `keras.optimizers.schedules.LearningRateSchedule`s.

- `WarmupCosineDecay`: pretraining (paper section 4.1): linear warm-up from 0 to the
  peak over `warmup_steps` updates, then cosine annealing to 0 at `total_steps`.
- `WarmupLinearDecay`: fine-tuning (the original code's `warmup_linear`), clamped at 0
  past the last step (the original goes negative there; docs/model.md, choice 6).

Both are pure functions of the step written with `keras.ops`, so they run on every
backend and inside compiled train steps; the optimizer evaluates them at its
`iterations` (0 for the first update).
"""

import math

import keras
from keras import ops

SCHEDULES = ("cosine", "linear", "constant")  # `make_schedule` names.


def warmup_cosine(step, peak_learning_rate, warmup_steps, total_steps):
    """The pretraining learning rate at `step` (0-based count of updates done).

    1. warm-up, `step < warmup_steps`: `peak * (step + 1) / warmup_steps`, so the
       first update uses a small non-zero rate and update `warmup_steps` the peak;
    2. cosine decay, `warmup_steps <= step < total_steps`:
       `peak * 0.5 * (1 + cos(pi * progress))` with
       `progress = (step - warmup_steps) / (total_steps - warmup_steps)`;
    3. past the end, `step >= total_steps`: 0.
    """
    step = ops.cast(step, "float32")
    warmup = float(max(warmup_steps, 0))
    decay_steps = float(max(total_steps - warmup_steps, 1))
    # 1. Linear warm-up.
    warmup_lr = peak_learning_rate * (step + 1.0) / max(warmup, 1.0)
    # 2. Cosine decay to 0.
    progress = ops.clip((step - warmup) / decay_steps, 0.0, 1.0)
    cosine_lr = peak_learning_rate * 0.5 * (1.0 + ops.cos(math.pi * progress))
    lr = ops.where(step < warmup, warmup_lr, cosine_lr)
    # 3. Nothing past the end.
    return ops.where(step >= float(total_steps), 0.0, lr)


def warmup_linear(step, peak_learning_rate, warmup_steps, total_steps):
    """The fine-tuning learning rate at `step`: GPT-1's `warmup_linear`, clamped.

    With `x = step / total_steps` and `w = warmup_steps / total_steps`:
    1. warm-up, `x <= w`: `peak * x / w`;
    2. linear decay, `x > w`: `peak * (1 - x)`;
    3. clamp: never below 0 (the original formula goes negative past the end).
    """
    step = ops.cast(step, "float32")
    total = float(max(total_steps, 1))
    x = step / total
    w = max(float(warmup_steps), 1e-8) / total
    # 1. and 2.: the original `(x/w if x <= w else 1) * (1 - x)`.
    factor = ops.where(x <= w, x / w, 1.0) * (1.0 - x)
    # 3. Clamp at 0.
    return peak_learning_rate * ops.maximum(factor, 0.0)


def _check(peak_learning_rate, warmup_steps, total_steps):
    if peak_learning_rate <= 0:
        raise ValueError(
            f"The learning rate must be > 0. Received: peak_learning_rate={peak_learning_rate}"
        )
    if total_steps < 1:
        raise ValueError(f"`total_steps` must be >= 1. Received: total_steps={total_steps}")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(
            "`warmup_steps` must be in [0, total_steps]. Received: "
            f"warmup_steps={warmup_steps}, total_steps={total_steps}"
        )


class _WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Shared arguments and config of the two warm-up schedules below."""

    def __init__(self, peak_learning_rate, warmup_steps, total_steps):
        _check(peak_learning_rate, warmup_steps, total_steps)
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def get_config(self):
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
        }


@keras.saving.register_keras_serializable(package="gpt1_keras")
class WarmupCosineDecay(_WarmupSchedule):
    """Linear warm-up then cosine decay to 0 (GPT-1 pretraining); see `warmup_cosine`.

    Args:
        peak_learning_rate: the rate reached at the end of warm-up (2.5e-4 in the paper).
        warmup_steps: updates of linear warm-up (2,000 in the paper).
        total_steps: the update at which the rate reaches 0.

    Example:
    ```python
    schedule = WarmupCosineDecay(2.5e-4, warmup_steps=2000, total_steps=100_000)
    optimizer = build_optimizer(schedule)
    ```
    """

    def __call__(self, step):
        return warmup_cosine(
            step, self.peak_learning_rate, self.warmup_steps, self.total_steps
        )


@keras.saving.register_keras_serializable(package="gpt1_keras")
class WarmupLinearDecay(_WarmupSchedule):
    """GPT-1's fine-tuning `warmup_linear` schedule, clamped at 0; see `warmup_linear`.

    Args:
        peak_learning_rate: the rate at the end of warm-up (6.25e-5 in the paper).
        warmup_steps: updates of warm-up (0.2% of `total_steps` in the paper).
        total_steps: the update at which the rate reaches 0.

    Example:
    ```python
    schedule = WarmupLinearDecay(6.25e-5, warmup_steps=int(0.002 * n), total_steps=n)
    ```
    """

    def __call__(self, step):
        return warmup_linear(
            step, self.peak_learning_rate, self.warmup_steps, self.total_steps
        )


def make_schedule(name, peak_learning_rate, warmup_steps, total_steps):
    """Builds a schedule by name: `"cosine"`, `"linear"` or `"constant"`."""
    if name == "cosine":
        return WarmupCosineDecay(peak_learning_rate, warmup_steps, total_steps)
    if name == "linear":
        return WarmupLinearDecay(peak_learning_rate, warmup_steps, total_steps)
    if name == "constant":
        return float(peak_learning_rate)
    raise ValueError(
        "Unknown schedule; expected 'cosine', 'linear' or 'constant'. "
        f"Received: schedule={name!r}"
    )
