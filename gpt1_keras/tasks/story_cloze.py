"""Story Cloze Test reader (ROCStories spring 2016 CSV files).

Columns: `InputStoryid`, `InputSentence1`..`InputSentence4`,
`RandomFifthSentenceQuiz1`, `RandomFifthSentenceQuiz2`, `AnswerRightEnding`
(1 or 2). As in GPT-1, the validation file is the training data (a fifth of
it held out as `dev`: rows 0, 5, 10, ...) and the test file is the test set.
Each file is found under the authors' download name or the short name many
copies use (`cloze_test_val__spring2016.csv`).
"""

from gpt1_keras.tasks.base import DataError
from gpt1_keras.tasks.base import Examples
from gpt1_keras.tasks.base import at
from gpt1_keras.tasks.base import check_not_empty
from gpt1_keras.tasks.base import csv_rows
from gpt1_keras.tasks.base import label_index
from gpt1_keras.tasks.base import read_header

VAL_FILE = "cloze_test_val__spring2016 - cloze_test_ALL_val.csv"
TEST_FILE = "cloze_test_test__spring2016 - cloze_test_ALL_test.csv"
# The names many copies of the same files use (`../shared/data/story_cloze` has this one).
VAL_FILE_SHORT = "cloze_test_val__spring2016.csv"
TEST_FILE_SHORT = "cloze_test_test__spring2016.csv"
ENDINGS = ("1", "2")
COLUMNS = (
    "InputStoryid", "InputSentence1", "InputSentence2", "InputSentence3",
    "InputSentence4", "RandomFifthSentenceQuiz1", "RandomFifthSentenceQuiz2",
    "AnswerRightEnding",
)
DEV_EVERY = 5


def read_story_cloze(path, part="all"):
    """A Story Cloze CSV as multiple-choice `Examples` (2 endings).

    Args:
        path: the CSV file.
        part: `"all"`, or for the validation file `"train"` (rows not held
            out) or `"dev"` (every `DEV_EVERY`-th row, from the first).

    Raises:
        DataError: a header lacking a column, a row with a different number
            of fields, or an `AnswerRightEnding` other than 1/2 (file, line).
    """
    rows = csv_rows(path)
    header, index = read_header(rows, path, COLUMNS)
    context, choices, labels, ids = [], [], [], []
    story = -1
    for line, row in rows:
        if len(row) != len(header):
            raise DataError(
                f"{at(path, line)}: expected {len(header)} comma-separated fields, "
                f"found {len(row)}."
            )
        story += 1
        held_out = story % DEV_EVERY == 0
        if (part == "train" and held_out) or (part == "dev" and not held_out):
            continue
        r = {c: row[i] for c, i in index.items()}
        context.append(" ".join(r[f"InputSentence{k}"] for k in range(1, 5)))
        choices.append([r["RandomFifthSentenceQuiz1"], r["RandomFifthSentenceQuiz2"]])
        labels.append(label_index(ENDINGS, r["AnswerRightEnding"].strip(), path, line,
                                  "AnswerRightEnding"))
        ids.append(r["InputStoryid"])
    return check_not_empty(Examples(context, choices, labels, ids, source=str(path)), path)
