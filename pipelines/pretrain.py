r"""Pretrains a GPT-1 language model (paper section 4.1) with `model.fit`; resumable.

Usage:
  bazel run //pipelines:pretrain                       # gpt1_small on tinyshakespeare
  bazel run //pipelines:pretrain -- --config=paper --train_files='/data/books/*.txt' \
      --model_dir=/runs/gpt1 --strategy=mirrored
  TF_CONFIG='{"cluster": {"worker": ["h1:2222", "h2:2222"]}, "task": {"type": "worker",
      "index": 0}}' bazel run //pipelines:pretrain -- --strategy=multi_worker ...

Restarting with the same flags and `--model_dir` resumes from the last good checkpoint.
The model directory ends up holding `checkpoints/`, `logs/` (TensorBoard),
`history.jsonl`, `model.keras`, `metrics.json`, `loss_curve.png`, `samples.txt`,
`config.json`, and `data/` (the train/validation split when one was made).

Named configurations (`--config`); any flag given explicitly overrides them:
  small  gpt1_small, 8 x 128 tokens, peak lr 1e-3 after 250 warm-up updates, 300 updates
         (about 6 minutes on 2 cores). The long warm-up matters: a post-LN GPT-1 whose
         learning rate rises faster (e.g. to 1e-3 in 150 updates, or to 6e-4 in 15) settles
         at the unigram distribution and stays there (BENCHMARKS.md, "Pretraining").
  paper  gpt1, 64 x 512 tokens, peak lr 2.5e-4, 2,000 warm-up updates, 100 epochs
"""

import dataclasses
import json
import math
import os
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging

_CONFIGS = {
    "small": dict(
        preset="gpt1_small", batch_size=8, sequence_length=128, learning_rate=1e-3,
        warmup_steps=250, train_steps=300, epochs=None, steps_per_eval=50,
        checkpoint_every=50, keep_checkpoints=2, eval_steps=12,
    ),
    "paper": dict(
        preset="gpt1", batch_size=64, sequence_length=512, learning_rate=2.5e-4,
        warmup_steps=2000, train_steps=None, epochs=100.0, steps_per_eval=1000,
        checkpoint_every=1000, keep_checkpoints=3, eval_steps=100,
    ),
}

_CONFIG = flags.DEFINE_enum("config", "small", list(_CONFIGS), "Named training configuration.")
_PRESET = flags.DEFINE_string("preset", None, "Model preset: gpt1, gpt1_small, gpt1_tiny.")
_OVERRIDES = flags.DEFINE_list(
    "model_overrides", [], "Backbone arguments to override, e.g. num_layers=4,dropout=0.0."
)
_TRAIN_FILES = flags.DEFINE_list(
    "train_files", None, "Training text files or globs (default: the embedded tinyshakespeare)."
)
_VALIDATION_FILES = flags.DEFINE_list(
    "validation_files", None, "Validation files or globs (default: split off the training text)."
)
_VALIDATION_FRACTION = flags.DEFINE_float(
    "validation_fraction", 0.05,
    "Without --validation_files: the last fraction of the training lines held out.",
)
_MODEL_DIR = flags.DEFINE_string(
    "model_dir", os.path.join(tempfile.gettempdir(), "gpt1_keras", "pretrain"),
    "Checkpoints, logs and artifacts; rerun with the same value to resume.",
)
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", None, "Total optimizer updates.")
_EPOCHS = flags.DEFINE_float("epochs", None, "Passes over the training tokens (if no --train_steps).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "Global batch size (sequences per update).")
_SEQUENCE_LENGTH = flags.DEFINE_integer("sequence_length", None, "Tokens per sequence.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", None, "Peak learning rate.")
_SCHEDULE = flags.DEFINE_enum("schedule", "cosine", ["cosine", "linear", "constant"],
                              "cosine: warm-up + cosine to 0 (paper); linear: warmup_linear.")
_WARMUP_STEPS = flags.DEFINE_integer("warmup_steps", None, "Linear warm-up updates.")
_WEIGHT_DECAY = flags.DEFINE_float("weight_decay", 0.01, "Decoupled L2 on weights of rank > 1.")
_CLIP_NORM = flags.DEFINE_float("clip_norm", 1.0, "Global gradient-norm clip (0: off).")
_PRECISION = flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"],
                               "Keras dtype policy.")
