"""`GPT1ClassifierPreprocessor`: raw strings -> the inputs of a `GPT1Classifier`."""

import keras
import keras_hub
import tensorflow as tf
from keras_hub.src.utils import preset_utils

from gpt1_keras.models import preset_loading
from gpt1_keras.models.gpt1_backbone import GPT1Backbone
from gpt1_keras.preprocessing import packing
from gpt1_keras.tokenizers.gpt1_tokenizer import GPT1Tokenizer

PREPROCESSOR_CONFIG_FILE = preset_utils.PREPROCESSOR_CONFIG_FILE

# The number of text fields per example each head takes.
_NUM_FIELDS = {"classification": (1,), "entailment": (2,), "similarity": (2,),
               "multiple_choice": (2, 3)}


@keras.saving.register_keras_serializable(package="gpt1_keras")
class GPT1ClassifierPreprocessor(keras_hub.models.TextClassifierPreprocessor):
    """Tokenizes raw texts and applies GPT-1's input transform for one head type.

    The one path from raw text to a `GPT1Classifier`: fine-tuning maps it over
    the data (`ds.map(preprocessor, num_parallel_calls=AUTOTUNE)`), the
    classifier carries it (so `fit`/`evaluate`/`predict` accept raw strings and
    `model.keras` holds it), and the SavedModel export wraps it. A
    `keras_hub.models.TextClassifierPreprocessor` running TensorFlow ops
    (usable with every Keras backend), with GPT-1's own packing instead of
    keras-hub's `MultiSegmentPacker`: `[start] a [delim] b [classify]`,
    trimmed longest-first (no `truncate` argument). The layouts are
    `packing.head_inputs`'s:

    | `head` | `x` (a batch) |
    | --- | --- |
    | `"classification"` | strings `[B]` |
    | `"entailment"`, `"similarity"` | a pair `(text_a, text_b)` of strings `[B]` |
    | `"multiple_choice"` | `(context, choices)` with choices `[B, K]`, or `(context, question, choices)` |

    `x` that is already a dict with `token_ids` passes through. A tuple is
    always the text fields of one head (a pair, or context, question and
    choices), never `(x, y)`: pass labels as the second argument or `y=`.

    `from_preset` reads the preprocessor (or, for a preset without one, the
    tokenizer) of a preset: a directory written by `save_to_preset()`,
    `"hf://openai-community/openai-gpt"`, a local Hugging Face directory, a
    `"kaggle://"` handle; `head`, `sequence_length` and `label_names` given to
    it replace the preset's.

    Args:
        tokenizer: a `GPT1Tokenizer` (or any tokenizer with its interface).
        head: the classifier head's input layout (`GPT1Classifier`'s `head`):
            one of `"classification"`, `"entailment"`, `"similarity"`,
            `"multiple_choice"`.
        sequence_length: `T`; texts are trimmed longest-first to fit.
        label_names: optional names of the classes (class index = position), or
            of the answers for multiple choice (e.g. RACE's `"A"`..`"D"`); `None`
            for regression. Stored in the config, so a saved model and its
            SavedModel export name their predictions.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        x: raw texts, as above.
        y: optional labels, returned as given.
        sample_weight: optional, returned as given.

    Returns:
        `x` (`{"token_ids", "padding_mask"}`, int32), or `(x, y)` /
        `(x, y, sample_weight)` when those are given.

    Example:
    ```python
    preprocessor = GPT1ClassifierPreprocessor(GPT1Tokenizer(), "entailment",
                                              sequence_length=128,
                                              label_names=("entailment", "not_entailment"))
    x = preprocessor((["a man sleeps ."], ["a person rests ."]))
    ds = tf.data.Dataset.from_tensor_slices(((premises, hypotheses), labels))
    ds = ds.batch(32).map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)

    # The tokenizer of a preset, for the head of a new task.
    preprocessor = GPT1ClassifierPreprocessor.from_preset(
        "hf://openai-community/openai-gpt", head="similarity", sequence_length=128)
    ```
    """

    backbone_cls = GPT1Backbone
    tokenizer_cls = GPT1Tokenizer

    def __init__(self, tokenizer, head="classification", sequence_length=512,
                 label_names=None, **kwargs):
        packing.check_head(head)
        if label_names is not None:
            label_names = tuple(str(n) for n in label_names)
            if len(label_names) < 2:
                raise ValueError(
                    "`label_names` needs at least 2 names (None for regression). "
                    f"Received: label_names={label_names}")
        kwargs.pop("truncate", None)  # Always longest-first.
        super().__init__(tokenizer=tokenizer, sequence_length=sequence_length, **kwargs)
        self.truncate = "longest_first"
        self.built = True
        self.head = head
        self.label_names = label_names

    def build(self, input_shape=None):
        # Nothing to build: `packing` replaces keras-hub's `MultiSegmentPacker`.
        self.built = True

    def __call__(self, *args, **kwargs):
        # keras-hub's preprocessing layers read a lone 2- or 3-tuple as
        # `(x, y[, sample_weight])`; here it is a head's text fields (a pair;
        # context, question, choices). Labels come as arguments.
        return keras.layers.Layer.__call__(self, *args, **kwargs)

    @classmethod
    def from_preset(cls, preset, config_file=PREPROCESSOR_CONFIG_FILE, **kwargs):
        """The preprocessor of a preset, with `head`, `sequence_length`, ... replaced.

        A preset written by a fine-tuned classifier's `save_to_preset()` holds
        this preprocessor (head, sequence length, label names); any other
        preset (a pretrained backbone and its tokenizer, a Hugging Face
        checkpoint) gives its tokenizer, and `sequence_length` defaults to the
        backbone's `max_sequence_length` (at most 512).

        Args:
            preset: a preset directory written by `save_to_preset()`,
                `"hf://openai-community/openai-gpt"` (or any Hugging Face
                OpenAI GPT checkpoint), a local Hugging Face directory, or a
                `"kaggle://..."` handle. Either backbone (`GPT1Backbone`,
                `LSTMBackbone`).
            config_file: the preprocessor's file in a keras-hub preset.
            **kwargs: constructor arguments replacing the preset's (`head`,
                `sequence_length`, `label_names`).
        """
        loader = preset_loading.get_preset_loader(preset, cls)
        if "sequence_length" not in kwargs and not preset_holds(loader, config_file, cls):
            kwargs["sequence_length"] = min(512, _max_sequence_length(loader))
        return loader.load_preprocessor(cls, config_file, **kwargs)

    def call(self, x, y=None, sample_weight=None):
        if isinstance(x, dict) and "token_ids" in x:
            return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
        fields = list(x) if isinstance(x, (tuple, list)) and self.head != "classification" \
            else [x[0] if isinstance(x, tuple) and len(x) == 1 else x]
        expected = _NUM_FIELDS[self.head]
        if len(fields) not in expected:
            raise ValueError(
                f"{self.head!r} takes {' or '.join(map(str, expected))} text field(s) "
                f"per example. Received {len(fields)}."
            )
        fields = [tf.convert_to_tensor(f, tf.string) for f in fields]
        squeeze = fields[0].shape.rank == 0  # a single example
        if squeeze:
            fields = [f[None] for f in fields]
        question = None
        if self.head == "multiple_choice" and len(fields) == 3:
            fields, question = [fields[0], fields[2]], fields[1]
        inputs = packing.head_inputs(
            self.tokenizer,
            self.head,
            fields[0],
            fields[1] if len(fields) > 1 else None,
            question=question,
            sequence_length=self.sequence_length,
        )
        # Keep the static batch size (known, e.g., with drop_remainder=True).
        inputs = {k: tf.ensure_shape(v, fields[0].shape[:1].concatenate(v.shape[1:]))
                  for k, v in inputs.items()}
        if squeeze:
            inputs = {k: v[0] for k, v in inputs.items()}
        return keras.utils.pack_x_y_sample_weight(inputs, y, sample_weight)

    def make_dataset(self, x, y=None, sample_weight=None, batch_size=32, shuffle=False,
                     seed=None):
        """A `tf.data.Dataset` of preprocessed batches from raw data.

        Args:
            x: raw texts (see the class docstring; whole columns, not batches),
                or a `tf.data.Dataset` of raw batches `x` / `(x, y[, sw])`. A
                `tf.distribute.DistributedDataset` is returned as it is: it is
                laid out per replica already, so map the preprocessor inside
                its `dataset_fn` (as fine-tuning does).
            y, sample_weight: optional columns.
            batch_size: examples per batch (ignored for a dataset).
            shuffle: shuffle the examples each epoch (not a given dataset).
            seed: the shuffle seed.
        """
        if isinstance(x, tf.distribute.DistributedDataset):
            return x
        if isinstance(x, tf.data.Dataset):
            ds = x
        else:
            if isinstance(x, list) and self.head != "classification":
                x = tuple(x)
            ds = tf.data.Dataset.from_tensor_slices(
                keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
            )
            if shuffle:
                ds = ds.shuffle(ds.cardinality(), seed=seed, reshuffle_each_iteration=True)
            ds = ds.batch(batch_size)
        return ds.map(self, num_parallel_calls=tf.data.AUTOTUNE).prefetch(
            tf.data.AUTOTUNE
        )

    def get_config(self):
        config = super().get_config()  # tokenizer, sequence_length, config_file, ...
        config.pop("truncate", None)
        config.update({
            "head": self.head,
            "label_names": None if self.label_names is None else list(self.label_names),
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "task" in config:  # Saved before the head type had its own name.
            config["head"] = config.pop("task")
        if isinstance(config.get("tokenizer"), dict):
            config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)


def preset_holds(loader, config_file, cls):
    """Whether a keras-hub preset (its loader) holds an object of `cls` in `config_file`."""
    if not isinstance(loader, preset_utils.KerasPresetLoader):
        return False
    if not preset_utils.check_file_exists(loader.preset, config_file):
        return False
    config = preset_loading.load_preset_json(loader.preset, config_file)
    return issubclass(preset_utils.check_config_class(config), cls)


def _max_sequence_length(loader):
    """The `max_sequence_length` of the backbone a preset holds."""
    if hasattr(loader, "backbone_config"):  # A Hugging Face checkpoint.
        config = loader.backbone_config()
    else:
        config = loader.config.get("config", {})
    if not isinstance(config.get("max_sequence_length"), int):
        raise preset_loading.PresetError(
            f"The backbone config of preset {loader.preset!r} has no int "
            "`max_sequence_length`: pass `sequence_length`.")
    return config["max_sequence_length"]
