"""GLUE TSV readers: CoLA, SST-2, MRPC, QQP, STS-B, MNLI, QNLI, RTE, WNLI.

Written here with the `csv` module (tab-separated, no quoting, as GLUE's files
are and as tf-models-official's `*Processor`s read them); tf-models-official
itself is not a dependency (its `seqeval` requirement does not build under the
pinned setuptools). Columns are found by header name, so a file whose header
lacks a needed column is refused with the columns it has. CoLA's train/dev
files have no header (source, label, original label, sentence).

MNLI keeps GPT-1's order: premise (`sentence1`) first, hypothesis
(`sentence2`) second (tf-models-official's `MnliProcessor` swaps them;
docs/model.md, choice 8).
"""

import csv

from absl import logging

from gpt1_keras.tasks.base import DataError
from gpt1_keras.tasks.base import Examples
from gpt1_keras.tasks.base import at
from gpt1_keras.tasks.base import check_not_empty
from gpt1_keras.tasks.base import csv_rows
from gpt1_keras.tasks.base import label_index
from gpt1_keras.tasks.base import read_header


def read_tsv(path, columns, has_header=True, num_fields=None, skip_malformed=False):
    """Rows of a GLUE TSV as `(line_number, {column: value})`.

    The file is UTF-8; a leading byte-order mark (GLUE's MRPC files have one)
    is dropped, and `\r\n` line ends (SST-2's) are line ends, not text.

    Args:
        path: the file.
        columns: the columns to return. With a header, their names; without,
            `{name: index}`.
        has_header: whether line 1 names the columns.
        num_fields: without a header, the number of fields every row must have.
        skip_malformed: skip (and log) rows with the wrong number of fields
            instead of raising; GLUE's QQP files hold a few such rows, which
            tf-models-official's `QqpProcessor` skips too.

    Raises:
        DataError: a missing header column, a row with a different number of
            fields than the header, or a non-UTF-8 line; naming file and line.
    """
    rows = csv_rows(path, delimiter="\t", quoting=csv.QUOTE_NONE)
    if has_header:
        header, index = read_header(rows, path, columns)
        num_fields = len(header)
    else:
        index = dict(columns)
    out = []
    for line, row in rows:
        if len(row) != num_fields:
            if skip_malformed:
                logging.warning("%s: skipping a row of %d fields (expected %d).",
                                at(path, line), len(row), num_fields)
                continue
            raise DataError(
                f"{at(path, line)}: expected {num_fields} tab-separated fields, "
                f"found {len(row)}."
            )
        out.append((line, {c: row[i] for c, i in index.items()}))
    return out


def read_glue(path, text_a, text_b, label, labels, id_column=None,
              has_header=True, num_fields=None, regression=False, skip_malformed=False):
    """One GLUE split as `Examples`.

    Args:
        path: the TSV file.
        text_a, text_b: the text columns (`text_b=None` for single texts).
        label: the label column, or `None` for an unlabelled (test) split.
        labels: the label list (class index = position), unused for regression.
        id_column: the id column (default: the row number from 0).
        has_header, num_fields: see `read_tsv` (headerless: columns are indices).
        regression: float labels (STS-B).
        skip_malformed: see `read_tsv`.
    """
    wanted = [c for c in (text_a, text_b, label, id_column) if c is not None]
    columns = wanted if has_header else {c: c for c in wanted}
    rows = read_tsv(path, columns, has_header, num_fields, skip_malformed)
    a, b, y, ids = [], [], [], []
    for i, (line, row) in enumerate(rows):
        a.append(row[text_a])
        if text_b is not None:
            b.append(row[text_b])
        ids.append(row[id_column] if id_column is not None else str(i))
        if label is None:
            continue
        value = row[label]
        if regression:
            try:
                y.append(float(value))
            except ValueError:
                raise DataError(
                    f"{at(path, line)}: label {value!r} in column {label!r} is not a number."
                ) from None
        else:
            y.append(label_index(labels, value, path, line, f"label (column {label!r})"))
    examples = Examples(a, b if text_b is not None else None,
                        y if label is not None else None, ids, source=str(path))
    return check_not_empty(examples, path)
