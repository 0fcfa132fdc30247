"""Pretraining a GPT-1 language model (paper section 4.1); resumable.

`pretrain(config)` is the whole recipe, the twin of `gpt1_keras.tasks.finetuning`:
`//pipelines:pretrain` parses its flags into a `PretrainConfig` and calls it, and a
Python or Colab user calls it the same way:

```python
from gpt1_keras.training.pretraining import PretrainConfig, pretrain

config = PretrainConfig.from_recipe("small", model_dir="/tmp/run", train_steps=50)
metrics = pretrain(config)          # also in /tmp/run/metrics.json
```

What it does, in order:

1. takes `RunLock(model_dir, "pretrain")` for the whole run (a non-chief worker of a
   multi-worker run locks `model_dir/workers/<task>` instead), and refuses to resume a
   directory made with different data or model settings (`RESUME_KEYS`);
2. the data (`gpt1_keras.data.corpus`): with `validation_files`, train on
   `train_files` as they are; else hold out whole books (`validation_books`) or the
   last `validation_fraction` of the lines, written to `model_dir/data/`. Invalid
   UTF-8 is reported per file (lines, bytes) and replaced by U+FFFD everywhere;
3. token counts of both splits: `epochs` -> steps, the validation size, the add-one
   unigram baseline (`gpt1_keras.evaluation.unigram`);
4. trains with `gpt1_keras.training.train` (GPT-1's Adam with decoupled L2, the
   schedule, checkpoints, TensorBoard, NaN stop; resumes from the newest good
   checkpoint), then saves `model.keras` and a keras-hub preset directory `preset/`
   (backbone and tokenizer: `GPT1Backbone.from_preset(model_dir + "/preset")`),
   each atomically;
5. reports: `metrics.json`, `loss_curve.png`, `samples.txt`. This runs after the
   final checkpoint and `model.keras` are written; a failure here is logged as an
   error naming the saved model and does not fail the run.

Named recipes (`RECIPES`, `PretrainConfig.from_recipe`); see `docs/pretraining.md`:

- `small`: gpt1_small on the embedded tinyshakespeare, 8 x 128 tokens, peak lr 1e-3
  after a 250-update warm-up then cosine, 300 updates (about 6 minutes on 2 cores).
  The long warm-up matters: a post-LN GPT-1 whose learning rate rises faster (e.g. to
  1e-3 in 150 updates, or to 6e-4 in 15) settles at the unigram distribution and stays
  there (BENCHMARKS.md, "Pretraining").
- `paper`: gpt1, 64 x 512 tokens, peak lr 2.5e-4, 2,000 warm-up updates, 100 epochs.
- `mini`: gpt1_mini (4 x 256) with an 8,192-token BPE learned on the corpus first
  (`bpe_vocabulary_size`), 32 x 128 tokens, 2,000 updates (8.2M tokens), whole books
  held out: the model of the paper reproduction (`bench/paper/reproduce.py`), sized so
  that pretraining takes about an hour on a 2-core CPU.
- `books`: gpt1_small on a book corpus (`train_files`, e.g. the 70 MB
  `books/books.txt`), 16 x 256 tokens, 1,800 updates, whole books held out; sized
  for about 2 hours on a 2-core CPU, see `BOOKS_SIZING`.
"""

import dataclasses
import json
import math
import os
import tempfile
import time

from absl import logging

from gpt1_keras import extras
from gpt1_keras.errors import ConfigError

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
SAMPLE_PROMPTS = ("ROMEO:", "First Citizen:", "The king")
DEFAULT_MODEL_DIR = os.path.join(tempfile.gettempdir(), "gpt1_keras", "pretrain")

# The LM loss is computed this many positions at a time (`GPT1CausalLM.compile`'s
# `loss_chunk_size`): the same loss and gradients as over the full logits, without
# the (batch * length, 40,481) logits and their gradient in memory (5.3 GB each at
# the paper's 64 x 512).
LOSS_CHUNK_SIZE = 1024

# Training on at most this many tokens is counted exactly; beyond, `epochs` is
# converted to steps from the first 20M tokens' count.
_MAX_COUNTED_TRAIN_TOKENS = 20_000_000

BOOKS_SIZING = """\
gpt1_small (26.3M parameters) trains at about 1,000 tokens/s on this project's 2-core CPU
with the TF backend + XLA (BENCHMARKS.md: 1,092 tokens/s at 8 x 256 on a quiet machine).
2 hours = 7,200 s x 1,000 tokens/s = 7.2M tokens = 1,760 updates of 16 x 256 = 4,096
tokens; the recipe runs 1,800 updates (7.4M tokens, about 0.4 of an epoch of books.txt's
~17M tokens: 0.25 GPT-1 tokens per byte on its first MB x 70.0 MB), plus 7 validation
passes of 25 x 4,096 tokens on the held-out books. (Measured here at 16 x 256 under a
load average of 14 on the 2 cores: 49 s per update, 84 tokens/s; a loaded machine
stretches the run proportionally.)"""

