import keras
from keras import ops

from gpt1_keras.models.gpt1_backbone import GPT1Backbone

TASKS = ("classification", "entailment", "similarity", "multiple_choice")


def _head_initializer():
    return keras.initializers.RandomNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="gpt1_keras")
class ClassifyTokenPooler(keras.layers.Layer):
    """Picks the hidden state of the last real token (`_classify_`) of each row.

    Padding is on the right, so that token sits at `sum(padding_mask) - 1`.

    Call arguments:
        hidden: `(N, T, C)` hidden states.
        padding_mask: `(N, T)`, 1 for real tokens.

    Returns:
        `(N, C)`.
    """

    def call(self, hidden, padding_mask):
        mask = ops.cast(padding_mask, "int32")
        last = ops.maximum(ops.sum(mask, axis=-1) - 1, 0)  # (N,)
        index = ops.reshape(last, (-1, 1, 1))  # (N, 1, 1) -> broadcast over C
        return ops.squeeze(ops.take_along_axis(hidden, index, axis=1), axis=1)

    def compute_output_shape(self, hidden_shape, padding_mask_shape):
        return (hidden_shape[0], hidden_shape[2])


@keras.saving.register_keras_serializable(package="gpt1_keras")
class FlattenSequences(keras.layers.Layer):
    """`(B, S, T)` -> `(B*S, T)`: every sequence of every example as one row."""

    def call(self, x):
        return ops.reshape(x, (-1, ops.shape(x)[-1]))

    def compute_output_shape(self, shape):
        return (None, shape[-1])


@keras.saving.register_keras_serializable(package="gpt1_keras")
class UnflattenSequences(keras.layers.Layer):
    """`(B*S, ...)` -> `(B, S, ...)`, with `S` read from `like` `(B, S, T)`."""

    def call(self, x, like):
        return ops.reshape(x, (-1, ops.shape(like)[1]) + tuple(x.shape[1:]))

    def compute_output_shape(self, x_shape, like_shape):
        return (like_shape[0], like_shape[1]) + tuple(x_shape[1:])


@keras.saving.register_keras_serializable(package="gpt1_keras")
class AuxiliaryLMLoss(keras.layers.Layer):
    """Adds `lm_coef * language_model_loss(...)` as a model loss while training.

    The layer passes `outputs` through unchanged; it sits on the path to the
    model's outputs so that Keras runs it. The loss is added with `add_loss`
    (every backend) only when `training=True`: `fit`'s loss is GPT-1's
    `L_task + lm_coef * L_LM`; `evaluate`'s is the task loss alone.

    Args:
        lm_coef: the weight `lambda` of the LM loss.

    Call arguments:
        outputs: the model's task outputs, returned unchanged.
        lm_logits: `(N, T, V)` logits of the tied LM head.
        token_ids: `(N, T)` ids.
        padding_mask: `(N, T)`, 1 for real tokens.
        training: whether to add the loss.
    """

    def __init__(self, lm_coef=0.5, **kwargs):
        super().__init__(**kwargs)
        self.lm_coef = lm_coef

    def call(self, outputs, lm_logits, token_ids, padding_mask, training=None):
        if training:
            self.add_loss(
                self.lm_coef * language_model_loss(lm_logits, token_ids, padding_mask)
            )
        return outputs

    def compute_output_shape(
        self, outputs_shape, lm_logits_shape, token_ids_shape, padding_mask_shape
    ):
        return outputs_shape

    def get_config(self):
        return {**super().get_config(), "lm_coef": self.lm_coef}


def language_model_loss(lm_logits, token_ids, padding_mask):
    """Mean next-token cross-entropy over the real tokens after the first.

    Args:
        lm_logits: `(N, T, V)`.
        token_ids: `(N, T)` int.
        padding_mask: `(N, T)`, 1 for real tokens.

    Returns:
        A float32 scalar: `-mean log p(token_ids[t] | token_ids[:t])` over the
        positions `t >= 1` with `padding_mask[t] == 1`.
    """
    log_probs = ops.log_softmax(ops.cast(lm_logits[:, :-1, :], "float32"), axis=-1)
    targets = ops.expand_dims(ops.cast(token_ids[:, 1:], "int32"), -1)
    nll = -ops.squeeze(ops.take_along_axis(log_probs, targets, axis=-1), -1)  # (N, T-1)
    weights = ops.cast(padding_mask[:, 1:], "float32")
    return ops.sum(nll * weights) / ops.maximum(ops.sum(weights), 1.0)


