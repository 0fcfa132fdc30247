"""The paper's fine-tuning tasks: files, readers, label lists and metrics.

`get_task(name)` returns a `TaskSpec`; `TaskSpec.read(data_dir, split)`
returns `Examples`. `data_dir` is the task's own folder (e.g. `glue_data/MRPC`,
`snli_1.0`, `SciTailV1.1/snli_format`, `RACE`, the Story Cloze folder).

| task | head | files | metric(s) |
| --- | --- | --- | --- |
| cola | classification | train/dev.tsv (no header), test.tsv | Matthews corr. |
| sst2 | classification | train/dev/test.tsv | accuracy |
| mrpc, qqp | similarity (2 classes) | train/dev/test.tsv | F1, accuracy |
| stsb | similarity (regression) | train/dev/test.tsv | Pearson, Spearman |
| mnli | entailment (3) | train, dev_(mis)matched, test_(mis)matched .tsv | accuracy |
| qnli, rte, wnli | entailment (2) | train/dev/test.tsv | accuracy |
| snli | entailment (3) | snli_1.0_{train,dev,test}.jsonl | accuracy |
| scitail | entailment (2) | scitail_1.0_{train,dev,test}.txt (JSONL) | accuracy |
| race | multiple choice (4) | {train,dev,test}/{middle,high}/*.txt | accuracy (test: all, middle, high) |
| story_cloze | multiple choice (2) | the spring 2016 val (train+dev) and test CSVs | accuracy |

Every reader drops a leading UTF-8 byte-order mark. A folder holding only the
training file (GLUE's dev splits are often not at hand) is used with a seeded
held-out split: `gpt1_keras.tasks.splits.read_train_and_holdout`. Another
folder holding the official labelled files (`dev.tsv`, the Story Cloze test
CSV) is scored through the same `TaskSpec.read`; `TaskSpec.present_eval_splits`
says which of them a folder has.
"""

import dataclasses
import functools
import os

from gpt1_keras.tasks import glue
from gpt1_keras.tasks import jsonl
from gpt1_keras.tasks import race
from gpt1_keras.tasks import story_cloze
from gpt1_keras.tasks.base import locate
from gpt1_keras.tasks.base import require_files
from gpt1_keras.tasks.csv_task import read_csv_examples


@dataclasses.dataclass(frozen=True)
class Split:
    """One split of a task.

    Attributes:
        name: `"train"`, `"dev"`, `"dev_matched"`, `"test"`, ...
        files: the files (relative to `data_dir`) it is read from; for RACE
            the folders. An entry may be a tuple of alternative names of one
            file (the first present is read).
        reader: `fn(*paths)` (or `fn(data_dir)` for folders) -> `Examples`.
        labelled: whether the split has labels (GLUE test splits do not).
        submission: the prediction file name (GLUE's, e.g. `MNLI-m.tsv`).
        folders: `files` are folders (checked by the reader itself).
    """

    name: str
    files: tuple
    reader: object
    labelled: bool = True
    submission: str | None = None
    folders: bool = False


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A fine-tuning task.

    Attributes:
        name: the `--task` name.
        head: the model's head type, `GPT1Classifier(head=...)` and
            `GPT1ClassifierPreprocessor(head=...)` (`"classification"`,
            `"entailment"`, `"similarity"` or `"multiple_choice"`); "task"
            is the dataset itself.
        labels: the label strings, class index = position (the answer names
            for multiple choice); `None` for regression.
        metrics: metric names (`gpt1_keras.tasks.metrics`), the first is the
            paper's.
        splits: every `Split`, the training split first.
    """

    name: str
    head: str
    labels: tuple | None
    metrics: tuple
    splits: tuple

    @property
    def model_task(self):
        """Deprecated name of `head`."""
        return self.head

    @property
    def regression(self):
        return self.labels is None

    @property
    def num_classes(self):
        """`GPT1Classifier`'s `num_classes` (None for multiple choice, 1 for regression)."""
        if self.head == "multiple_choice":
            return None
        return 1 if self.regression else len(self.labels)

    @property
    def eval_splits(self):
        """The splits after the first that have labels (dev, labelled test)."""
        return tuple(s for s in self.splits[1:] if s.labelled)

    def split(self, name):
        for s in self.splits:
            if s.name == name:
                return s
        raise ValueError(
            f"Task {self.name!r} has no split {name!r}; it has "
            f"{[s.name for s in self.splits]}."
        )

    def files(self, data_dir, split):
        """The paths a split is read from (of alternative names, the first present)."""
        return [locate(data_dir, f)[0] for f in self.split(split).files]

    def has_split(self, data_dir, split):
        """Whether `data_dir` holds every file (or folder) of `split`."""
        return all(os.path.exists(p) for p in self.files(data_dir, split))

    def present_eval_splits(self, data_dir):
        """The labelled evaluation splits (`eval_splits`) whose files are in `data_dir`.

        A GLUE folder holding only `train.tsv` has none; one holding the official
        `dev.tsv` has `dev`. Use it to score a run on another labelled folder.
        """
        return tuple(s for s in self.eval_splits if self.has_split(data_dir, s.name))

    def read(self, data_dir, split):
        """Reads a split; a missing file raises `FileNotFoundError` naming it."""
        s = self.split(split)
        if s.folders:
            return s.reader(data_dir)
        return s.reader(*require_files(self.name, data_dir, s.files))

    def format_prediction(self, prediction):
        """A prediction as written in a submission file: the label string, or the score."""
        if self.regression:
            return f"{float(prediction):.6f}"
        return self.labels[int(prediction)]


