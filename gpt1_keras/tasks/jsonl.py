"""SNLI and SciTail readers: one JSON object per line (`snli_format`).

Fields used: `sentence1` (premise), `sentence2` (hypothesis), `gold_label`,
and `pairID` when present. SNLI pairs without annotator consensus
(`gold_label == "-"`) are skipped, as is standard.
"""

import json

from gpt1_keras.tasks.base import DataError
from gpt1_keras.tasks.base import Examples
from gpt1_keras.tasks.base import at
from gpt1_keras.tasks.base import check_not_empty
from gpt1_keras.tasks.base import label_index
from gpt1_keras.tasks.base import iter_lines


def _records(path, fields):
    """Yields `(line, record)` for each non-blank line of a JSONL file.

    Raises:
        DataError: a line that is not a JSON object, or one missing a field of
            `fields` (naming file and line).
    """
    for line, text in enumerate(iter_lines(path), start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{at(path, line)}: not valid JSON ({e.msg}).") from None
        if not isinstance(record, dict):
            raise DataError(f"{at(path, line)}: expected a JSON object.")
        for field in fields:
            if field not in record:
                raise DataError(f"{at(path, line)}: missing field {field!r}.")
        yield line, record


def read_nli_jsonl(path, labels, skip_labels=("-",)):
    """A `{"sentence1", "sentence2", "gold_label"}` JSONL file as `Examples`.

    Raises:
        DataError: a line that is not a JSON object, a missing field, or a
            label outside `labels` (naming file and line).
    """
    a, b, y, ids = [], [], [], []
    for line, record in _records(path, ("sentence1", "sentence2", "gold_label")):
        if record["gold_label"] in skip_labels:
            continue
        y.append(label_index(labels, record["gold_label"], path, line, "gold_label"))
        a.append(record["sentence1"])
        b.append(record["sentence2"])
        ids.append(str(record.get("pairID", len(ids))))
    return check_not_empty(Examples(a, b, y, ids, source=str(path)), path)


def read_winograd_jsonl(path):
    """Winograd-style schemas, WinoGrande's JSONL layout: `sentence` with one `_`
    blank, `option1`, `option2`, `answer` (`"1"`/`"2"`; absent or empty for
    unlabelled data). Returns `Examples` with the sentence as `text_a` and
    the two options as `text_b` (choices).

    Raises:
        DataError: bad JSON, a missing field, a sentence without exactly one
            `_`, or an answer other than 1/2 (file and line).
    """
    sentences, options, labels, ids = [], [], [], []
    for line, record in _records(path, ("sentence", "option1", "option2")):
        if record["sentence"].count("_") != 1:
            raise DataError(f"{at(path, line)}: `sentence` needs exactly one '_' blank.")
        sentences.append(record["sentence"])
        options.append([record["option1"], record["option2"]])
        labels.append(label_index(("1", "2"), str(record.get("answer", "")), path, line,
                                  "answer"))
        ids.append(str(record.get("qID", len(ids))))
    return check_not_empty(Examples(sentences, options, labels, ids, source=str(path)), path)
