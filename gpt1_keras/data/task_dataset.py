"""Fine-tuning data on `tf.data`: labelled examples -> batches a `GPT1Classifier` trains on.

TensorFlow-only module. `task_batches` checks, shards, shuffles, repeats and
batches raw examples into `(x, y)` with `x` in `GPT1ClassifierPreprocessor`'s
layout; fine-tuning maps the model's preprocessor over them
(`ds.map(preprocessor, num_parallel_calls=AUTOTUNE)`), which applies GPT-1's
input transforms (`gpt1_keras.preprocessing.packing`, re-exported here).
`make_task_dataset` is both steps in one call, with a preprocessor of its own.

Each element of `make_task_dataset` is `(x, y)` with
`x = {"token_ids": int32, "padding_mask": int32}` of the shapes in
`packing` and `y` the labels: int32 class ids (the index of the right choice
for multiple choice) or float32 with `regression=True`.
"""

import tensorflow as tf

from gpt1_keras.preprocessing.gpt1_classifier_preprocessor import GPT1ClassifierPreprocessor
from gpt1_keras.layers.heads import HEADS  # noqa: F401  (re-exported)
from gpt1_keras.layers.heads import check_head
from gpt1_keras.preprocessing.packing import head_inputs  # noqa: F401  (re-exported)
from gpt1_keras.preprocessing.packing import pack_segments  # noqa: F401  (re-exported)
from gpt1_keras.preprocessing.packing import trim_longest_first  # noqa: F401  (re-exported)

AUTOTUNE = tf.data.AUTOTUNE