def _glue(name, labels, metrics, text_a, text_b, label, submission, id_column="index",
          test_id_column="index", train="train.tsv", evals=(("dev", "dev.tsv"),),
          tests=(("test", "test.tsv"),), submissions=None, regression=False,
          skip_malformed=False):
    def reader(labelled, ids):
        return functools.partial(
            glue.read_glue, text_a=text_a, text_b=text_b,
            label=label if labelled else None, labels=labels, id_column=ids,
            regression=regression, skip_malformed=skip_malformed)

    submissions = submissions or (submission,)
    splits = [Split("train", (train,), reader(True, id_column))]
    splits += [Split(n, (f,), reader(True, id_column)) for n, f in evals]
    splits += [Split(n, (f,), reader(False, test_id_column), labelled=False, submission=s)
               for (n, f), s in zip(tests, submissions)]
    return TaskSpec(name, "similarity" if name in ("mrpc", "qqp", "stsb") else (
        "classification" if text_b is None else "entailment"),
        None if regression else labels, metrics, tuple(splits))


def _cola():
    # train/dev: source, label, original judgement, sentence; no header.
    labelled = functools.partial(glue.read_glue, text_a=3, text_b=None, label=1,
                                 labels=("0", "1"), has_header=False, num_fields=4)
    test = functools.partial(glue.read_glue, text_a="sentence", text_b=None, label=None,
                             labels=("0", "1"), id_column="index")
    return TaskSpec("cola", "classification", ("0", "1"),
                    ("matthews_corrcoef", "accuracy"), (
                        Split("train", ("train.tsv",), labelled),
                        Split("dev", ("dev.tsv",), labelled),
                        Split("test", ("test.tsv",), test, labelled=False,
                              submission="CoLA.tsv"),
                    ))


def _nli_jsonl(name, prefix, extension, labels):
    reader = functools.partial(jsonl.read_nli_jsonl, labels=labels)
    return TaskSpec(name, "entailment", labels, ("accuracy",), tuple(
        Split(s, (f"{prefix}_{s}.{extension}",), reader,
              submission=f"{name}.tsv" if s == "test" else None)
        for s in ("train", "dev", "test")))


def _race():
    def split(name, levels=race.LEVELS, submission=None):
        return Split(name, tuple(f"{name.split('_')[0]}/{lv}" for lv in levels),
                     lambda d: race.read_race(d, name.split("_")[0], levels),
                     submission=submission, folders=True)
    return TaskSpec("race", "multiple_choice", race.ANSWERS, ("accuracy",), (
        split("train"), split("dev"), split("test", submission="race.tsv"),
        split("test_middle", ("middle",)), split("test_high", ("high",)),
    ))


def _story_cloze():
    # The authors' download names, then the short names many copies use.
    val = (story_cloze.VAL_FILE, story_cloze.VAL_FILE_SHORT)
    test = (story_cloze.TEST_FILE, story_cloze.TEST_FILE_SHORT)
    read = story_cloze.read_story_cloze
    return TaskSpec("story_cloze", "multiple_choice", story_cloze.ENDINGS, ("accuracy",), (
        Split("train", (val,), functools.partial(read, part="train")),
        Split("dev", (val,), functools.partial(read, part="dev")),
        Split("test", (test,), read, submission="story_cloze.tsv"),
    ))


