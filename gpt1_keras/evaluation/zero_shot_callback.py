"""GPT-1's zero-shot probes (Figure 2 right) scored during pretraining, by a callback.

`ZeroShotProbes` scores the heuristics of `gpt1_keras.evaluation.zero_shot` on the
model being trained at the end of every (`every`-th) `fit` epoch, i.e. at each
validation pass of `gpt1_keras.training.train`, and adds one number per heuristic to
the epoch's `logs`: `zero_shot_<heuristic>`. The trainer's `HistoryLog` and TensorBoard
run after user callbacks, so the scores land in `history.jsonl` and in the TensorBoard
logs: the curve of Figure 2 right without keeping checkpoints.

Example:

```python
probes = ZeroShotProbes(GPT1Tokenizer(), [("sst2", "glue_data/SST-2"),
                                          ("cola", "glue_data/CoLA")],
                        enabled=distribution.is_chief)
train(build_model, train_fn, config, val_dataset_fn=val_fn,
      distribution=distribution, callbacks=[probes])
```
"""

import collections.abc
import time

import keras
from absl import logging

from gpt1_keras.errors import ConfigError
from gpt1_keras.errors import UserError
from gpt1_keras.evaluation import zero_shot

LOG_PREFIX = "zero_shot_"


class ZeroShotProbes(keras.callbacks.Callback):
    """Scores zero-shot heuristics on `self.model` (a `GPT1CausalLM`) at epoch ends.

    The task files are read (and checked) once, here; each scoring pass runs the
    model eagerly in inference mode (`GPT1CausalLM.score`, any backend).

    Args:
        tokenizer: e.g. `GPT1Tokenizer()` (called on lists of strings).
        probes: `(heuristic, data_dir)` pairs, or a `{heuristic: data_dir}` dict;
            each heuristic one of `zero_shot.HEURISTICS` (`cola`, `sst2`, `race`,
            `story_cloze`, `winograd`), at most once. `data_dir` holds the task's
            files as for `evaluate_zero_shot`.
        split: the labelled split scored (`cola` fits its threshold on `train`).
        max_examples: the first N examples of each split (0: all).
        batch_size: sequences per forward pass.
        every: score every this many epochs (epoch `e` is scored when
            `(e + 1) % every == 0`; the trainer numbers epochs from step 0, so
            a resumed run scores at the same steps).
        enabled: `False` makes the callback do nothing at epoch ends (pass
            `distribution.is_chief`: only the chief scores). The files are still
            read and checked, so a bad probe fails on every worker alike.

    Logs:
        `zero_shot_<heuristic>` (float): Matthews correlation for `cola`, accuracy
        for the others (`zero_shot.ZeroShotData.main_metric`). Added to the epoch's
        `logs` dict in place; one info line per scored epoch lists them.

    Raises:
        ConfigError: an unknown or repeated heuristic, a missing data folder or
            split file, a split without labels, or a bad `every` / `max_examples` /
            `batch_size` (one line naming the heuristic and the file).
        DataError: a malformed task file (naming it and the line).
    """

    def __init__(self, tokenizer, probes, split="dev", max_examples=200, batch_size=32,
                 every=1, enabled=True):
        super().__init__()
        for name, value, low in (("every", every, 1), ("batch_size", batch_size, 1),
                                 ("max_examples", max_examples, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(
                    f"ZeroShotProbes: `{name}` must be an integer >= {low}. "
                    f"Received: {name}={value!r}")
        if isinstance(probes, collections.abc.Mapping):
            probes = list(probes.items())
        else:
            probes = [tuple(p) for p in probes]
        if not probes:
            raise ConfigError("ZeroShotProbes: `probes` is empty; give at least one "
                              "(heuristic, data_dir) pair.")
        self.tokenizer = tokenizer
        self.split = split
        self.batch_size = batch_size
        self.every = every
        self.enabled = bool(enabled)
        self.data = {}
        for probe in probes:
            if len(probe) != 2:
                raise ConfigError(
                    f"ZeroShotProbes: each probe is a (heuristic, data_dir) pair. "
                    f"Received: {probe!r}")
            heuristic, data_dir = probe
            if heuristic not in zero_shot.HEURISTICS:
                raise ConfigError(
                    f"ZeroShotProbes: unknown heuristic {heuristic!r} (data dir "
                    f"{data_dir}); known: {', '.join(zero_shot.HEURISTICS)}.")
            if heuristic in self.data:
                raise ConfigError(
                    f"ZeroShotProbes: heuristic {heuristic!r} is given twice; its log "
                    f"entry {LOG_PREFIX}{heuristic} can hold one score.")
            self.data[heuristic] = _read(heuristic, data_dir, split, max_examples)

    @property
    def log_keys(self):
        """The `logs` entries a scored epoch adds, in probe order."""
        return [LOG_PREFIX + h for h in self.data]

    def scores(self, model=None):
        """`{zero_shot_<heuristic>: main metric}` of `model` (default: `self.model`)."""
        model = model if model is not None else self.model
        out = {}
        for heuristic, data in self.data.items():
            result = zero_shot.score_zero_shot(model, self.tokenizer, data, self.batch_size)
            out[LOG_PREFIX + heuristic] = float(result[data.main_metric])
        return out

    def on_epoch_end(self, epoch, logs=None):
        if not self.enabled or (epoch + 1) % self.every:
            return
        start = time.perf_counter()
        scores = self.scores()
        if logs is not None:
            logs.update(scores)
        optimizer = getattr(self.model, "optimizer", None)
        where = f"epoch {epoch + 1}"
        if optimizer is not None:
            where += f" (step {int(keras.ops.convert_to_numpy(optimizer.iterations))})"
        logging.info(
            "Zero-shot probes at %s, %s split: %s (%.1fs).", where, self.split,
            ", ".join(f"{h} {data.main_metric} {scores[LOG_PREFIX + h]:.4f}"
                      for h, data in self.data.items()),
            time.perf_counter() - start)


def _read(heuristic, data_dir, split, max_examples):
    """`zero_shot.read_zero_shot`, its missing files / bad split as one-line ConfigErrors."""
    where = f"ZeroShotProbes: heuristic {heuristic!r}, split {split!r}"
    try:
        data = zero_shot.read_zero_shot(heuristic, data_dir, split, max_examples)
    except FileNotFoundError as e:
        raise ConfigError(f"{where}: {e}") from None
    except UserError:
        raise  # A malformed file (DataError): already one line naming it.
    except ValueError as e:  # A split the task does not have.
        raise ConfigError(f"{where} ({data_dir}): {e}") from None
    if data.examples.labels is None:
        raise ConfigError(
            f"{where}: {data.examples.source} has no labels to score; use a labelled "
            "split (e.g. dev).")
    return data

