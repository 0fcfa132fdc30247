"""Fine-tuning GPT-1 on a task (paper section 3.2) and evaluating it.

`finetune(config)` reads the task's splits, makes the task's
`GPT1ClassifierPreprocessor` (tokenizer, input transform, sequence length,
label names), builds a `GPT1Classifier` carrying it on a pretrained (or, for
the ablations, partly or wholly fresh) backbone, maps the preprocessor over the
training data (`ds.map(preprocessor, num_parallel_calls=AUTOTUNE)`), trains
with the shared trainer (`gpt1_keras.training.train`: GPT-1's Adam with
decoupled L2, clipping 1, the clamped `warmup_linear` schedule; any
`gpt1_keras.training.STRATEGIES` data parallelism), then writes to
`output_dir` (the chief only):

- `metrics.json`: each labelled evaluation split's metrics (the task's, e.g.
  Matthews correlation for CoLA) and example count, plus the configuration;
- `predictions/<split>.tsv` for every split evaluated or predicted, and for
  test splits the GLUE submission file (`predictions/MNLI-m.tsv`, ...) in
  GLUE's `index\\tprediction` format;
- `model.keras`: the fine-tuned classifier with its preprocessor (so its
  predictions carry the label names, in Keras and in the SavedModel export),
  plus the trainer's checkpoints and logs;
- `preset/`: the same classifier as a keras-hub preset directory, written
  atomically (`preset_loading.save_preset` of its `save_to_preset`: backbone
  config and weights, head weights, preprocessor
  with its head, sequence length and label names, tokenizer and its
  vocabulary), which `GPT1Classifier.from_preset` and
  `keras_hub.models.TextClassifier.from_preset` load, and whose backbone
  `GPT1Backbone.from_preset` reads to fine-tune again.

The run holds `RunLock(output_dir, "finetune")`; run again with the same
config, it resumes from the newest checkpoint. Without dev files (GLUE's
are not always at hand), `validation_fraction` holds out a seeded part of the
training file (`gpt1_keras.tasks.splits`); `evaluate_run(output_dir,
data_dir)` later scores the finished model on another labelled split, e.g. the
official `dev.tsv`, without retraining.

TensorFlow is used for the input pipeline (the tokenizer runs in `tf.data`);
the model trains on any Keras backend.
"""

import contextlib
import dataclasses
import json
import math
import os

import keras
import numpy as np
from absl import logging

from gpt1_keras.errors import ConfigError
from gpt1_keras.models.architectures import ARCHITECTURES
from gpt1_keras.tasks import metrics as metrics_lib
from gpt1_keras.tasks import registry
from gpt1_keras.tasks.predictions import write_metrics
from gpt1_keras.tasks.predictions import write_predictions
from gpt1_keras.training.distribution import STRATEGIES

TASK_NAMES = tuple(registry.TASKS) + ("csv",)
CSV_HEADS = ("classification", "entailment", "similarity")
METRICS_FILE = "metrics.json"
EVAL_METRICS_FILE = "eval_metrics.json"
MODEL_FILE = "model.keras"
PRESET_DIR = "preset"
VALIDATION_SPLIT = "validation"