@keras.saving.register_keras_serializable(package="gpt1_keras")
class GPT1Classifier(keras.Model):
    """GPT-1 fine-tuning model: a `GPT1Backbone` plus the paper's task head.

    The head reads the final hidden state of the `_classify_` token (the last
    real token of each sequence, `sum(padding_mask) - 1`; see
    `gpt1_keras.data.task_dataset`), applies dropout and one linear layer
    (N(0, 0.02) weights, zero bias):

    | `task` | inputs (`token_ids`, `padding_mask`) | output |
    | --- | --- | --- |
    | `"classification"`, `"entailment"` | `(B, T)` | logits `(B, num_classes)` |
    | `"similarity"` | `(B, 2, T)`: both orders | the two classify states added, then linear: `(B, num_classes)`, or `(B,)` for `num_classes=1` (regression) |
    | `"multiple_choice"` | `(B, K, T)`: one sequence per choice | one score per choice, `(B, K)` logits (softmax over choices) |

    Training adds GPT-1's auxiliary language-model loss on the same inputs,
    `L = L_task + lm_coef * L_LM` (`lm_coef=0` disables it), through
    `add_loss`, so plain `compile()` / `fit()` train with it; `L_LM` is the
    mean next-token cross-entropy over the real tokens of every sequence
    (per token, as Hugging Face; GPT-1's code averages per sequence first),
    with the tied LM head (see `AuxiliaryLMLoss`). It is added in training
    only: `evaluate` reports the task loss.

    With a `preprocessor` (`GPT1ClassifierPreprocessor`) attached, `fit`,
    `evaluate` and `predict` accept raw strings (and pairs or choices); the
    preprocessor turns them into token ids in `tf.data`.

    Args:
        backbone: a `GPT1Backbone`.
        num_classes: output classes; `1` with `task="similarity"` means a
            single regression output (STS-B). Unused (`None`) for
            `"multiple_choice"`.
        task: one of `"classification"`, `"entailment"`, `"similarity"`,
            `"multiple_choice"`.
        lm_coef: the weight of the auxiliary LM loss (0.5 in GPT-1; 0 disables).
        dropout: dropout on the classifier input (0.1 in GPT-1).
        preprocessor: optional `GPT1ClassifierPreprocessor`.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments (a dict):
        token_ids: int `(B, T)`, `(B, 2, T)` or `(B, K, T)` by task.
        padding_mask: the same shape, 1 for real tokens.

    Example:
    ```python
    backbone = GPT1Backbone.from_preset("gpt1_tiny")
    preprocessor = GPT1ClassifierPreprocessor(GPT1Tokenizer(), "classification",
                                              sequence_length=64)
    model = GPT1Classifier(backbone, num_classes=2, preprocessor=preprocessor)
    model.compile()
    model.fit(x=["a great movie", "dull"], y=[1, 0], batch_size=2)
    ```
    """

    def __init__(
        self,
        backbone,
        num_classes=None,
        task="classification",
        lm_coef=0.5,
        dropout=0.1,
        preprocessor=None,
        **kwargs,
    ):
        if task not in TASKS:
            raise ValueError(f"`task` must be one of {TASKS}. Received: task={task!r}")
        if task == "multiple_choice":
            if num_classes is not None:
                raise ValueError(
                    "'multiple_choice' scores each choice; the number of choices comes "
                    f"from the inputs. Received: num_classes={num_classes}"
                )
        elif not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"{task!r} needs `num_classes`, a positive int. Received: "
                f"num_classes={num_classes!r}"
            )
        elif num_classes == 1 and task != "similarity":
            raise ValueError(
                "A single regression output (num_classes=1) is only for 'similarity'; "
                f"use num_classes >= 2 for {task!r}."
            )
        if lm_coef < 0:
            raise ValueError(f"`lm_coef` must be >= 0. Received: lm_coef={lm_coef}")

        # === Layers ===
        pooler = ClassifyTokenPooler(name="classify_token")
        head_dropout = keras.layers.Dropout(dropout, name="classifier_dropout")
        head = keras.layers.Dense(
            1 if task == "multiple_choice" else num_classes,
            kernel_initializer=_head_initializer(),
            bias_initializer="zeros",
            name="classifier_head",
        )
        lm_loss = AuxiliaryLMLoss(lm_coef, name="auxiliary_lm_loss") if lm_coef else None

        # === Functional model ===
        if task in ("classification", "entailment"):
            shape = (None,)
        elif task == "similarity":
            shape = (2, None)
        else:
            shape = (None, None)
        token_ids = keras.Input(shape=shape, dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=shape, dtype="int32", name="padding_mask")
        flat_ids, flat_mask = token_ids, padding_mask
        if len(shape) == 2:
            # (B, S, T) -> (B*S, T): every sequence through the backbone at once.
            flat_ids = FlattenSequences(name="flatten_token_ids")(token_ids)
            flat_mask = FlattenSequences(name="flatten_padding_mask")(padding_mask)
        hidden = backbone({"token_ids": flat_ids, "padding_mask": flat_mask})
        state = pooler(hidden, flat_mask)  # (B*S, C)
        if task == "similarity":
            # (B*2, C) -> (B, 2, C) -> (B, C): both orders' states added.
            state = UnflattenSequences(name="group_orders")(state, token_ids)
            state = ops.sum(state, axis=1)
        outputs = head(head_dropout(state))
        if task == "multiple_choice":
            # (B*K, 1) -> (B, K, 1) -> (B, K): one score per choice.
            outputs = UnflattenSequences(name="group_choices")(outputs, token_ids)
            outputs = ops.squeeze(outputs, -1)
        elif num_classes == 1:
            outputs = ops.squeeze(outputs, -1)  # (B,)
        if lm_loss is not None:
            # The tied LM head over every sequence; the loss layer returns
            # `outputs` unchanged (graph compilers drop the LM head in predict).
            lm_logits = backbone.token_embedding(hidden, reverse=True)  # (B*S, T, V)
            outputs = lm_loss(outputs, lm_logits, flat_ids, flat_mask)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=outputs,
            **kwargs,
        )

        self.backbone = backbone
        self.preprocessor = preprocessor

        # === Config ===
        self.num_classes = num_classes
        self.task = task
        self.lm_coef = lm_coef
        self.dropout = dropout

    @property
    def regression(self):
        return self.num_classes == 1

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        metrics="auto",
        **kwargs,
    ):
        """Compiles with GPT-1 fine-tuning defaults wherever an argument is `"auto"`.

        `optimizer="auto"`: Adam(6.25e-5, epsilon=1e-8), global-norm clipping 1
        (the paper's fine-tuning rate, without its schedule and decay, which
        `pipelines/finetune.py` adds). `loss="auto"`: sparse cross-entropy on
        logits, or mean squared error for regression. `metrics="auto"`:
        accuracy, or none for regression.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(
                learning_rate=6.25e-5, epsilon=1e-8, global_clipnorm=1.0
            )
        if loss == "auto":
            loss = (
                keras.losses.MeanSquaredError()
                if self.regression
                else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            )
        if metrics == "auto":
            metrics = [] if self.regression else [keras.metrics.SparseCategoricalAccuracy()]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    # === Raw inputs through the preprocessor ===
    # With a preprocessor, raw data becomes a `tf.data.Dataset` of
    # preprocessed batches (built by the TF-side preprocessor, so this file
    # imports no TensorFlow); otherwise Keras' own handling applies.
    def fit(self, x=None, y=None, batch_size=None, sample_weight=None,
            validation_data=None, shuffle=True, **kwargs):
        if self.preprocessor is None:
            return super().fit(x, y, batch_size=batch_size, sample_weight=sample_weight,
                               validation_data=validation_data, shuffle=shuffle, **kwargs)
        batch_size = batch_size or 32
        x = self.preprocessor.make_dataset(x, y, sample_weight, batch_size, shuffle=shuffle)
        if validation_data is not None:
            validation_data = self.preprocessor.make_dataset(
                *_unpack_validation(validation_data), batch_size
            )
        return super().fit(x, validation_data=validation_data, shuffle=False, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        if self.preprocessor is None:
            return super().evaluate(x, y, batch_size=batch_size,
                                    sample_weight=sample_weight, **kwargs)
        x = self.preprocessor.make_dataset(x, y, sample_weight, batch_size or 32)
        return super().evaluate(x, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        if self.preprocessor is None:
            return super().predict(x, batch_size=batch_size, **kwargs)
        x = self.preprocessor.make_dataset(x, None, None, batch_size or 32)
        return super().predict(x, **kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "task": self.task,
            "lm_coef": self.lm_coef,
            "dropout": self.dropout,
            "preprocessor": (
                None if self.preprocessor is None
                else keras.saving.serialize_keras_object(self.preprocessor)
            ),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        if config.get("preprocessor") is not None:
            # The preprocessor is TensorFlow code: imported (and registered with
            # Keras) only when a saved model holds one.
            import importlib

            importlib.import_module("gpt1_keras.preprocessing")
            config["preprocessor"] = keras.saving.deserialize_keras_object(
                config["preprocessor"]
            )
        return cls(**config)

    @classmethod
    def from_preset(cls, preset, num_classes=None, task="classification", **kwargs):
        """A randomly initialised classifier on a backbone preset (`gpt1_tiny`, ...)."""
        return cls(GPT1Backbone.from_preset(preset), num_classes=num_classes,
                   task=task, **kwargs)


def _unpack_validation(validation_data):
    if isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3):
        return tuple(validation_data) + (None,) * (3 - len(validation_data))
    return validation_data, None, None
