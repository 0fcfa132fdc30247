"""What every task reader returns (`Examples`) and how readers report bad files."""

import dataclasses
import os

from gpt1_keras.errors import UserError


class DataError(UserError, ValueError):
    """A task file that cannot be read as its format says; the message names the
    file and, where there is one, the line (1-based, counting the header)."""


def at(path, line=None):
    """`"path"` or `"path:line"` for error messages."""
    return f"{path}:{line}" if line is not None else str(path)


@dataclasses.dataclass
class Examples:
    """One split of a task, column by column.

    Attributes:
        text_a: the text, premise, first sentence or multiple-choice context.
        text_b: the hypothesis / second sentence (`str` each), the choices
            (`list[str]` each, multiple choice), or `None` (single text).
        labels: class indices into the task's label list (int), scores
            (float, regression), or `None` for an unlabelled (test) split.
        ids: each example's id as written in its file (used in prediction
            files).
        question: multiple choice only: the question, written after the context.
        source: the file(s) the examples came from.
    """

    text_a: list
    text_b: list | None
    labels: list | None
    ids: list
    question: list | None = None
    source: str = ""

    def __len__(self):
        return len(self.text_a)

    def columns(self):
        """The `make_task_dataset` tuple (labels filled with 0 when absent)."""
        labels = self.labels if self.labels is not None else [0] * len(self)
        if self.text_b is None:
            return (self.text_a, labels)
        if self.question is not None:
            return (self.text_a, self.question, self.text_b, labels)
        return (self.text_a, self.text_b, labels)

    def inputs(self):
        """The raw `x` of a `GPT1ClassifierPreprocessor` for these examples."""
        if self.text_b is None:
            return self.text_a
        if self.question is not None:
            return (self.text_a, self.question, self.text_b)
        return (self.text_a, self.text_b)

    def take(self, n):
        """The first `n` examples."""
        def cut(column):
            return None if column is None else column[:n]
        return Examples(cut(self.text_a), cut(self.text_b), cut(self.labels),
                        cut(self.ids), cut(self.question), self.source)


def require_files(task, data_dir, names):
    """Absolute paths of `names` under `data_dir`; raises if any is missing.

    Raises:
        FileNotFoundError: naming the task, every file looked for, and which
            are missing.
    """
    paths = [os.path.join(data_dir, n) for n in names]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(
            f"Task {task!r}: looked for {', '.join(paths)}; missing: "
            f"{', '.join(missing)}."
        )
    return paths


def check_not_empty(examples, path):
    if not len(examples):
        raise DataError(f"{at(path)}: no examples (an empty split).")
    return examples


def label_index(labels, value, path, line, field):
    """The index of `value` in the label list, or a `DataError` naming it."""
    try:
        return labels.index(value)
    except ValueError:
        raise DataError(
            f"{at(path, line)}: {field} {value!r} is not one of {list(labels)}."
        ) from None