def config_error(field, message):
    """A `ConfigError` whose message starts with the setting's name (a binary prefixes
    `--`, naming its flag)."""
    return ConfigError(f"{field}: {message}")


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """What `finetune` does (the paper's recipe by default). Each field is the
    `//pipelines:finetune` flag of the same name.

    Attributes:
        task: a name of `TASK_NAMES` (`"csv"`: user files, see the `csv_*`
            fields), or `None` when a `TaskSpec` is passed to `finetune`.
        data_dir: the task's files.
        output_dir: where results, checkpoints and the model go.
        init_checkpoint: a `.keras` file holding a `GPT1CausalLM`, a
            `GPT1Classifier` or a backbone of any of `ARCHITECTURES` (e.g. from
            `//pipelines:convert` or `//pipelines:pretrain`, the LSTM baseline
            included), a run directory holding `model.keras`, or a preset: a
            preset directory (a run's `preset/`),
            `"hf://openai-community/openai-gpt"`, a local Hugging Face
            checkpoint directory, a `"kaggle://"` handle. Required unless
            `no_pretraining`. Its tokenizer (saved with it) is the run's.
        preset: the backbone's size when there is no checkpoint.
        architecture: a name of `ARCHITECTURES` (`"transformer"`, `"lstm"`) or
            `None`. The rule: a checkpoint's backbone decides (an explicit
            `architecture` that disagrees is a `ConfigError`); without one,
            `architecture` and `preset` together (`preset` mapped to that
            architecture's equal-size preset, e.g. `gpt1_tiny` -> `lstm_tiny`),
            and `None` means the preset's own architecture.
        no_pretraining: train from random weights (Table 5 ablation); with a
            checkpoint, its architecture is used but not its weights.
        layers_to_transfer: transfer the embeddings and the first N blocks,
            the rest fresh (Figure 2 left); `-1`: all. The LSTM (one layer):
            `0` (the embedding only) or `1`/`-1` (everything).
        learning_rate, batch_size, epochs, warmup_fraction, weight_decay,
        clip_norm: the optimisation (6.25e-5, 32, 3, 0.002, 0.01, 1.0).
        lm_coef: the auxiliary LM loss weight (0.5; 0 disables).
        classifier_dropout: dropout before the head (0.1).
        sequence_length: tokens per sequence (texts trimmed longest-first).
        seed: shuffling, initialisation and held-out split seed.
        max_train_examples, max_eval_examples: cut the splits (0: all), for
            quick runs (the training cut comes after the held-out split).
        eval_batch_size: batch size of evaluation and prediction.
        validation_fraction: `0`: evaluate on the task's labelled dev/test
            files. In (0, 1): hold out that fraction of the training file
            (seeded, identical inputs on one side) as the `"validation"`
            split and read no other labelled file.
        strategy: data parallelism, one of `STRATEGIES` (`"mirrored"` over
            local devices, `"multi_worker"` from `TF_CONFIG`, ...).
        jit_compile: compile the train step with XLA (flag alias `--xla`).
        text_columns, label_column, labels, csv_head, csv_delimiter: `task="csv"`
            only: one (classification) or two text columns; the label column;
            the label values in class order (default: sorted, from
            `train.csv`); the head (default: by the number of text columns);
            the field separator.
        verbose: `fit`'s verbosity (not a flag).
    """

    task: str | None = None
    data_dir: str | None = None
    output_dir: str | None = None
    init_checkpoint: str | None = None
    preset: str = "gpt1"
    architecture: str | None = None
    no_pretraining: bool = False
    layers_to_transfer: int = -1
    learning_rate: float = 6.25e-5
    batch_size: int = 32
    epochs: int = 3
    warmup_fraction: float = 0.002
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    lm_coef: float = 0.5
    classifier_dropout: float = 0.1
    sequence_length: int = 512
    seed: int = 42
    max_train_examples: int = 0
    max_eval_examples: int = 0
    eval_batch_size: int = 64
    validation_fraction: float = 0.0
    strategy: str = "default"
    jit_compile: bool = False
    text_columns: tuple | None = None
    label_column: str = "label"
    labels: tuple | None = None
    csv_head: str | None = None
    csv_delimiter: str = ","
    verbose: object = 2

    def __post_init__(self):
        for name in ("data_dir", "output_dir"):
            if not getattr(self, name):
                raise config_error(name, "is required.")
        if self.task is not None and self.task not in TASK_NAMES:
            raise config_error("task", f"must be one of {', '.join(TASK_NAMES)}. "
                               f"Received: task={self.task!r}")
        if not self.no_pretraining and not self.init_checkpoint:
            raise config_error(
                "init_checkpoint", "a pretrained .keras file or preset is required "
                "unless no_pretraining is set.")
        for name in ("batch_size", "epochs", "sequence_length", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise config_error(name, f"must be >= 1. Received: {name}={getattr(self, name)}")
        for name in ("max_train_examples", "max_eval_examples"):
            if getattr(self, name) < 0:
                raise config_error(name, f"must be >= 0 (0: all). Received: "
                                   f"{name}={getattr(self, name)}")
        if self.layers_to_transfer < -1:
            raise config_error(
                "layers_to_transfer", "must be -1 (all) or >= 0. Received: "
                f"layers_to_transfer={self.layers_to_transfer}")
        if not 0 <= self.warmup_fraction <= 1:
            raise config_error("warmup_fraction", f"must be in [0, 1]. Received: "
                               f"{self.warmup_fraction}")
        if not 0 <= self.validation_fraction < 1:
            raise config_error("validation_fraction", "must be in [0, 1) (0: the task's "
                               f"dev files). Received: {self.validation_fraction}")
        if self.architecture is not None and self.architecture not in ARCHITECTURES:
            raise config_error(
                "architecture", f"must be one of {', '.join(ARCHITECTURES)}. "
                f"Received: architecture={self.architecture!r}")
        if self.strategy not in STRATEGIES:
            raise config_error("strategy", f"must be one of {', '.join(STRATEGIES)}. "
                               f"Received: strategy={self.strategy!r}")
        if self.task == "csv":
            if not self.text_columns or len(self.text_columns) > 2:
                raise config_error("text_columns", "task=csv needs one or two text column "
                                   f"names. Received: text_columns={self.text_columns}")
            if self.csv_head is not None and self.csv_head not in CSV_HEADS:
                raise config_error("csv_head", f"must be one of {', '.join(CSV_HEADS)}. "
                                   f"Received: csv_head={self.csv_head!r}")
        for name in ("text_columns", "labels"):  # Lists (from flags) as tuples.
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))