_XLA = flags.DEFINE_bool("xla", None, "Compile the train step with XLA (default: on for TF/JAX).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of initialisation, dropout and data order.")
_DETERMINISTIC = flags.DEFINE_bool(
    "deterministic", False, "TF op determinism (bitwise-reproducible runs and resumes; slower)."
)
_CHECKPOINT_EVERY = flags.DEFINE_integer("checkpoint_every", None, "Updates between checkpoints.")
_KEEP_CHECKPOINTS = flags.DEFINE_integer("keep_checkpoints", None, "Newest checkpoints kept.")
_STEPS_PER_EVAL = flags.DEFINE_integer("steps_per_eval", None, "Updates between validation passes.")
_EVAL_STEPS = flags.DEFINE_integer("eval_steps", None, "Max batches per validation pass.")
_STRATEGY = flags.DEFINE_enum(
    "strategy", "default", ["default", "mirrored", "data_parallel", "multi_worker", "tpu"],
    "default: one device; mirrored: all local devices; multi_worker: TF_CONFIG; "
    "tpu: --tpu; data_parallel: keras.distribution.DataParallel on JAX (needs --xla).",
)
_TPU = flags.DEFINE_string("tpu", None, "TPU name or address for --strategy=tpu.")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 1, "Split the CPU into this many logical devices (TF; for mirrored on CPU)."
)
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 3, "Generated samples written at the end.")
_SAMPLE_TOKENS = flags.DEFINE_integer("sample_tokens", 40, "Tokens generated per sample.")

