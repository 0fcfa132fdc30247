import warnings

import keras
import keras_hub
from keras import ops
from keras_hub.src.utils import preset_utils
from keras_hub.src.utils.python_utils import classproperty

from gpt1_keras.layers.auxiliary_lm_loss import AuxiliaryLMLoss
from gpt1_keras.layers.classify_token_pooler import ClassifyTokenPooler
from gpt1_keras.layers.flatten_sequences import FlattenSequences
from gpt1_keras.layers.heads import HEADS  # noqa: F401  (re-exported)
from gpt1_keras.layers.heads import check_head
from gpt1_keras.layers.initializers import gpt1_initializer
from gpt1_keras.layers.seeded_dropout import seeded_dropout
from gpt1_keras.layers.unflatten_sequences import UnflattenSequences
from gpt1_keras.models import preset_loading
from gpt1_keras.models.architectures import ARCHITECTURES
from gpt1_keras.models.architectures import build_backbone
from gpt1_keras.models.gpt1_backbone import GPT1Backbone
from gpt1_keras.models.gpt1_presets import preset_architecture

# The paper's head types (section 3.3): what `GPT1Classifier(head=...)` builds.


@keras.saving.register_keras_serializable(package="gpt1_keras")
class GPT1Classifier(keras_hub.models.TextClassifier):
    """GPT-1 fine-tuning model: a backbone plus one of the paper's heads.

    A `keras_hub.models.TextClassifier` (`keras_hub.models.TextClassifier.from_preset`
    of a preset it saved returns this class), with the paper's head types,
    similarity and multiple choice included, which keras-hub lacks.

    The head reads the final hidden state of the `_classify_` token (the last
    real token of each sequence, `sum(padding_mask) - 1`; see
    `gpt1_keras.data.task_dataset`), applies dropout and one linear layer
    (N(0, 0.02) weights, zero bias):

    | `head` | inputs (`token_ids`, `padding_mask`) | output |
    | --- | --- | --- |
    | `"classification"`, `"entailment"` | `(B, T)` | logits `(B, num_classes)` |
    | `"similarity"` | `(B, 2, T)`: both orders | the two classify states added, then linear: `(B, num_classes)`, or `(B,)` for `num_classes=1` (regression) |
    | `"multiple_choice"` | `(B, K, T)`: one sequence per choice | one score per choice, `(B, K)` logits (softmax over choices) |

    Training adds GPT-1's auxiliary language-model loss on the same inputs,
    `L = L_task + lm_coef * L_LM` (`lm_coef=0` disables it), through
    `add_loss`, so plain `compile()` / `fit()` train with it; `L_LM` is the
    mean next-token cross-entropy over the real tokens of every sequence
    (per token, as Hugging Face; GPT-1's code averages per sequence first),
    with the tied LM head, computed a chunk of positions at a time so that the
    full logits never exist (see `gpt1_keras.layers.AuxiliaryLMLoss`). It is added
    in training only: `evaluate` reports the task loss.

    With a `preprocessor` (`GPT1ClassifierPreprocessor`) attached, `fit`,
    `evaluate` and `predict` accept raw strings (and pairs or choices); the
    preprocessor turns them into token ids in `tf.data`.

    `from_preset` loads weights: a preset directory (a pretrained backbone and
    its tokenizer, e.g. written by a pretraining run or `save_to_preset()`, or a
    whole fine-tuned classifier), `"hf://openai-community/openai-gpt"` (the
    released GPT-1, converted on load), a local Hugging Face directory, or a
    `"kaggle://"` handle. `from_architecture` builds an untrained model from an
    architecture configuration (`gpt1_tiny`, ..., `lstm_tiny`, ...).

    Args:
        backbone: a `GPT1Backbone` (or the `LSTMBackbone` baseline).
        num_classes: output classes; `1` with `head="similarity"` means a
            single regression output (STS-B). Unused (`None`) for
            `"multiple_choice"`.
        head: the head type (input layout and output), one of `HEADS`:
            `"classification"`, `"entailment"`, `"similarity"`,
            `"multiple_choice"`. (Not a dataset: those are the tasks of
            `gpt1_keras.tasks`, each of which names its head.) Formerly
            `task=`, still accepted with a `DeprecationWarning`; saved configs
            holding `task` load unchanged.
        lm_coef: the weight of the auxiliary LM loss (0.5 in GPT-1; 0 disables).
        dropout: dropout on the classifier input (0.1 in GPT-1).
        preprocessor: optional `GPT1ClassifierPreprocessor`, of the same `head`.
        **kwargs: `keras_hub.models.Task` arguments (`name`, `compile`, ...).

    Call arguments (a dict):
        token_ids: int `(B, T)`, `(B, 2, T)` or `(B, K, T)` by head.
        padding_mask: the same shape, 1 for real tokens.

    Example:
    ```python
    backbone = GPT1Backbone.from_architecture("gpt1_tiny")
    preprocessor = GPT1ClassifierPreprocessor(GPT1Tokenizer(), "classification",
                                              sequence_length=64)
    model = GPT1Classifier(backbone, num_classes=2, preprocessor=preprocessor)
    model.compile()
    model.fit(x=["a great movie", "dull"], y=[1, 0], batch_size=2)

    # The released GPT-1 with a fresh entailment head, fine-tuned and saved.
    model = GPT1Classifier.from_preset("hf://openai-community/openai-gpt",
                                       num_classes=2, head="entailment",
                                       sequence_length=128)
    model.fit(x=(premises, hypotheses), y=labels, batch_size=8)
    model.save_to_preset("./rte_preset")
    model = keras_hub.models.TextClassifier.from_preset("./rte_preset")
    ```
    """

    backbone_cls = GPT1Backbone

    @classproperty
    def preprocessor_cls(cls):
        """`GPT1ClassifierPreprocessor`, imported when first read: the models load
        without the preprocessing modules until a preprocessor is needed."""
        from gpt1_keras.preprocessing.gpt1_classifier_preprocessor import (
            GPT1ClassifierPreprocessor,
        )

        return GPT1ClassifierPreprocessor

    def __init__(
        self,
        backbone,
        num_classes=None,
        head="classification",
        lm_coef=0.5,
        dropout=0.1,
        preprocessor=None,
        **kwargs,
    ):
        if "task" in kwargs:
            warnings.warn(
                "GPT1Classifier(task=...) is deprecated: the head type is `head=` "
                "(a task is a dataset in gpt1_keras.tasks). "
                f"Received: task={kwargs['task']!r}",
                DeprecationWarning,
                stacklevel=2,
            )
            head = _head_from_task(head, kwargs.pop("task"))
        check_head(head)
        if head == "multiple_choice":
            if num_classes is not None:
                raise ValueError(
                    "'multiple_choice' scores each choice; the number of choices comes "
                    f"from the inputs. Received: num_classes={num_classes}"
                )
        elif not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                f"{head!r} needs `num_classes`, a positive int. Received: "
                f"num_classes={num_classes!r}"
            )
        elif num_classes == 1 and head != "similarity":
            raise ValueError(
                "A single regression output (num_classes=1) is only for the "
                f"'similarity' head; use num_classes >= 2 for {head!r}. "
                f"Received: head={head!r}, num_classes=1"
            )
        if lm_coef < 0:
            raise ValueError(f"`lm_coef` must be >= 0. Received: lm_coef={lm_coef}")
        _check_preprocessor(backbone, preprocessor, head)

        # === Config ===
        # Set before `super().__init__()`, which compiles (`compile` reads
        # `num_classes`).
        self.num_classes = num_classes
        self.head = head
        self.lm_coef = lm_coef
        self.dropout = dropout

        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        pooler = ClassifyTokenPooler(name="classify_token")
        head_dropout = seeded_dropout(dropout, name="classifier_dropout")
        head_dense = keras.layers.Dense(
            1 if head == "multiple_choice" else num_classes,
            kernel_initializer=gpt1_initializer(),
            bias_initializer="zeros",
            name="classifier_head",
        )
        lm_loss = (AuxiliaryLMLoss(backbone.token_embedding, lm_coef, name="auxiliary_lm_loss")
                   if lm_coef else None)

        # === Functional model ===
        if head in ("classification", "entailment"):
            shape = (None,)
        elif head == "similarity":
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
        if head == "similarity":
            # (B*2, C) -> (B, 2, C) -> (B, C): both orders' states added.
            state = UnflattenSequences(name="group_orders")(state, token_ids)
            state = ops.sum(state, axis=1)
        outputs = head_dense(head_dropout(state))
        if head == "multiple_choice":
            # (B*K, 1) -> (B, K, 1) -> (B, K): one score per choice.
            outputs = UnflattenSequences(name="group_choices")(outputs, token_ids)
            outputs = ops.squeeze(outputs, -1)
        elif num_classes == 1:
            outputs = ops.squeeze(outputs, -1)  # (B,)
        if lm_loss is not None:
            # The tied LM head's loss over every sequence, chunked; the loss layer
            # returns `outputs` unchanged and adds nothing outside training.
            outputs = lm_loss(outputs, hidden, flat_ids, flat_mask)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=outputs,
            **kwargs,
        )

    @property
    def regression(self):
        return self.num_classes == 1

    @property
    def task(self):
        """Deprecated alias of `head`, for callers not yet renamed; to be removed.

        No warning: Keras' saving reads every attribute of the model.
        """
        return self.head

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
    # preprocessed batches (`GPT1ClassifierPreprocessor.make_dataset`: raw
    # arrays shuffled each epoch when `shuffle`, a `tf.distribute`
    # `DistributedDataset` passed as it is, since fine-tuning maps the
    # preprocessor inside its `dataset_fn`); otherwise Keras' own handling
    # applies. keras-hub's `PipelineModel` versions of these methods are
    # skipped: they would map the preprocessor a second time, and neither
    # shuffle raw arrays nor take a distributed dataset.
    def fit(self, x=None, y=None, batch_size=None, sample_weight=None,
            validation_data=None, shuffle=True, **kwargs):
        if self.preprocessor is None:
            return keras.Model.fit(
                self, x, y, batch_size=batch_size, sample_weight=sample_weight,
                validation_data=validation_data, shuffle=shuffle, **kwargs)
        batch_size = batch_size or 32
        x = self.preprocessor.make_dataset(x, y, sample_weight, batch_size, shuffle=shuffle)
        if validation_data is not None:
            validation_data = self.preprocessor.make_dataset(
                *_unpack_validation(validation_data), batch_size
            )
        return keras.Model.fit(self, x, validation_data=validation_data, shuffle=False,
                               **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        if self.preprocessor is None or kwargs.get("_use_cached_eval_dataset"):
            # (`fit`'s validation reuses the dataset `fit` preprocessed.)
            return keras.Model.evaluate(self, x, y, batch_size=batch_size,
                                        sample_weight=sample_weight, **kwargs)
        x = self.preprocessor.make_dataset(x, y, sample_weight, batch_size or 32)
        return keras.Model.evaluate(self, x, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        if self.preprocessor is None:
            return keras.Model.predict(self, x, batch_size=batch_size, **kwargs)
        x = self.preprocessor.make_dataset(x, None, None, batch_size or 32)
        return keras.Model.predict(self, x, **kwargs)

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "head": self.head,
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
        if "task" in config:
            # Saved before the head argument had its own name.
            config["head"] = _head_from_task(config.get("head"), config.pop("task"))
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        if isinstance(config.get("preprocessor"), dict):
            config["preprocessor"] = _deserialize_preprocessor(config["preprocessor"])
        return cls(**config)

    @classmethod
    def from_architecture(cls, preset, num_classes=None, head="classification", **kwargs):
        """A randomly initialised classifier on a backbone preset of either
        architecture (`gpt1_tiny`, ..., `lstm_tiny`, ...)."""
        return cls(build_backbone(preset_architecture(preset), preset), num_classes=num_classes,
                   head=head, **kwargs)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Instantiates a classifier from a preset, weights included.

        As keras-hub's `TextClassifier.from_preset`: a preset holding a whole
        classifier (written by its `save_to_preset()`, e.g. by a fine-tuning
        run) loads as it was saved, head weights, preprocessor and label names
        included, unless `num_classes` or `head` is given. Otherwise (or for a
        backbone-only preset: a pretraining run's, a Hugging Face checkpoint)
        the classifier is the preset's pretrained backbone, a freshly
        initialised head (`num_classes`, `head`, `lm_coef`, `dropout`), and a
        `GPT1ClassifierPreprocessor` for that head from the preset's
        preprocessor or tokenizer (`GPT1ClassifierPreprocessor.from_preset`;
        `label_names` only as given).

        Args:
            preset: a preset directory written by `save_to_preset()`,
                `"hf://openai-community/openai-gpt"` (or any Hugging Face
                OpenAI GPT checkpoint), a local Hugging Face checkpoint
                directory, or a `"kaggle://..."` handle; either backbone
                (`GPT1Backbone`, `LSTMBackbone`). Architecture names
                (`gpt1_tiny`, ...) are for `from_architecture()`.
            load_weights: bool. If `False`, all weights are freshly initialised.
            **kwargs: `GPT1Classifier` arguments (`num_classes`, `head`,
                `lm_coef`, `dropout`, `preprocessor`, `backbone`), the
                preprocessor's `sequence_length` (default: the preset's
                preprocessor's, else the backbone's `max_sequence_length`, at
                most 512) and `label_names`, and `dtype` for the backbone.

        Example:
        ```python
        model = GPT1Classifier.from_preset(
            "hf://openai-community/openai-gpt", num_classes=2, head="entailment",
            sequence_length=128, label_names=("entailment", "not_entailment"))
        ```
        """
        loader = preset_loading.get_preset_loader(preset, cls)
        backbone_cls = loader.check_backbone_class()
        backbones = tuple(ARCHITECTURES.values())
        if not (isinstance(backbone_cls, type) and issubclass(backbone_cls, backbones)):
            names = ", ".join(c.__name__ for c in backbones)
            raise preset_loading.PresetError(
                f"Preset {loader.preset!r} holds a {getattr(backbone_cls, '__name__', backbone_cls)}; "
                f"{cls.__name__} takes a backbone of the GPT-1 family ({names}).")
        preprocessor_cls = cls.preprocessor_cls
        from gpt1_keras.preprocessing.gpt1_classifier_preprocessor import preset_holds

        fresh_head = "num_classes" in kwargs or "head" in kwargs
        preprocessor_kwargs = {
            name: kwargs.pop(name) for name in ("sequence_length", "label_names")
            if name in kwargs
        }
        if not fresh_head and preset_holds(loader, preset_utils.TASK_CONFIG_FILE, cls):
            model = loader.load_task(cls, load_weights, True, **kwargs)
            if preprocessor_kwargs and model.preprocessor is not None:
                saved = model.preprocessor
                arguments = {"head": saved.head, "sequence_length": saved.sequence_length,
                             "label_names": saved.label_names, **preprocessor_kwargs}
                model.preprocessor = type(saved)(saved.tokenizer, **arguments)
                _check_preprocessor(model.backbone, model.preprocessor, model.head)
            elif preprocessor_kwargs:
                raise ValueError(
                    f"The classifier of preset {loader.preset!r} has no preprocessor for "
                    f"{', '.join(preprocessor_kwargs)} to configure.")
            return model

        head = kwargs.pop("head", "classification")
        backbone_kwargs, kwargs = loader.get_backbone_kwargs(**kwargs)
        if "backbone" not in kwargs:
            kwargs["backbone"] = loader.load_backbone(backbone_cls, load_weights,
                                                      **backbone_kwargs)
        if "preprocessor" not in kwargs:
            preprocessor_kwargs.setdefault("label_names", None)  # The new head's.
            kwargs["preprocessor"] = preprocessor_cls.from_preset(
                loader.preset, head=head, **preprocessor_kwargs)
        elif preprocessor_kwargs:
            raise ValueError(
                f"{', '.join(preprocessor_kwargs)} configure the preprocessor that "
                "from_preset builds; with `preprocessor` given, set them on it.")
        return cls(head=head, **kwargs)


def _check_preprocessor(backbone, preprocessor, head):
    """A preprocessor (if any) must lay inputs out for `head` and fit the backbone."""
    preprocessor_head = getattr(preprocessor, "head", head)
    if preprocessor_head != head:
        raise ValueError(
            f"The preprocessor lays inputs out for head={preprocessor_head!r}; the "
            f"classifier has head={head!r}. Build the preprocessor with the same "
            "head (GPT1Classifier.from_preset(..., head=...) does).")
    if getattr(preprocessor, "tokenizer", None) is not None:
        backbone.check_tokenizer(preprocessor.tokenizer, "preprocessor's tokenizer")
    length = getattr(preprocessor, "sequence_length", None)
    context = getattr(backbone, "max_sequence_length", None)
    if isinstance(length, int) and isinstance(context, int) and length > context:
        raise ValueError(
            f"The preprocessor's sequence_length={length} exceeds the backbone's "
            f"max_sequence_length={context}.")


def _head_from_task(head, task):
    """The head named by the deprecated `task` argument; both must agree."""
    if head not in (None, "classification", task):
        raise ValueError(
            "`task` is the deprecated name of `head`: pass only `head`. "
            f"Received: head={head!r}, task={task!r}"
        )
    return task


def _deserialize_preprocessor(config):
    """A `GPT1ClassifierPreprocessor` (or a registered subclass) from its config.

    Keras imports no module of ours while loading, so the class must be known
    to it. The preprocessor runs TensorFlow: it is imported here, when a saved
    model holds one, rather than at the top of this file, which would import
    TensorFlow for every model on JAX and PyTorch (about 6 s and 0.5 GB there).
    `gpt1_keras.preprocessing` does not import the models: no cycle.
    """
    from gpt1_keras.preprocessing.gpt1_classifier_preprocessor import (
        GPT1ClassifierPreprocessor,
    )

    return keras.saving.deserialize_keras_object(
        config,
        custom_objects={
            keras.saving.get_registered_name(GPT1ClassifierPreprocessor):
                GPT1ClassifierPreprocessor,
        },
    )


def _unpack_validation(validation_data):
    if isinstance(validation_data, (tuple, list)) and len(validation_data) in (2, 3):
        return tuple(validation_data) + (None,) * (3 - len(validation_data))
    return validation_data, None, None