def make_task(config):
    """The `TaskSpec` that `config.task` names (for `"csv"`, built from the csv fields).

    Raises:
        ConfigError: no task, or a bad csv setting.
        FileNotFoundError: `csv` without `labels` and no `train.csv` to read them from.
    """
    from gpt1_keras.tasks.base import require_files
    from gpt1_keras.tasks.csv_task import csv_labels

    if config.task is None:
        raise config_error("task", "is required (or pass a TaskSpec to finetune).")
    if config.task != "csv":
        return registry.get_task(config.task)
    labels = config.labels
    if labels is None:
        (train,) = require_files("csv", config.data_dir, ["train.csv"])
        labels = csv_labels(train, config.label_column, config.csv_delimiter)
    try:
        return registry.csv_task(config.text_columns, config.label_column, labels,
                                 config.csv_head, config.csv_delimiter)
    except ValueError as e:
        raise config_error("labels" if "labels" in str(e) else "csv_head", str(e)) from None


def architecture_of(backbone):
    """The `ARCHITECTURES` name of a backbone instance."""
    for name, cls in ARCHITECTURES.items():
        if isinstance(backbone, cls):
            return name
    raise ValueError(f"{type(backbone).__name__} is not a backbone of {tuple(ARCHITECTURES)}.")


def load_backbone(path):
    """The backbone (`GPT1Backbone`, `LSTMBackbone`) inside a `.keras` LM, backbone
    or classifier file (or a run directory's `model.keras`), or of a preset: a
    preset directory (e.g. a run's `preset/`), `"hf://openai-community/openai-gpt"`, a
    local Hugging Face checkpoint directory, a `"kaggle://"` handle."""
    from gpt1_keras.saving import load_model_file

    path = _model_file_of_run(path)
    backbones = tuple(ARCHITECTURES.values())
    if "://" in str(path) or os.path.isdir(path):
        import keras_hub

        from gpt1_keras.models import preset_loading

        try:
            return preset_loading.from_preset(keras_hub.models.Backbone, os.fspath(path))
        except (preset_loading.PresetError, preset_loading.PresetNotFoundError) as e:
            raise config_error("init_checkpoint", str(e)) from None
    model = load_model_file(path, what="init_checkpoint")
    backbone = model if isinstance(model, backbones) else getattr(model, "backbone", None)
    if not isinstance(backbone, backbones):
        names = "/".join(cls.__name__ for cls in backbones)
        raise config_error(
            "init_checkpoint", f"{path} holds a {type(model).__name__} without a "
            f"{names}; expected a GPT1CausalLM, GPT1Classifier or one of those backbones.")
    return backbone


