r"""Pretrains a GPT-1 language model (paper section 4.1): flags -> `PretrainConfig` ->
`pretrain(config)` (`gpt1_keras/training/pretraining.py`, where the recipe lives).

Usage:
  bazel run //pipelines:pretrain                       # gpt1_small on tinyshakespeare
  bazel run //pipelines:pretrain -- --config=books \
      --train_files=/data/books/books.txt --model_dir=/runs/books
  bazel run //pipelines:pretrain -- --config=paper --train_files='/data/books/*.txt' \
      --model_dir=/runs/gpt1 --strategy=mirrored
  TF_CONFIG='{"cluster": {"worker": ["h1:2222", "h2:2222"]}, "task": {"type": "worker",
      "index": 0}}' bazel run //pipelines:pretrain -- --strategy=multi_worker ...

Restarting with the same flags and `--model_dir` resumes from the last good checkpoint.
`--config` picks a recipe (`RECIPES`: small, paper, books; docs/pretraining.md); each
flag given explicitly overrides it. Every flag is the `PretrainConfig` field of the same
name; a bad value fails before training with a usage error naming the flag.
"""

import json

from absl import app
from absl import flags

from gpt1_keras import cli
from gpt1_keras.errors import ConfigError
from gpt1_keras.models.architectures import ARCHITECTURES
from gpt1_keras.training import distribution
from gpt1_keras.training import pretraining
from gpt1_keras.training import schedules

_DEFAULTS = pretraining.PretrainConfig.__dataclass_fields__

_CONFIG = flags.DEFINE_enum("config", "small", list(pretraining.RECIPES),
                            "The recipe (see docs/pretraining.md); flags override it.")
flags.DEFINE_enum("architecture", "transformer", list(ARCHITECTURES),
                  "transformer: GPT-1; lstm: the paper's LSTM baseline (same tokens, recipe).")
flags.DEFINE_string("preset", None, "Model preset of --architecture: gpt1, gpt1_small, gpt1_tiny; "
                    "lstm_small, lstm_tiny (default: the recipe's, or its equal-size LSTM).")
flags.DEFINE_list("model_overrides", [],
                  "Backbone arguments to override, e.g. num_layers=4,dropout=0.0; "
                  "remat=true rematerializes each transformer block (less memory, more compute).")
flags.DEFINE_string("tokenizer", None,
                    "A tokenizer preset directory (e.g. another run's tokenizer/ or preset/); "
                    "default: GPT-1's BPE. The model's vocabulary_size follows it.")
flags.DEFINE_integer("bpe_vocabulary_size", 0,
                     "Instead of --tokenizer: first learn a BPE of this many tokens on the "
                     "training split (kept in <model_dir>/tokenizer/); 0: off.")
flags.DEFINE_list("train_files", None,
                  "Training text files or globs (default: the embedded tinyshakespeare).")
flags.DEFINE_list("validation_files", None,
                  "Validation files or globs (default: held out from --train_files).")
flags.DEFINE_float("validation_fraction", 0.05,
                   "Without --validation_files/--validation_books: the last fraction of "
                   "the lines held out.")
flags.DEFINE_integer("validation_books", None,
                     "Without --validation_files: hold out this many whole books, chosen "
                     "with --seed (0: split by --validation_fraction).")
flags.DEFINE_integer("book_separator_blank_lines", 2,
                     "Blank lines (at least) that end a book in --train_files.")
flags.DEFINE_string("model_dir", pretraining.DEFAULT_MODEL_DIR,
                    "Checkpoints, logs and artifacts; rerun with the same value to resume.")
flags.DEFINE_integer("train_steps", None, "Total optimizer updates.")
flags.DEFINE_float("epochs", None, "Passes over the training tokens (instead of --train_steps).")
flags.DEFINE_integer("batch_size", None, "Global batch size (sequences per update).")
flags.DEFINE_integer("sequence_length", None, "Tokens per sequence.")
flags.DEFINE_float("learning_rate", None, "Peak learning rate.")
flags.DEFINE_enum("schedule", "cosine", list(schedules.SCHEDULES),
                  "cosine: warm-up + cosine to 0 (paper); linear: GPT-1's warmup_linear.")
