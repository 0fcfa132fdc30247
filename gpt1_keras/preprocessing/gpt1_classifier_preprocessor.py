"""`GPT1ClassifierPreprocessor`: raw strings -> the inputs of a `GPT1Classifier`."""

import keras
import tensorflow as tf

from gpt1_keras.preprocessing import packing

# The number of text fields per example each head takes.
_NUM_FIELDS = {"classification": (1,), "entailment": (2,), "similarity": (2,),
               "multiple_choice": (2, 3)}


@keras.saving.register_keras_serializable(package="gpt1_keras")
class GPT1ClassifierPreprocessor(keras.layers.Layer):
    """Tokenizes raw texts and applies GPT-1's input transform for one head type.

    The one path from raw text to a `GPT1Classifier`: fine-tuning maps it over
    the data (`ds.map(preprocessor, num_parallel_calls=AUTOTUNE)`), the
    classifier carries it (so `fit`/`evaluate`/`predict` accept raw strings and
    `model.keras` holds it), and the SavedModel export wraps it. A TensorFlow
    preprocessing layer (like keras-hub's), usable with every Keras backend.
    The layouts are `packing.head_inputs`'s:

    | `head` | `x` (a batch) |
    | --- | --- |
    | `"classification"` | strings `[B]` |
    | `"entailment"`, `"similarity"` | a pair `(text_a, text_b)` of strings `[B]` |
    | `"multiple_choice"` | `(context, choices)` with choices `[B, K]`, or `(context, question, choices)` |

    `x` that is already a dict with `token_ids` passes through.

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
    ```
    """

    def __init__(self, tokenizer, head="classification", sequence_length=512,
                 label_names=None, **kwargs):
        if head not in packing.HEADS:
            raise ValueError(
                f"`head` must be one of {packing.HEADS}. Received: head={head!r}"
            )
        if label_names is not None:
            label_names = tuple(str(n) for n in label_names)
            if len(label_names) < 2:
                raise ValueError(
                    "`label_names` needs at least 2 names (None for regression). "
                    f"Received: label_names={label_names}")
        super().__init__(**kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True
        self.tokenizer = tokenizer
        self.head = head
        self.sequence_length = sequence_length
        self.label_names = label_names

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
        return {
            **super().get_config(),
            "tokenizer": keras.saving.serialize_keras_object(self.tokenizer),
            "head": self.head,
            "sequence_length": self.sequence_length,
            "label_names": None if self.label_names is None else list(self.label_names),
        }

    @classmethod
    def from_config(cls, config):
        # Registers GPT1Tokenizer with Keras before deserializing it.
        from gpt1_keras.tokenizers import gpt1_tokenizer  # noqa: F401

        config = dict(config)
        if "task" in config:  # Saved before the head type had its own name.
            config["head"] = config.pop("task")
        config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)