def _model_file_of_run(path):
    """A pretraining or fine-tuning run directory -> its `model.keras`; else `path`."""
    path = os.fspath(path)
    model_file = os.path.join(path, MODEL_FILE)
    return model_file if os.path.isdir(path) and os.path.isfile(model_file) else path


def checkpoint_tokenizer(path):
    """The tokenizer saved with a pretrained model, or None when it holds none.

    A preset directory's or handle's (`tokenizer.json`, or a Hugging Face
    checkpoint's vocabulary and merges), a `.keras` file's preprocessor's (what
    `//pipelines:pretrain` saves). GPT-1's own then applies; the classifier checks
    that its id count is the backbone's `vocabulary_size`.
    """
    from gpt1_keras.saving import load_model_file
    from gpt1_keras.tokenizers import GPT1Tokenizer

    path = _model_file_of_run(path)
    if "://" in path:
        return GPT1Tokenizer.from_preset(path)
    if os.path.isdir(path):
        has_files = any(os.path.isfile(os.path.join(path, name))
                        for name in ("tokenizer.json", "vocab.json"))
        return GPT1Tokenizer.from_preset(path) if has_files else None
    preprocessor = getattr(load_model_file(path, what="init_checkpoint"), "preprocessor", None)
    return getattr(preprocessor, "tokenizer", None)


def transfer_layers(source, target, num_layers):
    """Copies the embeddings and the first `num_layers` blocks of `source` into
    `target` (same class and architecture); `-1` copies everything.

    A `GPT1Backbone` has its token and position embeddings and
    `transformer_layers`; an `LSTMBackbone` counts as one layer: `0` copies its
    token embedding, `1` (or `-1`) also the LSTM and the output projection.
    """
    if type(source) is not type(target) or \
            source.get_config() | {"name": None, "dropout": None} != \
            target.get_config() | {"name": None, "dropout": None}:
        raise ValueError("Source and target backbones differ in architecture.")
    if architecture_of(source) == "lstm":
        if num_layers not in (-1, 0, 1):
            raise config_error(
                "layers_to_transfer", "the LSTM baseline is one layer: 0 (the embedding "
                f"only) or 1/-1 (all). Received: layers_to_transfer={num_layers}")
        num_layers = 1 if num_layers == -1 else num_layers
        pairs = [(source.token_embedding, target.token_embedding)]
        if num_layers:
            pairs += [(source.lstm, target.lstm),
                      (source.output_projection, target.output_projection)]
    else:
        total = len(source.transformer_layers)
        if num_layers == -1:
            num_layers = total
        if num_layers > total:
            raise config_error(
                "layers_to_transfer",
                f"layers_to_transfer={num_layers} but the checkpoint has {total} layers.")
        pairs = [(source.token_embedding, target.token_embedding),
                 (source.position_embedding, target.position_embedding)]
        pairs += list(zip(source.transformer_layers[:num_layers],
                          target.transformer_layers[:num_layers]))
    for src, dst in pairs:
        dst.set_weights(src.get_weights())
    return num_layers


def build_backbone(config):
    """The backbone for fine-tuning: pretrained, partly transferred, or fresh.

    Its architecture follows `FinetuneConfig.architecture`'s rule: the
    checkpoint's class, else `architecture` + `preset`.
    """
    from gpt1_keras.models import architectures
    from gpt1_keras.models.gpt1_presets import matching_preset
    from gpt1_keras.models.gpt1_presets import preset_architecture

    if not config.init_checkpoint:
        try:
            architecture = config.architecture or preset_architecture(config.preset)
            preset = matching_preset(config.preset, architecture)
        except ValueError as e:
            raise config_error("preset", str(e)) from None
        return architectures.build_backbone(architecture, preset)
    pretrained = load_backbone(config.init_checkpoint)
    found = architecture_of(pretrained)
    if config.architecture is not None and config.architecture != found:
        raise config_error(
            "architecture", f"architecture={config.architecture!r} but init_checkpoint "
            f"{config.init_checkpoint} holds a {found!r} backbone "
            f"({type(pretrained).__name__}); drop architecture or pass a {config.architecture} "
            "checkpoint.")
    if not config.no_pretraining and config.layers_to_transfer == -1:
        return pretrained
    fresh = type(pretrained).from_config(pretrained.get_config())
    if not config.no_pretraining:
        transfer_layers(pretrained, fresh, config.layers_to_transfer)
    return fresh


