"""Generic CSV reader for user data (`--task=csv`).

A header row names the columns; one or two text columns and a label column
are chosen by name. Labels are kept as strings and indexed into a label list
(given, or the sorted distinct labels of the training file).
"""

from gpt1_keras.tasks.base import DataError
from gpt1_keras.tasks.base import Examples
from gpt1_keras.tasks.base import at
from gpt1_keras.tasks.base import check_not_empty
from gpt1_keras.tasks.base import csv_rows
from gpt1_keras.tasks.base import label_index
from gpt1_keras.tasks.base import read_header


def _rows(path, columns, delimiter):
    rows = csv_rows(path, delimiter=delimiter)
    header, index = read_header(rows, path, columns)
    for line, row in rows:
        if len(row) != len(header):
            raise DataError(
                f"{at(path, line)}: expected {len(header)} fields (as the header), "
                f"found {len(row)}."
            )
        yield line, {c: row[i] for c, i in index.items()}


def csv_labels(path, label_column, delimiter=","):
    """The sorted distinct values of `label_column` (the label list of a CSV task)."""
    return sorted({row[label_column] for _, row in _rows(path, [label_column], delimiter)})


def read_csv_examples(path, text_columns, label_column, labels, delimiter=",",
                      id_column=None, require_labels=True):
    """A CSV split as `Examples`.

    Args:
        path: the file.
        text_columns: one or two column names (text, or text pair).
        label_column: the label column's name.
        labels: the label list (class index = position).
        delimiter: the field separator.
        id_column: optional id column (default: the row number from 0).
        require_labels: if False and the file has no `label_column`, the
            examples are unlabelled (a test split).
    """
    if len(text_columns) not in (1, 2):
        raise ValueError(f"One or two text columns are supported. Received: {text_columns}")
    header = next(csv_rows(path, delimiter=delimiter), (1, []))[1]
    has_labels = require_labels or label_column in header
    columns = list(text_columns) + ([label_column] if has_labels else []) + (
        [id_column] if id_column else [])
    a, b, y, ids = [], [], [], []
    for i, (line, row) in enumerate(_rows(path, columns, delimiter)):
        a.append(row[text_columns[0]])
        if len(text_columns) == 2:
            b.append(row[text_columns[1]])
        if has_labels:
            y.append(label_index(labels, row[label_column], path, line,
                                 f"label (column {label_column!r})"))
        ids.append(row[id_column] if id_column else str(i))
    examples = Examples(a, b if len(text_columns) == 2 else None,
                        y if has_labels else None, ids, source=str(path))
    return check_not_empty(examples, path)