_SAMPLE_PROMPTS = ("ROMEO:", "First Citizen:", "The king")


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Every setting of a pretraining run, from the flags."""

    preset: str
    model_overrides: tuple
    train_files: tuple
    validation_files: tuple | None
    validation_fraction: float
    model_dir: str
    train_steps: int | None
    epochs: float | None
    batch_size: int
    sequence_length: int
    learning_rate: float
    schedule: str
    warmup_steps: int
    warmup_steps_given: bool  # False: the named default, cut to the run's length.
    weight_decay: float
    clip_norm: float
    precision: str
    xla: bool
    seed: int
    deterministic: bool
    checkpoint_every: int
    keep_checkpoints: int
    steps_per_eval: int
    eval_steps: int
    strategy: str
    tpu: str | None
    cpu_devices: int
    num_samples: int
    sample_tokens: int

    # Changing these between restarts would make the resumed run a different run.
    RESUME_KEYS = ("preset", "model_overrides", "train_files", "validation_files",
                   "validation_fraction", "batch_size", "sequence_length", "seed")


def _flag(holder, default):
    return holder.value if holder.present else default


def _parse_overrides(items):
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise app.UsageError(f"--model_overrides entries must be key=value. Received: {item!r}")
        try:
            overrides[key.strip()] = json.loads(value)
        except ValueError:
            overrides[key.strip()] = value
    return overrides


def parse_flags():
    """Validates the flags into a `PretrainConfig`; errors name the flag at fault."""
    from gpt1_keras.data.lm_dataset import default_corpus_path
    from gpt1_keras.data.lm_dataset import resolve_files
    from gpt1_keras.models.gpt1_presets import get_preset

    named = _CONFIGS[_CONFIG.value]
    preset = _flag(_PRESET, named["preset"])
    try:
        arch = get_preset(preset)
    except ValueError as e:
        raise app.UsageError(f"--preset: {e}") from e
    overrides = _parse_overrides(_OVERRIDES.value)
    unknown = sorted(set(overrides) - set(arch))
    if unknown:
        raise app.UsageError(
            f"--model_overrides: unknown backbone arguments {unknown}; known: {sorted(arch)}"
        )
    arch.update(overrides)

    def files(holder, default):
        patterns = holder.value if holder.value else default
        if patterns is None:
            return None
        try:
            return tuple(resolve_files(patterns))
        except (FileNotFoundError, IsADirectoryError, ValueError) as e:
            raise app.UsageError(f"--{holder.name}: {e}") from e

    train_files = files(_TRAIN_FILES, [default_corpus_path()])
    validation_files = files(_VALIDATION_FILES, None)
    if validation_files is None and not 0 < _VALIDATION_FRACTION.value < 1:
        raise app.UsageError(
            f"--validation_fraction must be in (0, 1). Received: {_VALIDATION_FRACTION.value}"
        )

    sequence_length = _flag(_SEQUENCE_LENGTH, named["sequence_length"])
    if not 1 <= sequence_length <= arch["max_sequence_length"]:
        raise app.UsageError(
            f"--sequence_length={sequence_length} must be in [1, {arch['max_sequence_length']}], "
            f"the context of --preset={preset} (max_sequence_length)."
        )
    train_steps = _flag(_TRAIN_STEPS, None if _EPOCHS.present else named["train_steps"])
    epochs = _flag(_EPOCHS, None if _TRAIN_STEPS.present else named["epochs"])
    positive = {
        "batch_size": _flag(_BATCH_SIZE, named["batch_size"]),
        "checkpoint_every": _flag(_CHECKPOINT_EVERY, named["checkpoint_every"]),
        "keep_checkpoints": _flag(_KEEP_CHECKPOINTS, named["keep_checkpoints"]),
        "steps_per_eval": _flag(_STEPS_PER_EVAL, named["steps_per_eval"]),
        "eval_steps": _flag(_EVAL_STEPS, named["eval_steps"]),
        "cpu_devices": _CPU_DEVICES.value,
    }
    if train_steps is not None:
        positive["train_steps"] = train_steps
    for name, value in positive.items():
        if value < 1:
            raise app.UsageError(f"--{name} must be >= 1. Received: {value}")
    if epochs is not None and epochs <= 0:
        raise app.UsageError(f"--epochs must be > 0. Received: {epochs}")
    learning_rate = _flag(_LEARNING_RATE, named["learning_rate"])
    if learning_rate <= 0:
        raise app.UsageError(f"--learning_rate must be > 0. Received: {learning_rate}")
    warmup_steps = _WARMUP_STEPS.value
    if not _WARMUP_STEPS.present:  # The named default; a shorter run warms up throughout.
        warmup_steps = named["warmup_steps"]
        if train_steps is not None:
            warmup_steps = min(warmup_steps, train_steps)
    if warmup_steps < 0 or (train_steps is not None and warmup_steps > train_steps):
        raise app.UsageError(
            f"--warmup_steps must be in [0, --train_steps]. Received: {warmup_steps}"
        )
    for holder in (_WEIGHT_DECAY, _CLIP_NORM):
        if holder.value < 0:
            raise app.UsageError(f"--{holder.name} must be >= 0. Received: {holder.value}")
    if _STRATEGY.value == "tpu" and not _TPU.value:
        raise app.UsageError("--strategy=tpu needs --tpu (TPU name, address or 'local').")
    return PretrainConfig(
        preset=preset,
        model_overrides=tuple(sorted(overrides.items())),
        train_files=train_files,
        validation_files=validation_files,
        validation_fraction=_VALIDATION_FRACTION.value,
        model_dir=os.path.abspath(_MODEL_DIR.value),
        train_steps=train_steps,
        epochs=epochs,
        batch_size=positive["batch_size"],
        sequence_length=sequence_length,
        learning_rate=learning_rate,
        schedule=_SCHEDULE.value,
        warmup_steps=warmup_steps,
        warmup_steps_given=_WARMUP_STEPS.present,
        weight_decay=_WEIGHT_DECAY.value,
        clip_norm=_CLIP_NORM.value,
        precision=_PRECISION.value,
        xla=_XLA.value,
        seed=_SEED.value,
        deterministic=_DETERMINISTIC.value,
        checkpoint_every=positive["checkpoint_every"],
        keep_checkpoints=positive["keep_checkpoints"],
        steps_per_eval=positive["steps_per_eval"],
        eval_steps=positive["eval_steps"],
        strategy=_STRATEGY.value,
        tpu=_TPU.value,
        cpu_devices=positive["cpu_devices"],
        num_samples=_NUM_SAMPLES.value,
        sample_tokens=_SAMPLE_TOKENS.value,
    )


# -- helpers -----------------------------------------------------------------------


def _atomic_write_text(path, text):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _check_resume_compatible(config):
    """Refuses to resume a model directory made with different data/model flags."""
    path = os.path.join(config.model_dir, "config.json")
    current = json.loads(json.dumps(dataclasses.asdict(config)))
    if os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
        changed = [k for k in PretrainConfig.RESUME_KEYS if previous.get(k) != current[k]]
        checkpoints = os.path.join(config.model_dir, "checkpoints")
        if changed and os.path.isdir(checkpoints) and os.listdir(checkpoints):
            raise app.UsageError(
                f"--model_dir={config.model_dir} holds a run with different "
                + ", ".join(f"--{k} (was {previous.get(k)!r}, now {current[k]!r})" for k in changed)
                + ". Use another --model_dir, or the same flags to resume."
            )
    return current


def _split_corpus(files, fraction, data_dir):
    """Writes the first (1 - fraction) of the lines to train.txt, the rest to valid.txt."""
    lines = []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines.extend(f.read().splitlines())
    cut = int(len(lines) * (1 - fraction))
    if cut <= 0 or cut >= len(lines):
        raise app.UsageError(
            f"--validation_fraction={fraction} leaves an empty split of {len(lines)} lines."
        )
    os.makedirs(data_dir, exist_ok=True)
    train_path = os.path.join(data_dir, "train.txt")
    valid_path = os.path.join(data_dir, "valid.txt")
    _atomic_write_text(train_path, "\n".join(lines[:cut]) + "\n")
    _atomic_write_text(valid_path, "\n".join(lines[cut:]) + "\n")
    return (train_path,), (valid_path,)


def _token_counts(files, tokenizer, vocabulary_size, max_tokens=None):
    import numpy as np

    from gpt1_keras.data.lm_dataset import make_token_stream

    counts = np.zeros([vocabulary_size], np.int64)
    for chunk in make_token_stream(list(files), tokenizer).as_numpy_iterator():
        counts += np.bincount(chunk, minlength=vocabulary_size)
        if max_tokens and counts.sum() >= max_tokens:
            break
    return counts


def _unigram_perplexity(train_counts, valid_counts):
    """Perplexity on the validation tokens of the add-one unigram model of the training set."""
    import numpy as np

    probs = (train_counts + 1) / (train_counts.sum() + len(train_counts))
    return float(np.exp(-(valid_counts * np.log(probs)).sum() / valid_counts.sum()))


def _plot(history, path):
    import matplotlib

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


# -- main --------------------------------------------------------------------------


def run(config):
    """Runs (or resumes) pretraining; returns the metrics dict (chief) or None."""
    start = time.time()
    if config.cpu_devices > 1:
        import keras  # noqa: F401 (backend selection)

        if keras.backend.backend() == "tensorflow":
            from gpt1_keras.training import tf_distribute

            tf_distribute.split_cpu(config.cpu_devices)
    import keras
    import numpy as np
    import tensorflow as tf

    from gpt1_keras.data.lm_dataset import make_lm_dataset
    from gpt1_keras.models import GPT1CausalLM
    from gpt1_keras.tokenizers import GPT1Tokenizer
    from gpt1_keras import training

    if config.deterministic and keras.backend.backend() == "tensorflow":
        tf.config.experimental.enable_op_determinism()
    try:
        distribution = training.make_distribution(config.strategy, config.tpu)
    except ValueError as e:
        raise app.UsageError(f"--strategy: {e}") from e
    if config.batch_size % distribution.num_replicas:
        raise app.UsageError(
            f"--batch_size={config.batch_size} is not divisible by the {distribution.num_replicas} "
            f"replicas of --strategy={config.strategy}."
        )
    backend = keras.backend.backend()
    xla = config.xla if config.xla is not None else backend in ("tensorflow", "jax")
    try:
        distribution.check_jit_compile(xla)
    except ValueError as e:
        raise app.UsageError(f"--noxla with --strategy={config.strategy}: {e}") from e
    os.makedirs(config.model_dir, exist_ok=True)
    config_dict = _check_resume_compatible(config)

    tokenizer = GPT1Tokenizer()
    if config.validation_files:
        train_files, valid_files = config.train_files, config.validation_files
    else:
        train_files, valid_files = _split_corpus(
            config.train_files, config.validation_fraction,
            os.path.join(config.model_dir, "data"),
        )
    keras.mixed_precision.set_global_policy(config.precision)
    from gpt1_keras.models.gpt1_presets import get_preset

    arch = get_preset(config.preset)
    arch.update(dict(config.model_overrides))
    vocabulary_size = arch["vocabulary_size"]

    # Token statistics: validation size, epochs -> steps, the unigram baseline.
    valid_counts = _token_counts(valid_files, tokenizer, vocabulary_size)
    train_counts = _token_counts(train_files, tokenizer, vocabulary_size, max_tokens=20_000_000)
    if config.train_steps is not None:
        train_steps = config.train_steps
    else:
        train_steps = max(1, math.ceil(config.epochs * train_counts.sum()
                                       / (config.batch_size * config.sequence_length)))
    pipelines = 1  # Input pipelines (processes); each reads 1/pipelines of the windows.
    if config.strategy == "multi_worker":
        from gpt1_keras.training import tf_distribute

        cluster = tf_distribute.read_tf_config()["cluster"]
        pipelines = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    valid_windows = (int(valid_counts.sum()) - 1) // config.sequence_length // pipelines
    validation_steps = min(config.eval_steps, valid_windows * pipelines // config.batch_size)
    if validation_steps < 1:
        raise app.UsageError(
            f"The validation text ({int(valid_counts.sum())} tokens) is smaller than one batch "
            f"of --batch_size={config.batch_size} x --sequence_length={config.sequence_length}; "
            "raise --validation_fraction or pass bigger --validation_files."
        )
    warmup_steps = config.warmup_steps
    if not config.warmup_steps_given:  # --epochs: the default warm-up, at most the run.
        warmup_steps = min(warmup_steps, train_steps)
    elif warmup_steps > train_steps:
        raise app.UsageError(
            f"--warmup_steps={warmup_steps} exceeds the {train_steps} training steps."
        )

    def dataset_fn(files, train):
        def fn(input_context):
            return make_lm_dataset(
                list(files), tokenizer,
                context_length=config.sequence_length,
                batch_size=config.batch_size,
                shuffle=train, seed=config.seed, repeat=train,
                drop_remainder=True, input_context=input_context,
            )
        return fn

    def build_model():
        keras.utils.set_random_seed(config.seed)
        return GPT1CausalLM.from_preset(config.preset, **dict(config.model_overrides))

    train_config = training.TrainConfig(
        model_dir=config.model_dir,
        train_steps=train_steps,
        global_batch_size=config.batch_size,
        sequence_length=config.sequence_length,
        learning_rate=config.learning_rate,
        schedule=config.schedule,
        warmup_steps=warmup_steps,
        weight_decay=config.weight_decay,
        clip_norm=config.clip_norm,
        steps_per_epoch=config.steps_per_eval,
        validation_steps=validation_steps,
        checkpoint_every=config.checkpoint_every,
        keep_checkpoints=config.keep_checkpoints,
        jit_compile=xla,
    )
    if distribution.is_chief:
        _atomic_write_text(os.path.join(config.model_dir, "config.json"),
                           json.dumps(config_dict, indent=2))
    logging.info("Pretraining %s for %d steps in %s (strategy %s, %d replica(s)).",
                 config.preset, train_steps, config.model_dir, distribution.name,
                 distribution.num_replicas)
    try:
        result = training.train(
            build_model,
            dataset_fn(train_files, train=True),
            train_config,
            val_dataset_fn=dataset_fn(valid_files, train=False),
            distribution=distribution,
            checkpoint_metadata={"preset": config.preset, "seed": config.seed},
        )
    except training.NonFiniteLossError as e:
        logging.error("%s", e)
        print(f"ERROR: {e}", file=sys.stderr)
        sys.exit(3)

    if not distribution.is_chief:
        return None
    lm = result.model
    partial = os.path.join(config.model_dir, f"model.tmp-{os.getpid()}.keras")
    lm.save(partial)
    os.replace(partial, os.path.join(config.model_dir, "model.keras"))

    history = result.history
    last = history[-1] if history else {}
    unigram = _unigram_perplexity(train_counts, valid_counts)
    metrics = {
        "preset": config.preset,
        "parameters": int(lm.count_params()),
        "final_step": result.final_step,
        "resumed_from_step": result.initial_step,
        "train_loss": last.get("loss"),
        "train_perplexity": math.exp(last["loss"]) if "loss" in last else None,
        "val_loss": last.get("val_loss"),
        "val_perplexity": math.exp(last["val_loss"]) if "val_loss" in last else None,
        "unigram_val_perplexity": unigram,
        "validation_tokens": int(validation_steps * config.batch_size * config.sequence_length),
        "tokens_per_second": result.tokens_per_second,
        "tokens_per_step": config.batch_size * config.sequence_length,
        "wall_seconds": time.time() - start,
        "backend": backend,
        "strategy": distribution.name,
        "replicas": distribution.num_replicas,
        "precision": config.precision,
        "xla": xla,
        "history": [{k: e.get(k) for k in ("step", "loss", "val_loss", "learning_rate")}
                    for e in history],
    }
    _atomic_write_text(os.path.join(config.model_dir, "metrics.json"),
                       json.dumps(metrics, indent=2))
    if history:
        _plot(history, os.path.join(config.model_dir, "loss_curve.png"))
    prompts = [_SAMPLE_PROMPTS[i % len(_SAMPLE_PROMPTS)] for i in range(config.num_samples)]
    samples = training.generate_text(
        lm, tokenizer, prompts, max_new_tokens=config.sample_tokens, seed=config.seed
    )
    _atomic_write_text(
        os.path.join(config.model_dir, "samples.txt"),
        "".join(f"--- sample {i + 1} (prompt {p!r}, top-k 40)\n{s}\n\n"
                for i, (p, s) in enumerate(zip(prompts, samples))),
    )
    logging.info(
        "Done at step %d: val perplexity %.1f (unigram %.1f), %.0f tokens/s. Artifacts in %s",
        result.final_step, metrics["val_perplexity"] or float("nan"), unigram,
        result.tokens_per_second or float("nan"), config.model_dir,
    )
    return metrics


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = parse_flags()
    run(config)


if __name__ == "__main__":
    app.run(main)