def _batches(examples, task, batch_size, config, training=False, input_context=None):
    """Raw `(x, y)` batches of `examples` for `task`'s preprocessor."""
    from gpt1_keras.data.task_dataset import task_batches

    num_classes = task.num_classes if task.num_classes and task.num_classes > 1 else None
    return task_batches(examples.columns(), task.head, batch_size=batch_size,
                        regression=task.regression, num_classes=num_classes,
                        shuffle=training, seed=config.seed, repeat=training,
                        input_context=input_context)


def predict(model, examples, task, config):
    """The model's predictions on `examples`: class/choice indices or scores.

    The raw texts go through the model's own preprocessor.
    """
    # `(x, y)` batches (`predict` ignores `y`): a dataset of bare pairs would be
    # unpacked into `preprocessor(text_a, text_b)` by `Dataset.map`.
    ds = _batches(examples, task, config.eval_batch_size, config)
    outputs = np.asarray(model.predict(ds, verbose=0))
    return outputs.reshape(-1) if task.regression else outputs.argmax(axis=-1)


def _cut(examples, n):
    return examples.take(n) if n else examples


def _read_splits(config, task):
    """`(train, {eval split: Examples}, {test split: Examples})`, read before training."""
    train = task.read(config.data_dir, "train")
    if config.validation_fraction:
        from gpt1_keras.tasks.splits import holdout_split

        try:
            train, validation = holdout_split(train, config.validation_fraction, config.seed)
        except ValueError as e:
            raise config_error("validation_fraction", str(e)) from None
        if not len(validation):
            raise config_error(
                "validation_fraction", f"holding out {config.validation_fraction} of "
                f"{train.source} leaves no validation example (identical inputs stay together).")
        evals = {VALIDATION_SPLIT: validation}
    else:
        evals = {s.name: task.read(config.data_dir, s.name) for s in task.eval_splits}
    tests = {}
    for s in task.splits[1:]:
        if s.labelled:
            continue
        try:
            tests[s.name] = task.read(config.data_dir, s.name)
        except FileNotFoundError as e:
            logging.warning("No predictions for %s: %s", s.name, e)
    cut = config.max_eval_examples
    return (_cut(train, config.max_train_examples),
            {k: _cut(v, cut) for k, v in evals.items()},
            {k: _cut(v, cut) for k, v in tests.items()})


def _predict_splits(model, task, config, splits):
    """`{name: predictions}` of every split, from one `predict` over all of them
    (one trace of the input pipeline and the predict step, not one per split)."""
    from gpt1_keras.tasks.base import Examples

    splits = {k: v for k, v in splits.items() if len(v)}
    if not splits:
        return {}

    def joined(column):
        values = [getattr(e, column) for e in splits.values()]
        return None if values[0] is None else [x for v in values for x in v]

    everything = Examples(
        joined("text_a"), joined("text_b"),
        [y for e in splits.values() for y in (e.labels or [0] * len(e))],
        joined("ids"), joined("question"))
    predictions = predict(model, everything, task, config)
    out, start = {}, 0
    for name, examples in splits.items():
        out[name] = predictions[start:start + len(examples)]
        start += len(examples)
    return out


