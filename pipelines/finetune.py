r"""Fine-tunes GPT-1 on one of the paper's tasks (or user CSV data) and evaluates it.

Usage:
  bazel run //pipelines:finetune -- --task=rte --data_dir=/data/glue_data/RTE \
      --init_checkpoint=hf://openai-community/openai-gpt --output_dir=/runs/rte
  bazel run //pipelines:finetune -- --task=mnli ... --layers_to_transfer=6   # Figure 2 left
  bazel run //pipelines:finetune -- --task=sst2 ... --no_pretraining --preset=gpt1  # Table 5
  bazel run //pipelines:finetune -- --task=sst2 ... \
      --init_checkpoint=/runs/lstm/model.keras       # the LSTM baseline
  bazel run //pipelines:finetune -- --task=csv --data_dir=/data/reviews \
      --text_columns=review --label_column=stars --init_checkpoint=...
  bazel run //pipelines:finetune -- --task=rte --data_dir=/data/RTE_train_only \
      --validation_fraction=0.1 ...                  # no dev.tsv: hold 10% out
  bazel run //pipelines:finetune -- --output_dir=/runs/rte --eval_only \
      --eval_data_dir=/data/glue_data/RTE            # score a finished run on dev.tsv

The recipe, its defaults and checks live in `gpt1_keras.tasks.finetuning`
(`FinetuneConfig`, one flag per field, same names; `finetune`, `evaluate_run`).
Writes `metrics.json`, `predictions/*.tsv` (GLUE submission format) and
`model.keras` to --output_dir; re-running with the same flags resumes training.
Expected errors (bad data, flags, a directory in use) print one `ERROR:` line.
"""

import dataclasses

from absl import app
from absl import flags

from gpt1_keras import cli
from gpt1_keras.errors import ConfigError
from gpt1_keras.models.architectures import ARCHITECTURES
from gpt1_keras.tasks.finetuning import CSV_HEADS
from gpt1_keras.tasks.finetuning import TASK_NAMES
from gpt1_keras.tasks.finetuning import FinetuneConfig
from gpt1_keras.training.distribution import STRATEGIES

FLAGS = flags.FLAGS
_D = {f.name: f.default for f in dataclasses.fields(FinetuneConfig)}

flags.DEFINE_enum("task", None, TASK_NAMES, "The task (see gpt1_keras/tasks/registry.py).")
flags.DEFINE_string("data_dir", None, "The task's files.")
flags.DEFINE_string("output_dir", None, "Results, checkpoints and the model.")
flags.DEFINE_string("init_checkpoint", None,
                    "The pretrained model: a .keras LM, classifier or backbone (transformer "
                    "or LSTM), a preset directory (a run's preset/), hf://owner/name or a "
                    "local Hugging Face checkpoint (required unless --no_pretraining).")
flags.DEFINE_string("preset", _D["preset"],
                    "Architecture (untrained) without --init_checkpoint: gpt1, gpt1_small, ...")
flags.DEFINE_enum("architecture", None, list(ARCHITECTURES),
                  "Backbone architecture (default: the checkpoint's, else --preset's); "
                  "without a checkpoint --preset maps to its equal-size preset of it.")
flags.DEFINE_bool("no_pretraining", _D["no_pretraining"],
                  "Random initialisation (Table 5 ablation).")
flags.DEFINE_integer("layers_to_transfer", _D["layers_to_transfer"],
                     "Transfer embeddings + the first N blocks (-1: all; Figure 2 left).")
flags.DEFINE_float("learning_rate", _D["learning_rate"], "Peak learning rate.")
flags.DEFINE_integer("batch_size", _D["batch_size"], "Examples per update (global).")
flags.DEFINE_integer("epochs", _D["epochs"], "Passes over the training data.")
flags.DEFINE_float("warmup_fraction", _D["warmup_fraction"],
                   "Warm-up, as a fraction of the updates.")
flags.DEFINE_float("weight_decay", _D["weight_decay"], "GPT-1's decoupled L2 on matrices.")
flags.DEFINE_float("clip_norm", _D["clip_norm"], "Global gradient-norm clipping (0: none).")
flags.DEFINE_float("lm_coef", _D["lm_coef"], "Auxiliary LM loss weight (0 disables).")
flags.DEFINE_float("classifier_dropout", _D["classifier_dropout"],
                   "Dropout on the classifier input.")
flags.DEFINE_integer("sequence_length", _D["sequence_length"], "Tokens per sequence.")
flags.DEFINE_integer("seed", _D["seed"], "Seed (shuffling, initialisation, held-out split).")
flags.DEFINE_integer("max_train_examples", _D["max_train_examples"],
                     "Use only the first N training examples (0: all).")
flags.DEFINE_integer("max_eval_examples", _D["max_eval_examples"],
                     "Use only the first N examples per eval split (0: all).")
flags.DEFINE_integer("eval_batch_size", _D["eval_batch_size"], "Batch size for evaluation.")
flags.DEFINE_float("validation_fraction", _D["validation_fraction"],
                   "Hold out this fraction of the training file as the validation split "
                   "(0: the task's dev files).")
flags.DEFINE_enum("strategy", _D["strategy"], STRATEGIES, "Data parallelism.")
flags.DEFINE_bool("jit_compile", _D["jit_compile"], "Compile the train step with XLA.")
flags.DEFINE_alias("xla", "jit_compile")
flags.DEFINE_list("text_columns", None, "csv: one or two text column names.")
flags.DEFINE_string("label_column", _D["label_column"], "csv: the label column.")
flags.DEFINE_list("labels", None, "csv: the label values (default: sorted, from train).")
flags.DEFINE_enum("csv_head", None, CSV_HEADS,
                  "csv: the head (default: by the number of text columns).")
flags.DEFINE_string("csv_delimiter", _D["csv_delimiter"], "csv: the field separator.")
# Not recipe settings: what to do with the run.
flags.DEFINE_bool("eval_only", False, "Score the finished run in --output_dir on "
                  "--eval_data_dir's labelled splits, without training.")
flags.DEFINE_string("eval_data_dir", None, "A folder of labelled split files (e.g. GLUE's "
                    "dev.tsv) to score the run on after training (or with --eval_only).")


def parse_flags():
    """The flags as a `FinetuneConfig`; a bad setting is a usage error naming its flag."""
    fields = [f.name for f in dataclasses.fields(FinetuneConfig) if f.name != "verbose"]
    if FLAGS.task is None:
        raise app.UsageError("--task is required.")
    try:
        return FinetuneConfig(**{name: FLAGS[name].value for name in fields})
    except ConfigError as e:
        raise app.UsageError(f"--{e}") from None


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    from gpt1_keras.tasks import finetuning

    if FLAGS.eval_only:
        if not (FLAGS.output_dir and FLAGS.eval_data_dir):
            raise app.UsageError("--eval_only needs --output_dir and --eval_data_dir.")
        _print(finetuning.evaluate_run(FLAGS.output_dir, FLAGS.eval_data_dir), "eval")
        return
    config = parse_flags()
    try:
        results = finetuning.finetune(config)
    except ConfigError as e:  # A setting found bad only when the run starts.
        raise app.UsageError(f"--{e}") from None
    _print(results, config.task)
    if FLAGS.eval_data_dir:
        _print(finetuning.evaluate_run(config.output_dir, FLAGS.eval_data_dir), "eval")


def _print(results, prefix):
    for split, values in results["splits"].items():
        print(f"{prefix} {split}: " + ", ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()))



def console_main():
    """The `gpt1-finetune` console script."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
