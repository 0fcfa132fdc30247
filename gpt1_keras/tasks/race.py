"""RACE reader: `{split}/{middle,high}/*.txt`, one JSON document per file.

Each file holds `article`, `questions`, `options` (4 per question),
`answers` (`"A"`..`"D"`) and `id`; every question is one example with the
article as context, the question after it, and the 4 options as choices.
"""

import glob
import json
import os

from gpt1_keras.tasks.base import DataError
from gpt1_keras.tasks.base import Examples
from gpt1_keras.tasks.base import check_not_empty
from gpt1_keras.tasks.base import label_index
from gpt1_keras.tasks.base import read_text

ANSWERS = ("A", "B", "C", "D")
LEVELS = ("middle", "high")


def race_files(data_dir, split, levels=LEVELS):
    """The document files of a split, sorted; raises naming the folders looked in."""
    folders = [os.path.join(data_dir, split, level) for level in levels]
    files = sorted(f for d in folders for f in glob.glob(os.path.join(d, "*.txt")))
    if not files:
        raise FileNotFoundError(
            f"Task 'race': looked for *.txt documents in {', '.join(folders)}; "
            "found none."
        )
    return files


def read_race(data_dir, split, levels=LEVELS):
    """All questions of `split` (`train`, `dev`, `test`) for the given levels.

    Raises:
        DataError: a file that is not JSON, lacks a field, has question /
            option / answer lists of different lengths, a question without 4
            options, or an answer outside A-D (naming the file and the field).
    """
    context, questions, choices, labels, ids = [], [], [], [], []
    for path in race_files(data_dir, split, levels):
        try:
            doc = json.loads(read_text(path))
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg}).") from None
        for field in ("article", "questions", "options", "answers"):
            if field not in doc:
                raise DataError(f"{path}: missing field {field!r}.")
        n = len(doc["questions"])
        if len(doc["options"]) != n or len(doc["answers"]) != n:
            raise DataError(
                f"{path}: {n} questions but {len(doc['options'])} option lists and "
                f"{len(doc['answers'])} answers."
            )
        for q in range(n):
            if len(doc["options"][q]) != len(ANSWERS):
                raise DataError(
                    f"{path}: question {q} has {len(doc['options'][q])} options; "
                    f"expected {len(ANSWERS)}."
                )
            labels.append(label_index(ANSWERS, doc["answers"][q], path, None,
                                      f"answers[{q}]"))
            context.append(doc["article"])
            questions.append(doc["questions"][q])
            choices.append(list(doc["options"][q]))
            ids.append(f"{doc.get('id', os.path.basename(path))}-{q}")
    source = os.path.join(data_dir, split)
    return check_not_empty(
        Examples(context, choices, labels, ids, question=questions, source=source),
        source,
    )