def _score(model, task, config, splits, prediction_dir):
    """Predicts every split and writes its prediction files; the labelled ones' metrics."""
    scores = {}
    for name, predictions in _predict_splits(model, task, config, splits).items():
        examples = splits[name]
        formatted = [task.format_prediction(p) for p in predictions]
        write_predictions(os.path.join(prediction_dir, f"{name}.tsv"), examples.ids, formatted)
        submission = None if name == VALIDATION_SPLIT else task.split(name).submission
        if submission:
            write_predictions(os.path.join(prediction_dir, submission), examples.ids,
                              formatted)
        if examples.labels is not None:
            split_metrics = metrics_lib.compute_metrics(task.metrics, examples.labels,
                                                        predictions)
            split_metrics["num_examples"] = len(examples)
            scores[name] = split_metrics
            logging.info("%s %s: %s", task.name, name, split_metrics)
    return scores


def finetune(config, task=None, tokenizer=None):
    """Fine-tunes on a task and evaluates; see the module docstring.

    Args:
        config: a `FinetuneConfig`.
        task: a `TaskSpec`; default: `make_task(config)`.
        tokenizer: default: the tokenizer saved with `init_checkpoint`
            (`checkpoint_tokenizer`), else `GPT1Tokenizer()`; it must be
            Keras-serializable (it is saved with the model's preprocessor).

    Returns:
        The metrics dict written to `metrics.json`.

    Raises:
        FileNotFoundError: the training or a labelled evaluation split is
            missing (the message lists the files looked for).
        DataError: a malformed file (file and line named).
        ConfigError: a setting that cannot run (named).
        RunDirectoryLockedError: another run holds `output_dir`.
    """
    from gpt1_keras import training
    from gpt1_keras.run_lock import RunLock

    task = task or make_task(config)
    if tokenizer is None and config.init_checkpoint:
        tokenizer = checkpoint_tokenizer(config.init_checkpoint)
    if tokenizer is None:
        from gpt1_keras.tokenizers import GPT1Tokenizer
        tokenizer = GPT1Tokenizer()
    distribution = training.make_distribution(config.strategy)
    # Only the chief writes (and so locks) the output directory; a second run on
    # it fails here, before reading or training anything.
    lock = RunLock(config.output_dir, "finetune") if distribution.is_chief else None
    with lock or contextlib.nullcontext():
        return _finetune(config, task, tokenizer, distribution)


def _finetune(config, task, tokenizer, distribution):
    from gpt1_keras import training
    from gpt1_keras.models.gpt1_classifier import GPT1Classifier
    from gpt1_keras.models.preset_loading import save_preset
    from gpt1_keras.preprocessing import GPT1ClassifierPreprocessor
    from gpt1_keras.saving import atomic_save_model

    # Read everything first: bad files fail before any training.
    train_examples, evals, tests = _read_splits(config, task)
    if config.batch_size > len(train_examples):
        logging.warning("batch_size=%d is larger than the %d training examples of %s: "
                        "capped to %d.", config.batch_size, len(train_examples), task.name,
                        len(train_examples))
        config = dataclasses.replace(config, batch_size=len(train_examples))

    keras.utils.set_random_seed(config.seed)
    steps_per_epoch = math.ceil(len(train_examples) / config.batch_size)
    train_steps = steps_per_epoch * config.epochs
    train_config = training.TrainConfig(
        model_dir=config.output_dir,
        train_steps=train_steps,
        global_batch_size=config.batch_size,
        sequence_length=config.sequence_length,
        learning_rate=config.learning_rate,
        schedule="linear",
        warmup_steps=int(config.warmup_fraction * train_steps),
        weight_decay=config.weight_decay,
        clip_norm=config.clip_norm,
        steps_per_epoch=steps_per_epoch,
        checkpoint_every=steps_per_epoch,
        jit_compile=config.jit_compile,
        verbose=config.verbose,
    )
    # The one path from raw text to the model: mapped over the data here, saved
    # with the model, wrapped by the SavedModel export.
    preprocessor = GPT1ClassifierPreprocessor(
        tokenizer, task.head, config.sequence_length, label_names=task.labels)

    def build_model():
        return GPT1Classifier(
            build_backbone(config), num_classes=task.num_classes, head=task.head,
            lm_coef=config.lm_coef, dropout=config.classifier_dropout,
            preprocessor=preprocessor,
        )

    def train_dataset_fn(input_context=None):
        from gpt1_keras.data.task_dataset import AUTOTUNE

        ds = _batches(train_examples, task, config.batch_size, config, training=True,
                      input_context=input_context)
        return ds.map(preprocessor, num_parallel_calls=AUTOTUNE)

    result = training.train(build_model, train_dataset_fn, train_config,
                            distribution=distribution,
                            checkpoint_metadata={"task": task.name})
    model = result.model
    results = {"task": task.name, "labels": task.labels, "config": dataclasses.asdict(config),
               "train_examples": len(train_examples), "train_steps": result.final_step,
               "splits": {}}
    if not distribution.is_chief:
        return results
    prediction_dir = os.path.join(config.output_dir, "predictions")
    results["splits"] = _score(model, task, config, {**evals, **tests}, prediction_dir)
    write_metrics(os.path.join(config.output_dir, METRICS_FILE), results)
    atomic_save_model(model, os.path.join(config.output_dir, MODEL_FILE))
    save_preset(os.path.join(config.output_dir, PRESET_DIR), model)
    return results


