"""Fine-tuning GPT-1 on a task (paper section 3.2) and evaluating it.

`finetune(config, task)` reads the task's splits, builds a `GPT1Classifier`
on a pretrained (or, for the ablations, partly or wholly fresh) backbone,
trains it with the shared trainer (`gpt1_keras.training.train`: GPT-1's Adam
with decoupled L2, clipping 1, the clamped `warmup_linear` schedule), then
writes to `output_dir`:

- `metrics.json`: each labelled evaluation split's metrics (the task's, e.g.
  Matthews correlation for CoLA) and example count, plus the configuration;
- `predictions/<split>.tsv` for every split evaluated or predicted, and for
  test splits the GLUE submission file (`predictions/MNLI-m.tsv`, ...) in
  GLUE's `index\\tprediction` format;
- `model.keras`: the fine-tuned classifier (with its preprocessor when the
  tokenizer is a `GPT1Tokenizer`), plus the trainer's checkpoints and logs.

TensorFlow is used for the input pipeline (the tokenizer runs in `tf.data`);
the model trains on any Keras backend.
"""

import dataclasses
import math
import os

import keras
import numpy as np
from absl import logging

from gpt1_keras.tasks import metrics as metrics_lib
from gpt1_keras.tasks.predictions import write_metrics
from gpt1_keras.tasks.predictions import write_predictions


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """What `finetune` does (the paper's recipe by default).

    Attributes:
        data_dir: the task's files.
        output_dir: where results, checkpoints and the model go.
        init_checkpoint: a `.keras` file holding a `GPT1CausalLM`,
            `GPT1Backbone` or `GPT1Classifier` (e.g. from `//pipelines:convert`
            or `//pipelines:pretrain`). Required unless `no_pretraining`.
        preset: the architecture when there is no checkpoint.
        no_pretraining: train from random weights (Table 5 ablation); with a
            checkpoint, its architecture is used but not its weights.
        layers_to_transfer: transfer the embeddings and the first N blocks,
            the rest fresh (Figure 2 left); `-1`: all.
        learning_rate, batch_size, epochs, warmup_fraction, weight_decay,
        clip_norm: the optimisation (6.25e-5, 32, 3, 0.002, 0.01, 1.0).
        lm_coef: the auxiliary LM loss weight (0.5; 0 disables).
        classifier_dropout: dropout before the head (0.1).
        sequence_length: tokens per sequence (texts trimmed longest-first).
        seed: shuffling and initialisation seed.
        max_train_examples, max_eval_examples: cut the splits (0: all), for
            quick runs.
        eval_batch_size: batch size of evaluation and prediction.
        verbose: `fit`'s verbosity.
    """

    data_dir: str
    output_dir: str
    init_checkpoint: str | None = None
    preset: str = "gpt1"
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
    verbose: object = 2

    def __post_init__(self):
        if not self.no_pretraining and not self.init_checkpoint:
            raise ValueError(
                "A pretrained `init_checkpoint` (.keras) is required unless "
                "`no_pretraining` is set.")
        for name in ("batch_size", "epochs", "sequence_length", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1. Received: {name}={getattr(self, name)}")
        if self.layers_to_transfer < -1:
            raise ValueError(
                "`layers_to_transfer` must be -1 (all) or >= 0. Received: "
                f"layers_to_transfer={self.layers_to_transfer}")
        if not 0 <= self.warmup_fraction <= 1:
            raise ValueError(
                f"`warmup_fraction` must be in [0, 1]. Received: {self.warmup_fraction}")


def load_backbone(path):
    """The `GPT1Backbone` inside a `.keras` LM, backbone or classifier file."""
    from gpt1_keras.models.gpt1_backbone import GPT1Backbone

    if not os.path.exists(path):
        raise FileNotFoundError(f"init_checkpoint {path} does not exist.")
    model = keras.saving.load_model(path, compile=False)
    backbone = model if isinstance(model, GPT1Backbone) else getattr(model, "backbone", None)
    if not isinstance(backbone, GPT1Backbone):
        raise ValueError(
            f"{path} holds a {type(model).__name__} without a GPT1Backbone; expected a "
            "GPT1CausalLM, GPT1Backbone or GPT1Classifier.")
    return backbone


def transfer_layers(source, target, num_layers):
    """Copies the embeddings and the first `num_layers` blocks of `source` into
    `target` (same architecture); `-1` copies everything."""
    if source.get_config() | {"name": None, "dropout": None} != \
            target.get_config() | {"name": None, "dropout": None}:
        raise ValueError("Source and target backbones differ in architecture.")
    total = len(source.transformer_layers)
    if num_layers == -1:
        num_layers = total
    if num_layers > total:
        raise ValueError(
            f"layers_to_transfer={num_layers} but the checkpoint has {total} layers.")
    pairs = [(source.token_embedding, target.token_embedding),
             (source.position_embedding, target.position_embedding)]
    pairs += list(zip(source.transformer_layers[:num_layers],
                      target.transformer_layers[:num_layers]))
    for src, dst in pairs:
        dst.set_weights(src.get_weights())
    return num_layers


def build_backbone(config):
    """The backbone for fine-tuning: pretrained, partly transferred, or fresh."""
    from gpt1_keras.models.gpt1_backbone import GPT1Backbone

    if config.init_checkpoint:
        pretrained = load_backbone(config.init_checkpoint)
        arch = pretrained.get_config()
    else:
        pretrained, arch = None, GPT1Backbone.from_preset(config.preset).get_config()
    if pretrained is not None and not config.no_pretraining and \
            config.layers_to_transfer == -1:
        return pretrained
    fresh = GPT1Backbone.from_config(arch)
    if pretrained is not None and not config.no_pretraining:
        transfer_layers(pretrained, fresh, config.layers_to_transfer)
    return fresh


def _dataset(examples, tokenizer, task, config, batch_size, training, input_context=None):
    import tensorflow as tf

    from gpt1_keras.data.task_dataset import make_task_dataset

    ds = make_task_dataset(
        examples.columns(), tokenizer, task.model_task,
        sequence_length=config.sequence_length, batch_size=batch_size,
        regression=task.regression, num_classes=task.num_classes if (
            task.num_classes and task.num_classes > 1) else None,
        shuffle=training, seed=config.seed, repeat=training, input_context=input_context,
    )
    return ds.map(lambda x, y: ({k: tf.cast(v, tf.int32) for k, v in x.items()}, y))


def predict(model, examples, tokenizer, task, config):
    """The model's predictions on `examples`: class/choice indices or scores."""
    ds = _dataset(examples, tokenizer, task, config, config.eval_batch_size, False)
    outputs = model.predict(ds.map(lambda x, y: x), verbose=0)
    outputs = np.asarray(outputs)
    return outputs.reshape(-1) if task.regression else outputs.argmax(axis=-1)


def _cut(examples, n):
    return examples.take(n) if n else examples


def finetune(config, task, tokenizer=None):
    """Fine-tunes on `task` (a `TaskSpec`) and evaluates; see the module docstring.

    Args:
        config: a `FinetuneConfig`.
        task: a `TaskSpec` (`gpt1_keras.tasks.get_task(name)` or `csv_task`).
        tokenizer: default `GPT1Tokenizer()`.

    Returns:
        The metrics dict written to `metrics.json`.

    Raises:
        FileNotFoundError: the training or a labelled evaluation split is
            missing (the message lists the files looked for).
        DataError: a malformed file (file and line named).
    """
    from gpt1_keras import training
    from gpt1_keras.models.gpt1_classifier import GPT1Classifier

    if tokenizer is None:
        from gpt1_keras.tokenizers import GPT1Tokenizer
        tokenizer = GPT1Tokenizer()
    # Read everything first: bad files fail before any training.
    train_examples = _cut(task.read(config.data_dir, "train"), config.max_train_examples)
    evals = {s.name: _cut(task.read(config.data_dir, s.name), config.max_eval_examples)
             for s in task.eval_splits}
    tests = {}
    for s in task.splits[1:]:
        if s.labelled:
            continue
        try:
            tests[s.name] = _cut(task.read(config.data_dir, s.name), config.max_eval_examples)
        except FileNotFoundError as e:
            logging.warning("No predictions for %s: %s", s.name, e)

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
        verbose=config.verbose,
    )

    def build_model():
        return GPT1Classifier(
            build_backbone(config), num_classes=task.num_classes, task=task.model_task,
            lm_coef=config.lm_coef, dropout=config.classifier_dropout,
        )

    def train_dataset_fn(input_context=None):
        return _dataset(train_examples, tokenizer, task, config, config.batch_size, True,
                        input_context)

    result = training.train(build_model, train_dataset_fn, train_config,
                            checkpoint_metadata={"task": task.name})
    model = result.model

    results = {"task": task.name, "config": dataclasses.asdict(config),
               "train_examples": len(train_examples), "train_steps": result.final_step,
               "splits": {}}
    prediction_dir = os.path.join(config.output_dir, "predictions")
    for name, examples in {**evals, **tests}.items():
        predictions = predict(model, examples, tokenizer, task, config)
        formatted = [task.format_prediction(p) for p in predictions]
        write_predictions(os.path.join(prediction_dir, f"{name}.tsv"), examples.ids, formatted)
        submission = task.split(name).submission
        if submission:
            write_predictions(os.path.join(prediction_dir, submission), examples.ids,
                              formatted)
        if name in evals:
            split_metrics = metrics_lib.compute_metrics(task.metrics, examples.labels,
                                                        predictions)
            split_metrics["num_examples"] = len(examples)
            results["splits"][name] = split_metrics
            logging.info("%s %s: %s", task.name, name, split_metrics)
    write_metrics(os.path.join(config.output_dir, "metrics.json"), results)

    if isinstance(tokenizer, keras.layers.Layer):
        from gpt1_keras.preprocessing import GPT1ClassifierPreprocessor
        model.preprocessor = GPT1ClassifierPreprocessor(
            tokenizer, task.model_task, config.sequence_length)
    path = os.path.join(config.output_dir, "model.keras")
    model.save(path + ".partial.keras")
    os.replace(path + ".partial.keras", path)
    return results