_NLI = ("entailment", "not_entailment")
_MNLI = ("contradiction", "entailment", "neutral")

TASKS = {
    "cola": _cola(),
    "sst2": _glue("sst2", ("0", "1"), ("accuracy",), "sentence", None, "label",
                  "SST-2.tsv", id_column=None),
    "mrpc": _glue("mrpc", ("0", "1"), ("f1", "accuracy"), "#1 String", "#2 String",
                  "Quality", "MRPC.tsv", id_column=None),
    "qqp": _glue("qqp", ("0", "1"), ("f1", "accuracy"), "question1", "question2",
                 "is_duplicate", "QQP.tsv", id_column="id", test_id_column="id",
                 skip_malformed=True),
    "stsb": _glue("stsb", None, ("pearson", "spearman"), "sentence1", "sentence2",
                  "score", "STS-B.tsv", regression=True),
    "mnli": _glue("mnli", _MNLI, ("accuracy",), "sentence1", "sentence2", "gold_label",
                  None, evals=(("dev_matched", "dev_matched.tsv"),
                               ("dev_mismatched", "dev_mismatched.tsv")),
                  tests=(("test_matched", "test_matched.tsv"),
                         ("test_mismatched", "test_mismatched.tsv")),
                  submissions=("MNLI-m.tsv", "MNLI-mm.tsv")),
    "qnli": _glue("qnli", _NLI, ("accuracy",), "question", "sentence", "label", "QNLI.tsv"),
    "rte": _glue("rte", _NLI, ("accuracy",), "sentence1", "sentence2", "label", "RTE.tsv"),
    # WNLI: sentence-pair entailment, labels 0 (not entailed) / 1 (entailed).
    "wnli": _glue("wnli", ("0", "1"), ("accuracy",), "sentence1", "sentence2", "label",
                  "WNLI.tsv"),
    "snli": _nli_jsonl("snli", "snli_1.0", "jsonl", ("entailment", "neutral", "contradiction")),
    "scitail": _nli_jsonl("scitail", "scitail_1.0", "txt", ("entails", "neutral")),
    "race": _race(),
    "story_cloze": _story_cloze(),
}


def csv_task(text_columns, label_column, labels, head=None, delimiter=",",
             train="train.csv", dev="dev.csv", test="test.csv", metrics=("accuracy",)):
    """A `TaskSpec` for user CSV files (`--task=csv`).

    Args:
        text_columns: one text column (classification) or two (entailment by
            default; `head="similarity"` for symmetric pairs).
        label_column: the label column.
        labels: the label strings (class index = position).
        head: overrides the head type chosen from the column count.
        delimiter: the field separator (`"\\t"` for TSV).
        train, dev, test: file names under `data_dir` (`test` may lack labels
            and may be absent).
        metrics: metric names.
    """
    text_columns = tuple(text_columns)
    head = head or ("classification" if len(text_columns) == 1 else "entailment")
    if (head == "classification") != (len(text_columns) == 1):
        raise ValueError(
            f"head={head!r} does not fit {len(text_columns)} text column(s) "
            f"{list(text_columns)}."
        )
    if len(labels) < 2:
        raise ValueError(f"A CSV task needs at least 2 labels. Received: labels={labels}")

    def reader(require_labels):
        return functools.partial(
            read_csv_examples, text_columns=text_columns, label_column=label_column,
            labels=tuple(labels), delimiter=delimiter, require_labels=require_labels)

    return TaskSpec("csv", head, tuple(labels), tuple(metrics), (
        Split("train", (train,), reader(True)),
        Split("dev", (dev,), reader(True)),
        Split("test", (test,), reader(False), labelled=False, submission="csv.tsv"),
    ))


def get_task(name):
    """The `TaskSpec` of a paper task by name (see `TASKS`)."""
    if name not in TASKS:
        raise ValueError(
            f"Unknown task {name!r}. Known tasks: {', '.join(sorted(TASKS))} "
            "(or 'csv' with its column flags)."
        )
    return TASKS[name]