# Each recipe sets these fields; everything else keeps the `PretrainConfig` default.
RECIPES = {
    "small": dict(
        preset="gpt1_small", batch_size=8, sequence_length=128, learning_rate=1e-3,
        warmup_steps=250, train_steps=300, epochs=None, steps_per_epoch=50,
        checkpoint_every=50, keep_checkpoints=2, eval_steps=12,
    ),
    "paper": dict(
        preset="gpt1", batch_size=64, sequence_length=512, learning_rate=2.5e-4,
        warmup_steps=2000, train_steps=None, epochs=100.0, steps_per_epoch=1000,
        checkpoint_every=1000, keep_checkpoints=3, eval_steps=100,
    ),
    # Every checkpoint is kept (1,800 / 250 = 7, plus the last): the zero-shot curve
    # is computed from them. Each is ~316 MB (weights + two Adam moments), 2.5 GB in all.
    "books": dict(
        preset="gpt1_small", batch_size=16, sequence_length=256, learning_rate=6e-4,
        warmup_steps=300, train_steps=1800, epochs=None, steps_per_epoch=250,
        checkpoint_every=250, keep_checkpoints=8, eval_steps=25, validation_books=250,
        sample_prompts=("It was a dark and stormy night", "CHAPTER I.", "She said"),
    ),
    # GPT-1's architecture sized for one 2-core CPU (BENCHMARKS.md, "The mini recipe"):
    # its own 8,192-token BPE learned on the training split, 4 x 256 (5.3M parameters),
    # 32 x 128 tokens per update, 2,000 updates = 8.2M tokens (1.5 per parameter).
    "mini": dict(
        preset="gpt1_mini", bpe_vocabulary_size=8192, batch_size=32, sequence_length=128,
        learning_rate=1e-3, warmup_steps=300, train_steps=2000, epochs=None,
        steps_per_epoch=250, checkpoint_every=250, keep_checkpoints=2, eval_steps=25,
        validation_books=250,
        sample_prompts=("It was a dark and stormy night", "CHAPTER I.", "She said"),
    ),
}