def evaluate_run(output_dir, data_dir, max_eval_examples=None, eval_batch_size=None):
    """Scores a finished fine-tuning run on the labelled splits found in `data_dir`.

    For a run whose validation was held out of the training file, this is how
    the official dev split (a folder holding, e.g., GLUE's `dev.tsv`) is scored
    without retraining. The task is the run's (`metrics.json`), the model its
    `model.keras`, label names from its preprocessor.

    Args:
        output_dir: the run's `output_dir`.
        data_dir: a folder holding the task's files of one or more labelled
            evaluation splits (`dev.tsv`; MNLI's `dev_matched.tsv`, ...).
        max_eval_examples, eval_batch_size: default: the run's.

    Returns:
        `{"data_dir", "splits": {split: metrics}}`, also written to
        `output_dir/eval_metrics.json`; predictions go to
        `output_dir/eval_predictions/`.

    Raises:
        FileNotFoundError: no finished run in `output_dir`, or no labelled
            split's files in `data_dir` (naming what was looked for).
    """
    from gpt1_keras.models.gpt1_classifier import GPT1Classifier
    from gpt1_keras.run_lock import RunLock
    from gpt1_keras.saving import load_model_file

    metrics_path = os.path.join(output_dir, METRICS_FILE)
    model_path = os.path.join(output_dir, MODEL_FILE)
    for path in (metrics_path, model_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} does not exist: {output_dir} holds no finished fine-tuning run.")
    with open(metrics_path, encoding="utf-8") as f:
        run = json.load(f)
    fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
    stored = {k: v for k, v in run["config"].items() if k in fields}
    stored.update(task=run["task"], data_dir=data_dir, output_dir=output_dir,
                  labels=run.get("labels") if run["task"] == "csv" else stored.get("labels"))
    for name, value in (("max_eval_examples", max_eval_examples),
                        ("eval_batch_size", eval_batch_size)):
        if value is not None:
            stored[name] = value
    config = FinetuneConfig(**stored)
    task = make_task(config)
    with RunLock(output_dir, "finetune evaluation"):
        splits, looked_for = {}, []
        for s in task.eval_splits:
            try:
                splits[s.name] = _cut(task.read(data_dir, s.name), config.max_eval_examples)
            except FileNotFoundError as e:
                looked_for.append(str(e))
        if not splits:
            raise FileNotFoundError(
                f"No labelled split of task {task.name!r} in {data_dir}: "
                + " ".join(looked_for))
        model = load_model_file(model_path, GPT1Classifier, what="the run's model")
        scores = _score(model, task, config, splits,
                        os.path.join(output_dir, "eval_predictions"))
        results = {"data_dir": os.path.abspath(data_dir), "splits": scores}
        write_metrics(os.path.join(output_dir, EVAL_METRICS_FILE), results)
    return results

