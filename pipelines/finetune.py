r"""Fine-tunes GPT-1 on one of the paper's tasks (or user CSV data) and evaluates it.

Usage:
  bazel run //pipelines:finetune -- --task=rte --data_dir=/data/glue_data/RTE \
      --init_checkpoint=/models/gpt1.keras --output_dir=/runs/rte
  bazel run //pipelines:finetune -- --task=mnli ... --layers_to_transfer=6   # Figure 2 left
  bazel run //pipelines:finetune -- --task=sst2 ... --no_pretraining --preset=gpt1  # Table 5
  bazel run //pipelines:finetune -- --task=csv --data_dir=/data/reviews \
      --text_columns=review --label_column=stars --init_checkpoint=...

Tasks: cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte, snli, scitail, race,
story_cloze, csv (see `gpt1_keras/tasks/registry.py` for the files each reads).
The paper's recipe is the default: lr 6.25e-5, batch 32, 3 epochs, linear decay
with 0.2% warm-up, classifier dropout 0.1, lm_coef 0.5, L2 0.01, clipping 1.

Writes `metrics.json`, `predictions/*.tsv` (GLUE submission format) and
`model.keras` to --output_dir; re-running with the same flags resumes training.
"""

import dataclasses

from absl import app
from absl import flags

FLAGS = flags.FLAGS
_TASKS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "snli",
          "scitail", "race", "story_cloze", "csv")

flags.DEFINE_enum("task", None, _TASKS, "The task.")
flags.DEFINE_string("data_dir", None, "The task's files.")
flags.DEFINE_string("output_dir", None, "Results, checkpoints and the model.")
flags.DEFINE_string("init_checkpoint", None,
                    ".keras GPT1CausalLM/GPT1Backbone (required unless --no_pretraining).")
flags.DEFINE_string("preset", "gpt1", "Architecture without --init_checkpoint.")
flags.DEFINE_bool("no_pretraining", False, "Random initialisation (Table 5 ablation).")
flags.DEFINE_integer("layers_to_transfer", -1,
                     "Transfer embeddings + the first N blocks (-1: all; Figure 2 left).")
flags.DEFINE_float("learning_rate", 6.25e-5, "Peak learning rate.")
flags.DEFINE_integer("batch_size", 32, "Examples per update.")
flags.DEFINE_integer("epochs", 3, "Passes over the training data.")
flags.DEFINE_float("warmup_fraction", 0.002, "Warm-up, as a fraction of the updates.")
flags.DEFINE_float("weight_decay", 0.01, "GPT-1's decoupled L2 on matrices.")
flags.DEFINE_float("clip_norm", 1.0, "Global gradient-norm clipping (0: none).")
flags.DEFINE_float("lm_coef", 0.5, "Auxiliary LM loss weight (0 disables).")
flags.DEFINE_float("classifier_dropout", 0.1, "Dropout on the classifier input.")
flags.DEFINE_integer("sequence_length", 512, "Tokens per sequence.")
flags.DEFINE_integer("seed", 42, "Seed.")
flags.DEFINE_integer("max_train_examples", 0, "Use only the first N training examples.")
flags.DEFINE_integer("max_eval_examples", 0, "Use only the first N examples per eval split.")
flags.DEFINE_integer("eval_batch_size", 64, "Batch size for evaluation.")
# --task=csv
flags.DEFINE_list("text_columns", None, "csv: one or two text column names.")
flags.DEFINE_string("label_column", "label", "csv: the label column.")
flags.DEFINE_list("labels", None, "csv: the label values (default: sorted, from train).")
flags.DEFINE_enum("csv_task", None, ["classification", "entailment", "similarity"],
                  "csv: the model task (default: by the number of text columns).")
flags.DEFINE_string("csv_delimiter", ",", "csv: the field separator.")


@dataclasses.dataclass(frozen=True)
class CsvFlags:
    text_columns: tuple
    label_column: str
    labels: tuple | None
    csv_task: str | None
    delimiter: str


def parse_flags():
    """The flags as `(task_name, FinetuneConfig, CsvFlags | None)`."""
    from gpt1_keras.tasks.finetuning import FinetuneConfig

    for name in ("task", "data_dir", "output_dir"):
        if not FLAGS[name].value:
            raise app.UsageError(f"--{name} is required.")
    fields = {f.name for f in dataclasses.fields(FinetuneConfig)} - {"verbose"}
    try:
        config = FinetuneConfig(**{name: FLAGS[name].value for name in fields})
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    csv_flags = None
    if FLAGS.task == "csv":
        if not FLAGS.text_columns:
            raise app.UsageError("--task=csv needs --text_columns (one or two names).")
        csv_flags = CsvFlags(tuple(FLAGS.text_columns), FLAGS.label_column,
                             tuple(FLAGS.labels) if FLAGS.labels else None,
                             FLAGS.csv_task, FLAGS.csv_delimiter)
    return FLAGS.task, config, csv_flags


def make_task(name, config, csv_flags):
    from gpt1_keras.tasks import csv_task
    from gpt1_keras.tasks import get_task
    from gpt1_keras.tasks.base import require_files
    from gpt1_keras.tasks.csv_task import csv_labels

    if name != "csv":
        return get_task(name)
    labels = csv_flags.labels
    if labels is None:
        (train,) = require_files("csv", config.data_dir, ["train.csv"])
        labels = csv_labels(train, csv_flags.label_column, csv_flags.delimiter)
    return csv_task(csv_flags.text_columns, csv_flags.label_column, labels,
                    csv_flags.csv_task, csv_flags.delimiter)


def main(argv):
    del argv
    name, config, csv_flags = parse_flags()
    from gpt1_keras.tasks.finetuning import finetune

    results = finetune(config, make_task(name, config, csv_flags))
    for split, values in results["splits"].items():
        print(f"{name} {split}: " + ", ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()))


if __name__ == "__main__":
    app.run(main)