def make_task_dataset(examples, tokenizer, head, sequence_length=512, **kwargs):
    """Builds a fine-tuning dataset of `(x, y)` for a GPT-1 head.

    `task_batches(examples, head, **kwargs)` mapped with a
    `GPT1ClassifierPreprocessor(tokenizer, head, sequence_length)`.

    Args:
        examples: as in `task_batches`.
        tokenizer: e.g. `GPT1Tokenizer()`.
        head: one of `HEADS`.
        sequence_length: tokens per packed sequence.
        **kwargs: the rest of `task_batches`' arguments (`batch_size`,
            `regression`, `num_classes`, `shuffle`, `seed`,
            `shuffle_buffer_size`, `repeat`, `drop_remainder`,
            `input_context`).

    Example:
    >>> examples = (["a good movie", "boring"], [1, 0])
    >>> ds = make_task_dataset(examples, GPT1Tokenizer(), "classification",
    ...                        sequence_length=64, batch_size=2)
    """
    ds = task_batches(examples, head, **kwargs)  # Checks `head` and the examples first.
    preprocessor = GPT1ClassifierPreprocessor(tokenizer, head, sequence_length)
    return ds.map(preprocessor, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def task_batches(
    examples,
    head,
    batch_size=32,
    regression=False,
    num_classes=None,
    shuffle=False,
    seed=None,
    shuffle_buffer_size=10_000,
    repeat=False,
    drop_remainder=False,
    input_context=None,
):
    """Raw `(x, y)` batches for a `GPT1ClassifierPreprocessor` of `head`.

    Args:
        examples: a `tf.data.Dataset` of tuples, or a tuple of equally long
            columns (lists or arrays) fed to `from_tensor_slices`. Per example:
            `(text_a, text_b, label)`; classification also accepts
            `(text, label)` (a given `text_b` must be empty); multiple choice
            takes `(context, choices, label)` with `choices` a `[K]` string
            vector (same K for all examples) or
            `(context, question, choices, label)`.
        head: the model's head type, one of `HEADS`; it fixes the example
            layout (`"classification"`, `"entailment"`, `"similarity"`,
            `"multiple_choice"`).
        batch_size: the global batch size. With `input_context`, each replica
            gets `input_context.get_per_replica_batch_size(batch_size)`.
        regression: float32 labels (e.g. STS-B) instead of int32 classes.
        num_classes: if given, integer labels must lie in
            `[0, num_classes)`; checked when iterating.
        shuffle: shuffle the examples.
        seed: the shuffle seed.
        shuffle_buffer_size: examples held in the shuffle buffer.
        repeat: repeat forever.
        drop_remainder: drop the last, smaller batch.
        input_context: a `tf.distribute.InputContext`; examples are sharded
            between input pipelines.

    Returns:
        A `tf.data.Dataset` of `(x, y)`: `x` the text fields without the
        label (one string tensor for classification, else a tuple), `y`
        int32 (float32 with `regression`).

    Raises:
        ValueError: an unknown head, or examples of the wrong structure or
            dtype (the message names the field). Bad labels (negative, out of
            range, or a non-empty `text_b` for classification) raise
            `tf.errors.InvalidArgumentError` when iterated.
    """
    check_head(head)
    if regression and head == "multiple_choice":
        raise ValueError("`regression` does not apply to 'multiple_choice'.")
    if not isinstance(examples, tf.data.Dataset):
        examples = tf.data.Dataset.from_tensor_slices(tuple(examples))
    fields = _field_names(head, examples.element_spec)
    _check_spec(head, fields, examples.element_spec, regression)
    examples = examples.map(lambda *e: dict(zip(fields, e)))

    if input_context is not None:
        if input_context.num_input_pipelines > 1:
            examples = examples.shard(
                input_context.num_input_pipelines,
                input_context.input_pipeline_id,
            )
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    if shuffle:
        examples = examples.shuffle(shuffle_buffer_size, seed=seed)
    if repeat:
        examples = examples.repeat()

    def checked(batch):
        checks = []
        label = batch["label"]
        if not regression:
            checks.append(tf.debugging.assert_non_negative(
                label, message=f"{head}: `label` must be >= 0"))
            if num_classes is not None:
                checks.append(tf.debugging.assert_less(
                    tf.cast(label, tf.int64),
                    tf.constant(num_classes, tf.int64),
                    message=f"{head}: `label` must be < num_classes="
                            f"{num_classes}"))
            if head == "multiple_choice":
                checks.append(tf.debugging.assert_less(
                    tf.cast(label, tf.int32), tf.shape(batch["text_b"])[1],
                    message="multiple_choice: `label` must index a choice"))
        if head == "classification" and "text_b" in batch:
            checks.append(tf.debugging.assert_equal(
                tf.strings.length(batch["text_b"]), 0,
                message="classification takes one text: `text_b` must be "
                        "empty (use head='entailment' for pairs)"))
        with tf.control_dependencies(checks):
            y = tf.cast(label, tf.float32 if regression else tf.int32)
            if head == "classification":
                return tf.identity(batch["text_a"]), y
            names = [f for f in fields if f not in ("label",)]
            return tuple(tf.identity(batch[f]) for f in names), y

    ds = examples.batch(batch_size, drop_remainder=drop_remainder)
    return ds.map(checked, num_parallel_calls=AUTOTUNE, deterministic=True)


def _field_names(head, spec):
    size = len(spec) if isinstance(spec, tuple) else 1
    layouts = {
        "classification": {2: ("text_a", "label"),
                           3: ("text_a", "text_b", "label")},
        "entailment": {3: ("text_a", "text_b", "label")},
        "similarity": {3: ("text_a", "text_b", "label")},
        "multiple_choice": {3: ("text_a", "text_b", "label"),
                            4: ("text_a", "question", "text_b", "label")},
    }[head]
    if not isinstance(spec, tuple) or size not in layouts:
        expected = " or ".join(
            "(" + ", ".join(f) + ")" for f in layouts.values())
        raise ValueError(
            f"{head!r} examples must be tuples {expected}. "
            f"Received element_spec={spec}"
        )
    return layouts[size]


def _check_spec(head, fields, spec, regression):
    for name, field in zip(fields, spec):
        if not isinstance(field, tf.TensorSpec):
            raise ValueError(
                f"{head}: `{name}` must be a dense tensor. Received: {field}"
            )
        if name == "label":
            # Regression takes float or integer scores; classes are integers.
            ok = field.dtype.is_integer or (
                regression and field.dtype.is_floating)
            if not ok or field.shape.rank != 0:
                kind = "numeric" if regression else "integer (class id)"
                raise ValueError(
                    f"{head}: `label` must be a scalar {kind}; pass "
                    f"regression=True for float scores. Received: {field}"
                )
            continue
        rank = 1 if (head == "multiple_choice" and name == "text_b") else 0
        if field.dtype != tf.string or field.shape.rank != rank:
            what = "a [K] vector of strings" if rank else "a scalar string"
            raise ValueError(
                f"{head}: `{name}` must be {what}. Received: {field}"
            )