flags.DEFINE_integer("warmup_steps", None,
                     "Linear warm-up updates (default: the recipe's, cut to the run).")
flags.DEFINE_float("weight_decay", 0.01,
                   "GPT-1's decoupled L2 on weights of rank > 1 (the optimizer's l2).")
flags.DEFINE_float("clip_norm", 1.0, "Global gradient-norm clip (0: off).")
flags.DEFINE_enum("precision", "float32", list(pretraining.PRECISIONS), "Keras dtype policy.")
flags.DEFINE_bool("jit_compile", None, "Compile the train step with XLA (default: on for TF/JAX).")
flags.DEFINE_integer("seed", 0, "Seed of initialisation, dropout, data order and book split.")
flags.DEFINE_bool("deterministic", False,
                  "TF op determinism (bitwise-reproducible runs and resumes; slower).")
flags.DEFINE_integer("checkpoint_every", None, "Updates between checkpoints.")
flags.DEFINE_integer("keep_checkpoints", None, "Newest checkpoints kept.")
flags.DEFINE_integer("steps_per_epoch", None,
                     "Updates between validation passes (one Keras fit epoch).")
flags.DEFINE_integer("eval_steps", None, "Max batches per validation pass.")
flags.DEFINE_enum("strategy", "default", list(distribution.STRATEGIES),
                  "default: one device; mirrored: all local devices; multi_worker: TF_CONFIG; "
                  "tpu: --tpu; data_parallel: keras.distribution.DataParallel on JAX "
                  "(needs --jit_compile).")
flags.DEFINE_string("tpu", None, "TPU name or address for --strategy=tpu.")
flags.DEFINE_integer("cpu_devices", 1,
                     "Split the CPU into this many logical devices (TF; for mirrored on CPU).")
flags.DEFINE_list("zero_shot_probes", [],
                  "Zero-shot heuristics scored at each validation pass and written to the "
                  "history, as heuristic=data_dir (sst2, cola, story_cloze, winograd, race).")
flags.DEFINE_string("zero_shot_split", "dev", "The labelled split the zero-shot probes score.")
flags.DEFINE_integer("zero_shot_examples", 200,
                     "The first N examples of each zero-shot probe's split (0: all).")
flags.DEFINE_integer("num_samples", 3, "Generated samples written at the end (0: none).")
flags.DEFINE_integer("sample_tokens", 40, "Tokens generated per sample.")
# Earlier names, kept working.
flags.DEFINE_alias("steps_per_eval", "steps_per_epoch")
flags.DEFINE_alias("xla", "jit_compile")

# Flags without a recipe value: their flag default is the config's default.
_FIELDS = [name for name in _DEFAULTS if name in flags.FLAGS and name != "config"]


def _parse_overrides(items):
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise app.UsageError(f"--model_overrides entries must be key=value. Received: {item!r}")
        try:
            overrides[key.strip()] = json.loads(value)
        except ValueError:
            overrides[key.strip()] = value
    return overrides


def config_from_flags():
    """The `PretrainConfig` of the flags: the recipe, with each flag given on top."""
    recipe = pretraining.RECIPES[_CONFIG.value]
    overrides = {}
    for name in _FIELDS:
        holder = flags.FLAGS[name]
        if holder.present or (name not in recipe and holder.value is not None):
            overrides[name] = holder.value
    overrides["model_overrides"] = _parse_overrides(overrides.get("model_overrides", []))
    for name in ("train_files", "validation_files", "zero_shot_probes"):
        if name in overrides:
            overrides[name] = tuple(overrides[name])
    try:
        return pretraining.PretrainConfig.from_recipe(_CONFIG.value, **overrides)
    except ConfigError as e:
        raise app.UsageError(f"--{e}") from None


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = config_from_flags()
    try:
        pretraining.pretrain(config)
    except ConfigError as e:
        raise app.UsageError(f"--{e}") from None



def console_main():
    """The `gpt1-pretrain` console script."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
