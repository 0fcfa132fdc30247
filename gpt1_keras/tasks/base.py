"""What every task reader returns (`Examples`) and how readers report bad files.

Every reader reads its files through `iter_lines` / `csv_rows`: UTF-8, with a leading
byte-order mark dropped (GLUE's MRPC files start with one), so it never becomes part of
the first header name or field.
"""

import codecs
import csv
import dataclasses
import os
import sys

from gpt1_keras.errors import UserError

csv.field_size_limit(sys.maxsize)


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

    def select(self, indices, source=None):
        """The examples at `indices` (in that order); `source` replaces the source."""
        indices = list(indices)

        def pick(column):
            return None if column is None else [column[i] for i in indices]
        return Examples(pick(self.text_a), pick(self.text_b), pick(self.labels),
                        pick(self.ids), pick(self.question),
                        self.source if source is None else source)

    def input_key(self, i):
        """Example `i`'s inputs as a hashable value: equal for identical inputs."""
        def value(column):
            if column is None:
                return None
            v = column[i]
            return tuple(v) if isinstance(v, list) else v
        return (self.text_a[i], value(self.text_b), value(self.question))


def _decode(path, line, raw):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{at(path, line)}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at column "
            f"{e.start + 1}: {e.reason})."
        ) from None


def read_text(path):
    """The whole text of a task file (UTF-8, a leading BOM dropped).

    Raises:
        DataError: bytes that are not UTF-8, naming the file and the line.
    """
    return "".join(iter_lines(path))


def iter_lines(path):
    """The lines of a task file, decoded one by one, line ends kept.

    UTF-8; a byte-order mark at the start of the file is dropped. Lines end at
    `\n` (a `\r` before it stays, for the `csv` module to take as part of the
    line end).

    Raises:
        DataError: a line that is not UTF-8, naming the file, the line and the byte.
    """
    with open(path, "rb") as f:
        for line, raw in enumerate(f, start=1):
            if line == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            yield _decode(path, line, raw)


def csv_rows(path, **reader_args):
    """`(line, fields)` for each row of a CSV / TSV task file (see `iter_lines`).

    `line` is the 1-based line the row starts on (a quoted field may span
    lines). Blank lines are skipped.

    Raises:
        DataError: a line that is not UTF-8 (file and line).
    """
    reader = csv.reader(iter_lines(path), **reader_args)
    start = 1
    for row in reader:
        if row:
            yield start, row
        start = reader.line_num + 1


def read_header(rows, path, columns):
    """Takes the header row off `rows` (from `csv_rows`); returns `(header, index)`.

    Args:
        rows: the `(line, fields)` iterator of the file.
        path: the file, for messages.
        columns: the column names the reader needs.

    Returns:
        The header's fields and `{column: its position}` for `columns`.

    Raises:
        DataError: an empty file, or a header lacking one of `columns` (file, line).
    """
    header_line, header = next(rows, (1, None))
    if header is None:
        raise DataError(f"{at(path)}: empty file; expected a header with {list(columns)}.")
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(
            f"{at(path, header_line)}: the header lacks column(s) {missing}. Found: {header}."
        )
    return header, {c: header.index(c) for c in columns}


def locate(data_dir, name):
    """`(path, missing)`: `name` under `data_dir`, and `None` or what was looked for.

    A tuple of names is alternatives: the first present wins; if none is, the
    first is returned with `missing` listing them all.
    """
    names = (name,) if isinstance(name, str) else tuple(name)
    paths = [os.path.join(data_dir, n) for n in names]
    for path in paths:
        if os.path.exists(path):
            return path, None
    return paths[0], " or ".join(paths)


def require_files(task, data_dir, names):
    """Absolute paths of `names` under `data_dir`; raises if any is missing.

    Args:
        task: the task's name, for the message.
        data_dir: the folder.
        names: file names; an entry may be a tuple of alternative names (the
            same file as different distributions name it), of which the first
            present is used.

    Raises:
        FileNotFoundError: naming the task, every file looked for, and which
            are missing.
    """
    resolved = [locate(data_dir, n) for n in names]
    missing = [m for _, m in resolved if m]
    if missing:
        looked = ", ".join(m or p for p, m in resolved)
        raise FileNotFoundError(
            f"Task {task!r}: looked for {looked} in {data_dir}; missing: "
            f"{', '.join(missing)}."
        )
    return [p for p, _ in resolved]


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
