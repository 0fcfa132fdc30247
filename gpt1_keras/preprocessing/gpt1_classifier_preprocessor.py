"""`GPT1ClassifierPreprocessor`: raw strings -> the inputs of a `GPT1Classifier`."""

import keras
import tensorflow as tf

from gpt1_keras.data import task_dataset


@keras.saving.register_keras_serializable(package="gpt1_keras")
class GPT1ClassifierPreprocessor(keras.layers.Layer):
    """Tokenizes raw texts and applies GPT-1's input transform for one task.

    A TensorFlow preprocessing layer (like keras-hub's): it works attached to a
    `GPT1Classifier` (which then accepts raw strings in `fit`/`evaluate`/
    `predict`) and inside `tf.data.Dataset.map(..., num_parallel_calls=AUTOTUNE)`,
    on every Keras backend. The layouts are `task_dataset.task_inputs`'s:

    | `task` | `x` (a batch) |
    | --- | --- |
    | `"classification"` | strings `[B]` |
    | `"entailment"`, `"similarity"` | a pair `(text_a, text_b)` of strings `[B]` |
    | `"multiple_choice"` | `(context, choices)` with choices `[B, K]`, or `(context, question, choices)` |

    `x` that is already a dict with `token_ids` passes through, so data made by
    `make_task_dataset` can be fed to a classifier with a preprocessor.

    Args:
        tokenizer: a `GPT1Tokenizer` (or any tokenizer with its interface).
        task: one of `"classification"`, `"entailment"`, `"similarity"`,
            `"multiple_choice"`.
        sequence_length: `T`; texts are trimmed longest-first to fit.
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
                                              sequence_length=128)
    x = preprocessor((["a man sleeps ."], ["a person rests ."]))
    ds = tf.data.Dataset.from_tensor_slices(((premises, hypotheses), labels))
    ds = ds.batch(32).map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE)
    ```
    """

    def __init__(self, tokenizer, task="classification", sequence_length=512, **kwargs):
        if task not in task_dataset.TASKS:
            raise ValueError(
                f"`task` must be one of {task_dataset.TASKS}. Received: task={task!r}"
            )
        super().__init__(**kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True
        self.tokenizer = tokenizer
        self.task = task
        self.sequence_length = sequence_length

    def call(self, x, y=None, sample_weight=None):
        if isinstance(x, dict) and "token_ids" in x:
            return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
        fields = list(x) if isinstance(x, (tuple, list)) and self.task != "classification" \
            else [x[0] if isinstance(x, tuple) and len(x) == 1 else x]
        expected = {"classification": (1,), "entailment": (2,), "similarity": (2,),
                    "multiple_choice": (2, 3)}[self.task]
        if len(fields) not in expected:
            raise ValueError(
                f"{self.task!r} takes {' or '.join(map(str, expected))} text field(s) "
                f"per example. Received {len(fields)}."
            )
        fields = [tf.convert_to_tensor(f, tf.string) for f in fields]
        squeeze = fields[0].shape.rank == 0  # a single example
        if squeeze:
            fields = [f[None] for f in fields]
        question = None
        if self.task == "multiple_choice" and len(fields) == 3:
            fields, question = [fields[0], fields[2]], fields[1]
        inputs = task_dataset.task_inputs(
            self.tokenizer,
            self.task,
            fields[0],
            fields[1] if len(fields) > 1 else None,
            question=question,
            sequence_length=self.sequence_length,
        )
        inputs = {k: tf.cast(v, tf.int32) for k, v in inputs.items()}
        if squeeze:
            inputs = {k: v[0] for k, v in inputs.items()}
        return keras.utils.pack_x_y_sample_weight(inputs, y, sample_weight)

    def make_dataset(self, x, y=None, sample_weight=None, batch_size=32, shuffle=False,
                     seed=None):
        """A `tf.data.Dataset` of preprocessed batches from raw data.

        Args:
            x: raw texts (see the class docstring; whole columns, not batches),
                or a `tf.data.Dataset` of raw batches `x` / `(x, y[, sw])`.
            y, sample_weight: optional columns.
            batch_size: examples per batch (ignored for a dataset).
            shuffle: shuffle the examples each epoch (not a given dataset).
            seed: the shuffle seed.
        """
        if isinstance(x, tf.data.Dataset):
            ds = x
        else:
            if isinstance(x, list) and self.task != "classification":
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
            "task": self.task,
            "sequence_length": self.sequence_length,
        }

    @classmethod
    def from_config(cls, config):
        # Registers GPT1Tokenizer with Keras before deserializing it.
        from gpt1_keras.tokenizers import gpt1_tokenizer  # noqa: F401

        config = dict(config)
        config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)
