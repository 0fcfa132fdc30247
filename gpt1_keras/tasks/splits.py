"""Seeded held-out validation splits of a task's training examples.

GLUE's dev splits (and the Story Cloze test set) are often not at hand: then a
task folder holding only its training file is fine-tuned on part of it and
validated on the rest. The split is a pure function of the examples, the size
and the seed (Python's `random.Random`, stable across platforms and versions),
so a run can be reproduced from its config alone:

    from gpt1_keras.tasks import get_task
    from gpt1_keras.tasks.splits import read_train_and_holdout

    train, validation = read_train_and_holdout(get_task("rte"), "glue/RTE", 0.1, seed=0)

Identical inputs (the same sentence, or the same pair) are kept on the same
side, so no validation example is also a training example (SST-2's training
file repeats a few hundred phrases).
"""

import random


def _holdout_size(holdout, total):
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)):
        raise ValueError(
            f"`holdout` must be a fraction in (0, 1) or a count of examples. "
            f"Received: holdout={holdout!r}"
        )
    if isinstance(holdout, float):
        if not 0.0 < holdout < 1.0:
            raise ValueError(
                f"A `holdout` fraction must be in (0, 1). Received: holdout={holdout}"
            )
        size = round(holdout * total)
    else:
        size = holdout
    if not 0 < size < total:
        raise ValueError(
            f"`holdout` must leave at least one example on each side of {total} "
            f"examples. Received: holdout={holdout!r} ({size} examples)"
        )
    return size


def holdout_split(examples, holdout, seed=0):
    """Splits `examples` into `(train, validation)`, seeded and disjoint.

    Args:
        examples: an `Examples` (a task's training split).
        holdout: the validation size: a fraction in (0, 1) of the examples
            (`0.1`), or a number of examples (`500`, an `int`).
        seed: the seed of the shuffle that picks the validation examples.

    Returns:
        `(train, validation)`, two `Examples` that together hold every
        example once, each in the file's order. Groups of identical inputs are
        never split across the two, so the validation size is the requested
        one except when that needs splitting such a group: then it is the
        largest size below it. `source` names the file, the part, the size
        and the seed (`"train.tsv [held-out part; 249 of 2490 held out with seed 0]"`).

    Raises:
        ValueError: a `holdout` that is not a fraction in (0, 1) or a count
            leaving at least one example on each side.
    """
    total = len(examples)
    size = _holdout_size(holdout, total)
    groups = {}
    for i in range(total):
        groups.setdefault(examples.input_key(i), []).append(i)
    order = list(groups.values())  # first-occurrence order: independent of hashing
    random.Random(seed).shuffle(order)
    chosen = []
    for group in order:
        if len(chosen) + len(group) <= size:
            chosen.extend(group)
            if len(chosen) == size:
                break
    held = set(chosen)
    validation_ids = sorted(held)
    train_ids = [i for i in range(total) if i not in held]
    note = f"{len(validation_ids)} of {total} held out with seed {seed}"
    return (
        examples.select(train_ids, f"{examples.source} [training part; {note}]"),
        examples.select(validation_ids, f"{examples.source} [held-out part; {note}]"),
    )


def read_train_and_holdout(task, data_dir, holdout, seed=0, split="train"):
    """A task's training split read from `data_dir` and held-out-split.

    Only the training split's file(s) need be in `data_dir` (for GLUE,
    `train.tsv`); use this when the official dev split is absent.

    Args:
        task: a `TaskSpec` (`get_task(name)` or `csv_task(...)`).
        data_dir: the task's folder.
        holdout, seed: see `holdout_split`.
        split: the split to divide (default the training split).

    Returns:
        `(train, validation)` `Examples`; see `holdout_split`.

    Raises:
        FileNotFoundError: the split's file is missing (naming it).
        DataError: a malformed file (file and line named).
        ValueError: a bad `holdout`.
    """
    return holdout_split(task.read(data_dir, split), holdout, seed)