def _default_train_files():
    from gpt1_keras.data.lm_dataset import default_corpus_path

    return (default_corpus_path(),)


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Every setting of a pretraining run; the defaults are the `small` recipe.

    Each field is checked once, here (errors are `ConfigError`s naming the field);
    `//pipelines:pretrain` has one flag per field, under the same name.

    Attributes:
        architecture: `"transformer"` (`GPT1Backbone`) or `"lstm"` (the paper's
            `LSTMBackbone` baseline), trained the same way with the same tokens.
        preset: a backbone preset of `architecture` (`gpt1`, `gpt1_small`,
            `gpt1_tiny`; `lstm_small`, `lstm_tiny`). `from_recipe` maps a recipe's
            transformer preset to its equal-size LSTM one for `architecture="lstm"`.
        model_overrides: backbone arguments replacing the preset's (a dict, or
            `(key, value)` pairs), e.g. `{"dropout": 0.0}`; for the transformer
            also `{"remat": True}` (rematerialized blocks: the same training in
            less memory, for about a third more compute; `GPT1Backbone`).
        tokenizer: the BPE tokenizer of the run: a tokenizer preset directory
            (`GPT1Tokenizer.save_to_preset`, `train_bpe(output_dir=...)`, a run's
            `tokenizer/` or `preset/`) or handle; default (None): GPT-1's own
            (40,478 tokens + 3 special). The backbone's `vocabulary_size` is set to
            the tokenizer's id count; a `model_overrides` `vocabulary_size` that
            differs is an error naming both.
        bpe_vocabulary_size: instead of `tokenizer`: first learn a GPT-1-style BPE
            of this many tokens (special tokens not included) on the training split
            (`train_bpe`), written to `model_dir/tokenizer/` and reused on resume.
            0: off.
        train_files: training text files or globs (resolved and checked here);
            default: the embedded tinyshakespeare.
        validation_files: validation files or globs; default (None): split off
            `train_files`.
        validation_fraction: without `validation_files` or `validation_books`: the
            last fraction of the lines held out.
        validation_books: without `validation_files`: hold out this many whole books
            (pieces separated by `book_separator_blank_lines` or more blank lines),
            chosen with `seed`; 0: split by `validation_fraction` instead.
        book_separator_blank_lines: blank lines that end a book.
        model_dir: checkpoints, logs and artifacts; the same value resumes.
        train_steps: total optimizer updates; or None with `epochs`.
        epochs: passes over the training tokens (exactly one of the two is set).
        batch_size: global batch size (sequences per update).
        sequence_length: tokens per sequence, at most the backbone's
            `max_sequence_length`.
        learning_rate: the peak learning rate.
        schedule: `"cosine"` (warm-up then cosine to 0, the paper's), `"linear"`
            (GPT-1's `warmup_linear`) or `"constant"`.
        warmup_steps: linear warm-up updates, at most the run's updates.
        truncate_warmup: a run shorter than `warmup_steps` warms up throughout
            instead of failing (`from_recipe` sets it when `warmup_steps` is the
            recipe's).
        weight_decay: GPT-1's decoupled L2 on weights of rank > 1 (the optimizer's
            `l2`; Keras' own `weight_decay` is a different, un-corrected decay).
        clip_norm: global gradient-norm clip (0: off).
        precision: the Keras dtype policy: `float32`, `mixed_bfloat16`,
            `mixed_float16`.
        jit_compile: compile the train step with XLA; None: on for TF and JAX.
        seed: initialisation, dropout, data order and book split.
        deterministic: TF op determinism (bitwise-reproducible runs and resumes).
        checkpoint_every: updates between checkpoints (one is also written at the end).
        keep_checkpoints: the newest checkpoints kept.
        steps_per_epoch: updates between validation passes (a Keras `fit` epoch).
        eval_steps: most batches per validation pass.
        strategy: one of `distribution.STRATEGIES`.
        tpu: TPU name or address for `strategy="tpu"`.
        cpu_devices: split the CPU into this many logical devices (TF; mirrored on CPU).
        zero_shot_probes: GPT-1's zero-shot heuristics scored at each validation
            pass (`ZeroShotProbes`), written to the history as
            `zero_shot_<heuristic>`: `(heuristic, data_dir)` pairs or
            `"heuristic=data_dir"` strings (`sst2`, `cola`, `story_cloze`,
            `winograd`, `race`); the task files are read once, before training.
        zero_shot_split: the labelled split the probes score.
        zero_shot_examples: the first N examples of each probe's split (0: all).
        num_samples: generated samples written at the end (0: none).
        sample_tokens: tokens generated per sample.
        sample_prompts: the prompts, used in turn.
    """

    architecture: str = "transformer"
    preset: str = "gpt1_small"
    model_overrides: tuple = ()
    tokenizer: str | None = None
    bpe_vocabulary_size: int = 0
    train_files: tuple = ()
    validation_files: tuple | None = None
    validation_fraction: float = 0.05
    validation_books: int = 0
    book_separator_blank_lines: int = 2
    model_dir: str = DEFAULT_MODEL_DIR
    train_steps: int | None = 300
    epochs: float | None = None
    batch_size: int = 8
    sequence_length: int = 128
    learning_rate: float = 1e-3
    schedule: str = "cosine"
    warmup_steps: int = 250
    truncate_warmup: bool = False
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    precision: str = "float32"
    jit_compile: bool | None = None
    seed: int = 0
    deterministic: bool = False
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    steps_per_epoch: int = 50
    eval_steps: int = 12
    strategy: str = "default"
    tpu: str | None = None
    cpu_devices: int = 1
    zero_shot_probes: tuple = ()
    zero_shot_split: str = "dev"
    zero_shot_examples: int = 200
    num_samples: int = 3
    sample_tokens: int = 40
    sample_prompts: tuple = SAMPLE_PROMPTS

    # Changing these between restarts would make the resumed run a different run.
    RESUME_KEYS = ("architecture", "preset", "model_overrides", "tokenizer", "bpe_vocabulary_size",
                   "train_files", "validation_files",
                   "validation_fraction", "validation_books", "book_separator_blank_lines",
                   "batch_size", "sequence_length", "seed")

    @classmethod
    def from_recipe(cls, name, **overrides):
        """The recipe `name` of `RECIPES` with `overrides` (field=value) on top.

        Giving `train_steps` clears the recipe's `epochs` and vice versa; unless
        `warmup_steps` is given, the recipe's warm-up is cut to a shorter run.
        """
        if name not in RECIPES:
            raise ConfigError(f"recipe={name!r} is unknown; known: {', '.join(RECIPES)}.")
        fields = dict(RECIPES[name])
        if "train_steps" in overrides and "epochs" not in overrides:
            fields["epochs"] = None
        if "epochs" in overrides and "train_steps" not in overrides:
            fields["train_steps"] = None
        fields["truncate_warmup"] = "warmup_steps" not in overrides
        fields.update(overrides)
        from gpt1_keras.models.gpt1_presets import matching_preset
        from gpt1_keras.models.gpt1_presets import presets_by_architecture

        # The LSTM baseline of a recipe: its equal-size LSTM preset.
        if "preset" not in overrides and fields.get("architecture") in presets_by_architecture:
            try:
                fields["preset"] = matching_preset(fields["preset"], fields["architecture"])
            except ValueError as e:
                raise ConfigError(f"preset: {e}") from None
        return cls(**fields)

    def __post_init__(self):
        from gpt1_keras.training import distribution
        from gpt1_keras.training import schedules

        def fix(name, value):  # Normalised values (the dataclass is frozen).
            object.__setattr__(self, name, value)

        # The model.
        from gpt1_keras.models.architectures import ARCHITECTURES

        if self.architecture not in ARCHITECTURES:
            raise ConfigError(
                f"architecture={self.architecture!r} is unknown; known: "
                f"{', '.join(ARCHITECTURES)}."
            )
        arch = _preset_arguments(self.preset, self.architecture)
        overrides = dict(self.model_overrides)
        known = set(arch) | _OPTIONAL_BACKBONE_ARGUMENTS.get(self.architecture, set())
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"model_overrides: unknown backbone arguments {unknown}; known: {sorted(known)}."
            )
        fix("model_overrides", tuple(sorted(overrides.items())))
        arch.update(overrides)
        if not 1 <= self.sequence_length <= arch["max_sequence_length"]:
            raise ConfigError(
                f"sequence_length={self.sequence_length} must be in "
                f"[1, {arch['max_sequence_length']}], the context of preset={self.preset} "
                "(its max_sequence_length)."
            )
        # The tokenizer.
        if not isinstance(self.bpe_vocabulary_size, int) or self.bpe_vocabulary_size < 0:
            raise ConfigError(f"bpe_vocabulary_size={self.bpe_vocabulary_size!r} must be an "
                              "integer >= 0 (0: no BPE training).")
        if self.tokenizer and self.bpe_vocabulary_size:
            raise ConfigError(
                f"tokenizer={self.tokenizer!r} and bpe_vocabulary_size="
                f"{self.bpe_vocabulary_size}: give one (a tokenizer to use, or the size of "
                "one to learn).")
        if self.tokenizer and "://" not in self.tokenizer:
            fix("tokenizer", os.path.abspath(os.path.expanduser(self.tokenizer)))
            if not os.path.isdir(self.tokenizer):
                raise ConfigError(f"tokenizer={self.tokenizer} is not a directory (expected a "
                                  "tokenizer preset: tokenizer.json and assets/tokenizer/).")
        # The data.
        fix("train_files", _resolve("train_files", self.train_files or _default_train_files()))
        if self.validation_files is not None:
            fix("validation_files", _resolve("validation_files", self.validation_files))
        elif self.validation_books:
            if self.validation_books < 0:
                raise ConfigError(
                    f"validation_books={self.validation_books} must be >= 0 (0: split by "
                    "validation_fraction)."
                )
        elif not 0 < self.validation_fraction < 1:
            raise ConfigError(
                f"validation_fraction={self.validation_fraction} must be in (0, 1)."
            )
        if self.book_separator_blank_lines < 1:
            raise ConfigError(
                f"book_separator_blank_lines={self.book_separator_blank_lines} must be >= 1."
            )
        fix("model_dir", os.path.abspath(os.path.expanduser(self.model_dir)))
        # The length of the run.
        if (self.train_steps is None) == (self.epochs is None):
            raise ConfigError(
                f"train_steps={self.train_steps}, epochs={self.epochs}: set exactly one."
            )
        if self.epochs is not None and not self.epochs > 0:
            raise ConfigError(f"epochs={self.epochs} must be > 0.")
        positive = ["batch_size", "checkpoint_every", "keep_checkpoints", "steps_per_epoch",
                    "eval_steps", "cpu_devices", "sample_tokens"]
        if self.train_steps is not None:
            positive.insert(0, "train_steps")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} must be an integer >= 1.")
        # The optimisation.
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate={self.learning_rate} must be > 0.")
        if self.schedule not in schedules.SCHEDULES:
            raise ConfigError(
                f"schedule={self.schedule!r} is unknown; known: {', '.join(schedules.SCHEDULES)}."
            )
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps={self.warmup_steps} must be >= 0.")
        if self.train_steps is not None:
            self.warmup_for(self.train_steps)
        for name in ("weight_decay", "clip_norm"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0.")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"precision={self.precision!r} is unknown; known: {', '.join(PRECISIONS)}."
            )
        # Devices.
        if self.strategy not in distribution.STRATEGIES:
            raise ConfigError(
                f"strategy={self.strategy!r} is unknown; known: "
                f"{', '.join(distribution.STRATEGIES)}."
            )
        if self.strategy == "tpu" and not self.tpu:
            raise ConfigError("strategy=tpu needs tpu (a TPU name, address or 'local').")
        # The zero-shot probes.
        probes = []
        for probe in self.zero_shot_probes:
            if isinstance(probe, str):
                if "=" not in probe:
                    raise ConfigError(f"zero_shot_probes: {probe!r} must be heuristic=data_dir.")
                probe = probe.split("=", 1)
            heuristic, data_dir = probe
            probes.append((heuristic, os.path.abspath(os.path.expanduser(data_dir))))
        fix("zero_shot_probes", tuple(probes))
        if self.zero_shot_examples < 0:
            raise ConfigError(f"zero_shot_examples={self.zero_shot_examples} must be >= 0.")
        # The samples.
        if self.num_samples < 0:
            raise ConfigError(f"num_samples={self.num_samples} must be >= 0.")
        if self.num_samples and self.sample_tokens >= arch["max_sequence_length"]:
            raise ConfigError(
                f"sample_tokens={self.sample_tokens} must be below the context of "
                f"preset={self.preset} ({arch['max_sequence_length']}), to leave room "
                "for the prompt."
            )
        fix("sample_prompts", tuple(self.sample_prompts))
        if self.num_samples and not self.sample_prompts:
            raise ConfigError("sample_prompts is empty; give prompts or num_samples=0.")

    def warmup_for(self, train_steps):
        """The warm-up of a run of `train_steps` updates (`ConfigError` if too long)."""
        if self.truncate_warmup:
            return min(self.warmup_steps, train_steps)
        if self.warmup_steps > train_steps:
            length = (f"train_steps={train_steps}" if self.train_steps is not None else
                      f"the {train_steps} updates of epochs={self.epochs}")
            raise ConfigError(
                f"warmup_steps={self.warmup_steps} exceeds {length}."
            )
        return self.warmup_steps

    def backbone_arguments(self):
        """The backbone's arguments: the preset's with the overrides."""
        return {**_preset_arguments(self.preset, self.architecture),
                **dict(self.model_overrides)}

    def to_json_dict(self):
        return json.loads(json.dumps(dataclasses.asdict(self)))


# Backbone arguments that no preset sets, which `model_overrides` may.
_OPTIONAL_BACKBONE_ARGUMENTS = {"transformer": {"remat"}}


def _preset_arguments(preset, architecture):
    from gpt1_keras.models.gpt1_presets import get_preset

    try:
        return get_preset(preset, architecture=architecture)
    except ValueError as e:
        raise ConfigError(f"preset: {e}") from None


def _resolve(name, patterns):
    from gpt1_keras.data.lm_dataset import resolve_files

    if isinstance(patterns, (str, os.PathLike)):
        patterns = [patterns]
    try:
        return tuple(resolve_files(list(patterns)))
    except (FileNotFoundError, IsADirectoryError, ValueError) as e:
        raise ConfigError(f"{name}: {e}") from None


# -- the recipe --------------------------------------------------------------------


def pretrain(config, callbacks=()):
    """Runs (or resumes) pretraining; see the module docstring.

    Args:
        config: a `PretrainConfig`.
        callbacks: extra Keras callbacks for `fit`, run after the trainer's
            checkpoints (so at a step's end its checkpoint, if due, is already
            written) and before its history, which records what they add to an
            epoch's logs.

    Returns:
        The metrics dict written to `metrics.json` on the chief; None on other workers.

    Raises:
        ConfigError: a setting that cannot run here (named), e.g. a batch that does
            not split over the replicas, too little validation text, a model
            directory holding a different run.
        RunDirectoryLockedError: another process holds `model_dir`.
        UserError: `model_dir` cannot be a directory (e.g. it names a file).
        NonFiniteLossError: the loss became NaN/Inf (the last good checkpoint is kept).
    """
    start = time.time()
    if config.cpu_devices > 1:
        import keras

        if keras.backend.backend() == "tensorflow":
            from gpt1_keras.training import tf_distribute

            tf_distribute.split_cpu(config.cpu_devices)
    import keras

    from gpt1_keras.run_lock import RunLock
    from gpt1_keras.training import distribution as distribution_lib

    if config.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    try:
        distribution = distribution_lib.make_distribution(config.strategy, config.tpu)
    except ConfigError:
        raise
    except ValueError as e:  # TF_CONFIG, TPU resolution.
        raise ConfigError(f"strategy={config.strategy}: {e}") from None
    backend = keras.backend.backend()
    jit_compile = config.jit_compile
    if jit_compile is None:
        jit_compile = backend in ("tensorflow", "jax")
    distribution.check(config.batch_size, jit_compile)
    with RunLock(lock_directory(config.model_dir, distribution), "pretrain"):
        return _pretrain_locked(config, distribution, jit_compile, start, callbacks)


def lock_directory(model_dir, distribution):
    """The directory this process locks: `model_dir` on the chief; on another worker of
    a multi-worker run (which reads the chief's `model_dir` but writes nothing there
    but the split), `model_dir/workers/<task>`, so the run does not block itself."""
    if distribution.is_chief:
        return model_dir
    return os.path.join(model_dir, "workers", distribution.task)


def _check_resume_compatible(config):
    """Refuses to resume a model directory made with different data/model settings."""
    path = os.path.join(config.model_dir, "config.json")
    current = config.to_json_dict()
    if not os.path.exists(path):
        return current
    with open(path) as f:
        previous = json.load(f)
    # A key the earlier run did not record (an older version) had its default value.
    defaults = PretrainConfig.__dataclass_fields__
    previous = {k: previous.get(k, defaults[k].default) for k in PretrainConfig.RESUME_KEYS}
    changed = [k for k in PretrainConfig.RESUME_KEYS if previous[k] != current[k]]
    checkpoints = os.path.join(config.model_dir, "checkpoints")
    if changed and os.path.isdir(checkpoints) and os.listdir(checkpoints):
        raise ConfigError(
            f"model_dir={config.model_dir} holds a run with different "
            + ", ".join(f"{k} (was {previous[k]!r}, now {current[k]!r})" for k in changed)
            + ". Use another model_dir, or the same settings to resume."
        )
    return current


def _prepare_data(config):
    """`(train_files, valid_files, split_info)`, splitting `train_files` if needed."""
    from gpt1_keras.data import corpus

    data_dir = os.path.join(config.model_dir, "data")
    if config.validation_files:
        corpus.warn_invalid_utf8(config.train_files + config.validation_files)
        return config.train_files, config.validation_files, {}
    if config.validation_books:
        train, valid, info = corpus.split_books(
            config.train_files, config.validation_books, config.seed, data_dir,
            config.book_separator_blank_lines)
        logging.info("Held out %d of %d books for validation.", config.validation_books,
                     info["books"])
        return train, valid, info
    train, valid = corpus.split_lines(config.train_files, config.validation_fraction, data_dir)
    return train, valid, {}


TOKENIZER_DIR = "tokenizer"
# How long a non-chief worker waits for the chief to learn the BPE (books.txt: minutes).
_TOKENIZER_WAIT_SECONDS = 3600
_GPT1_TOKENIZER = "GPT-1's"


def _tokenizer(config, train_files, distribution):
    """The run's tokenizer: `config.tokenizer`'s, a BPE learned on `train_files`
    (`bpe_vocabulary_size`, kept in `model_dir/tokenizer/`), or GPT-1's."""
    from gpt1_keras.tokenizers import GPT1Tokenizer

    if config.tokenizer:
        return GPT1Tokenizer.from_preset(config.tokenizer)
    if not config.bpe_vocabulary_size:
        return GPT1Tokenizer()
    directory = os.path.join(config.model_dir, TOKENIZER_DIR)
    if distribution.is_chief and not os.path.isfile(os.path.join(directory, "tokenizer.json")):
        from gpt1_keras.data import corpus
        from gpt1_keras.tokenizers import train_bpe

        start = time.time()
        train_bpe(corpus.text_lines(train_files), config.bpe_vocabulary_size,
                  output_dir=directory, source=", ".join(train_files))
        logging.info("Learned a BPE of %d tokens on %s in %.0f s: %s.",
                     config.bpe_vocabulary_size, ", ".join(train_files), time.time() - start,
                     directory)
    # Other workers wait for the chief's, at most _TOKENIZER_WAIT_SECONDS.
    deadline = time.time() + _TOKENIZER_WAIT_SECONDS
    while not os.path.isfile(os.path.join(directory, "tokenizer.json")):
        if time.time() > deadline:
            raise ConfigError(
                f"bpe_vocabulary_size={config.bpe_vocabulary_size}: the chief wrote no "
                f"tokenizer to {directory} in {_TOKENIZER_WAIT_SECONDS} s; check the chief's "
                "log, or learn the BPE first and pass it as tokenizer.")
        time.sleep(1)
    return GPT1Tokenizer.from_preset(directory)


def _backbone_overrides(config, tokenizer):
    """`model_overrides` with the tokenizer's `vocabulary_size` (a different one: error)."""
    overrides = dict(config.model_overrides)
    size = tokenizer.vocabulary_size()
    if overrides.get("vocabulary_size", size) != size:
        raise ConfigError(
            f"model_overrides vocabulary_size={overrides['vocabulary_size']} differs from the "
            f"{size} token ids of the tokenizer ({config.tokenizer or _GPT1_TOKENIZER}); drop it "
            "(the tokenizer sets it) or use a tokenizer of that size.")
    overrides["vocabulary_size"] = size
    return overrides


def _validation_steps(config, valid_tokens, pipelines):
    """Batches per validation pass: every pipeline must fill them from its windows."""
    valid_windows = (valid_tokens - 1) // config.sequence_length // pipelines
    steps = min(config.eval_steps, valid_windows * pipelines // config.batch_size)
    if steps < 1:
        source = ("validation_files:" if config.validation_files else
                  f"validation_books={config.validation_books}:" if config.validation_books
                  else f"validation_fraction={config.validation_fraction}:")
        raise ConfigError(
            f"{source} the validation text ({valid_tokens} tokens) is smaller than one "
            f"batch of batch_size={config.batch_size} x sequence_length="
            f"{config.sequence_length}"
            + (f" for each of {pipelines} input pipelines" if pipelines > 1 else "")
            + "; hold out more text or pass bigger validation_files."
        )
    return steps


def _pretrain_locked(config, distribution, jit_compile, start, callbacks):
    import keras

    from gpt1_keras.data import corpus
    from gpt1_keras.data.lm_dataset import make_lm_dataset
    from gpt1_keras.models import GPT1CausalLM
    from gpt1_keras.models import build_backbone
    from gpt1_keras.models.preset_loading import save_preset
    from gpt1_keras.preprocessing import GPT1CausalLMPreprocessor
    from gpt1_keras.saving import atomic_save_model
    from gpt1_keras.training import trainer

    config_dict = _check_resume_compatible(config)
    train_files, valid_files, split_info = _prepare_data(config)
    tokenizer = _tokenizer(config, train_files, distribution)
    keras.mixed_precision.set_global_policy(config.precision)
    backbone_overrides = _backbone_overrides(config, tokenizer)
    vocabulary_size = backbone_overrides["vocabulary_size"]

    # Token statistics: validation size, epochs -> steps, the unigram baseline.
    valid_counts = corpus.token_counts(valid_files, tokenizer, vocabulary_size)
    train_counts = corpus.token_counts(train_files, tokenizer, vocabulary_size,
                                       max_tokens=_MAX_COUNTED_TRAIN_TOKENS)
    if config.train_steps is not None:
        train_steps = config.train_steps
    else:
        train_steps = max(1, math.ceil(config.epochs * train_counts.sum()
                                       / (config.batch_size * config.sequence_length)))
    warmup_steps = config.warmup_for(train_steps)
    validation_steps = _validation_steps(config, int(valid_counts.sum()),
                                         distribution.num_input_pipelines)

    if config.zero_shot_probes:
        from gpt1_keras.evaluation.zero_shot_callback import ZeroShotProbes

        # Read and checked now, before training; only the chief scores.
        callbacks = [ZeroShotProbes(tokenizer, config.zero_shot_probes,
                                    split=config.zero_shot_split,
                                    max_examples=config.zero_shot_examples,
                                    enabled=distribution.is_chief), *callbacks]

    def dataset_fn(files, train):
        def fn(input_context):
            return make_lm_dataset(
                list(files), tokenizer,
                sequence_length=config.sequence_length,
                batch_size=config.batch_size,
                shuffle=train, seed=config.seed, repeat=train,
                drop_remainder=True, input_context=input_context,
                errors="replace",
            )
        return fn

    def build_model():
        keras.utils.set_random_seed(config.seed)
        backbone = build_backbone(config.architecture, config.preset, **backbone_overrides)
        return GPT1CausalLM(backbone)

    train_config = trainer.TrainConfig(
        model_dir=config.model_dir,
        train_steps=train_steps,
        global_batch_size=config.batch_size,
        sequence_length=config.sequence_length,
        learning_rate=config.learning_rate,
        schedule=config.schedule,
        warmup_steps=warmup_steps,
        weight_decay=config.weight_decay,
        clip_norm=config.clip_norm,
        steps_per_epoch=config.steps_per_epoch,
        validation_steps=validation_steps,
        checkpoint_every=config.checkpoint_every,
        keep_checkpoints=config.keep_checkpoints,
        jit_compile=jit_compile,
    )
    if distribution.is_chief:
        corpus.atomic_write_text(os.path.join(config.model_dir, "config.json"),
                                 json.dumps(config_dict, indent=2))
    logging.info("Pretraining %s for %d steps in %s (strategy %s, %d replica(s)).",
                 config.preset, train_steps, config.model_dir, distribution.name,
                 distribution.num_replicas)
    result = trainer.train(
        build_model,
        dataset_fn(train_files, train=True),
        train_config,
        val_dataset_fn=dataset_fn(valid_files, train=False),
        distribution=distribution,
        callbacks=callbacks,
        compile_kwargs={"loss_chunk_size": LOSS_CHUNK_SIZE},
        checkpoint_metadata={"preset": config.preset, "seed": config.seed},
    )
    if not distribution.is_chief:
        return None
    lm = result.model
    # The saved model carries its tokenizer (`model.keras` holds the vocabulary and
    # merges): evaluation, export, fine-tuning and `generate` read text with it.
    preprocessor = GPT1CausalLMPreprocessor(tokenizer, sequence_length=config.sequence_length)
    model_path = atomic_save_model(GPT1CausalLM(lm.backbone, preprocessor),
                                   os.path.join(config.model_dir, "model.keras"))
    # A keras-hub preset: what `from_preset` (and keras-hub's) loads, weights included.
    save_preset(os.path.join(config.model_dir, "preset"), lm, tokenizer)

    # === Reporting: the model and checkpoints are safe; nothing here fails the run ===
    from gpt1_keras.evaluation.unigram import unigram_perplexity

    history = result.history
    last = history[-1] if history else {}
    unigram = unigram_perplexity(train_counts, valid_counts)
    metrics = {
        "preset": config.preset,
        "parameters": int(lm.count_params()),
        "vocabulary_size": vocabulary_size,
        "final_step": result.final_step,
        "resumed_from_step": result.initial_step,
        "train_loss": last.get("loss"),
        "train_perplexity": math.exp(last["loss"]) if "loss" in last else None,
        "val_loss": last.get("val_loss"),
        "val_perplexity": math.exp(last["val_loss"]) if "val_loss" in last else None,
        "unigram_val_perplexity": unigram,
        "train_tokens": int(train_counts.sum()),  # Counted up to 20M.
        "validation_tokens": int(validation_steps * config.batch_size * config.sequence_length),
        "tokens_per_second": result.tokens_per_second,
        "tokens_per_step": config.batch_size * config.sequence_length,
        "wall_seconds": time.time() - start,
        "backend": keras.backend.backend(),
        "strategy": distribution.name,
        "replicas": distribution.num_replicas,
        "precision": config.precision,
        "xla": jit_compile,
        "history": [{k: v for k, v in e.items()
                     if k in ("step", "loss", "val_loss", "learning_rate")
                     or k.startswith("zero_shot_")} for e in history],
    }
    if split_info:
        metrics["split"] = split_info
    failures = []

    def report(what, fn):
        try:
            fn()
        except extras.MissingExtraError as e:
            logging.warning("%s not written: %s", what, e)
        except Exception as e:  # noqa: BLE001 (reported; the model is saved)
            failures.append(what)
            logging.error("Writing %s failed (%s: %s); the model was saved at %s and the "
                          "checkpoints are in %s.", what, type(e).__name__, e, model_path,
                          os.path.join(config.model_dir, "checkpoints"))

    report("metrics.json", lambda: corpus.atomic_write_text(
        os.path.join(config.model_dir, "metrics.json"), json.dumps(metrics, indent=2)))
    if history:
        report("loss_curve.png",
               lambda: plot_history(history, os.path.join(config.model_dir, "loss_curve.png")))
    report("samples.txt", lambda: write_samples(lm, tokenizer, config))
    if failures:
        metrics["reporting_failed"] = failures
    logging.info(
        "Done at step %d: val perplexity %.1f (unigram %.1f), %.0f tokens/s. Model: %s",
        result.final_step, metrics["val_perplexity"] or float("nan"), unigram,
        result.tokens_per_second or float("nan"), model_path,
    )
    return metrics


def plot_history(history, path):
    """Plots the train/validation loss of `history` (trainer entries) to a PNG."""
    matplotlib = extras.require("matplotlib", "The loss-curve plot")
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    steps = [e["step"] for e in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, [e["loss"] for e in history], "o-", label="train (epoch mean)")
    if any("val_loss" in e for e in history):
        ax.plot(steps, [e.get("val_loss") for e in history], "s-", label="validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = f"{path}.tmp-{os.getpid()}.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def write_samples(lm, tokenizer, config):
    """Writes `config.num_samples` top-k samples to `samples.txt` (none: removes it).

    Each prompt keeps its last `context - sample_tokens` tokens (the rule of
    `GPT1CausalLMPreprocessor` and the SavedModel `generate`: cut from the left)
    and gets `sample_tokens` new ones from `GPT1CausalLM.generate` with a seeded
    `keras_hub.samplers.TopKSampler(k=40)`, in one batch.
    """
    import keras_hub
    import numpy as np

    from gpt1_keras.data import corpus
    from gpt1_keras.models import GPT1CausalLM

    path = os.path.join(config.model_dir, "samples.txt")
    if not config.num_samples:
        if os.path.exists(path):  # From an earlier run; it would describe another model.
            os.remove(path)
        return
    prompts = [config.sample_prompts[i % len(config.sample_prompts)]
               for i in range(config.num_samples)]
    context = lm.backbone.max_sequence_length
    new_tokens = config.sample_tokens
    first = getattr(tokenizer, "newline_token_id", None)
    if first is None:
        first = tokenizer.start_token_id
    prompt_ids = [(ids or [first])[-(context - new_tokens):]
                  for ids in tokenizer(prompts).to_list()]
    total = max(len(ids) for ids in prompt_ids) + new_tokens
    token_ids = np.zeros((len(prompts), total), "int32")
    for row, ids in enumerate(prompt_ids):
        token_ids[row, : len(ids)] = ids
    mask = np.arange(total)[None, :] < np.array([len(ids) for ids in prompt_ids])[:, None]
    # A generation-only view of the trained model (same weights; `lm` keeps its compile state).
    sampler_lm = GPT1CausalLM(lm.backbone)
    sampler_lm.compile(sampler=keras_hub.samplers.TopKSampler(
        k=min(40, lm.backbone.vocabulary_size), seed=config.seed))
    out = np.asarray(sampler_lm.generate({"token_ids": token_ids, "padding_mask": mask})[
        "token_ids"])
    rows = [out[row, : len(ids) + new_tokens].tolist() for row, ids in enumerate(prompt_ids)]
    samples = [t.decode("utf-8", "replace") for t in tokenizer.detokenize(rows).numpy()]
    corpus.atomic_write_text(
        path,
        "".join(f"--- sample {i + 1} (prompt {p!r}, top-k 40)\n{s}\n\n"
                for i, (p, s) in enumerate(zip(prompts, samples))),
    )
