"""Small graph helpers shared by the serving modules (TensorFlow-only)."""

import functools

import tensorflow as tf


def signature_function(method, input_signature):
    """`method` as a `tf.function` over `input_signature` whose inputs' shapes are
    checked when it runs.

    A loaded SavedModel signature does not check the shapes it is fed; a string
    matrix where a vector is due would fail deep in the graph. `tf.ensure_shape`
    on every input fails first, naming the input: "Shape of tensor text [2,1] is
    not compatible with expected shape [?]".
    """
    @functools.wraps(method)
    def checked(*args):
        return method(*[tf.ensure_shape(a, s.shape) for a, s in zip(args, input_signature)])

    return tf.function(checked, input_signature=input_signature, autograph=False)


def tokenizer_resources(tokenizer):
    """The lookup tables (and other TF resources) a tokenizer holds, at any depth.

    A SavedModel must track every resource its functions use; the tokenizer's
    hash tables are found here (in its attributes, and in those of the objects
    it holds, such as its BPE encoder) so that any tokenizer with the
    `GPT1Tokenizer` interface exports, whatever it names them.
    """
    found, seen = [], set()

    def visit(value, depth):
        if id(value) in seen or depth > 3:
            return
        seen.add(id(value))
        if isinstance(value, tf.saved_model.experimental.TrackableResource):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v, depth + 1)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v, depth + 1)
        elif hasattr(value, "__dict__") and not isinstance(value, (type, tf.Tensor)):
            for v in vars(value).values():
                visit(v, depth + 1)

    for value in vars(tokenizer).values():
        visit(value, 0)
    return found


def broadcast_to_batch(value, batch, name):
    """A `[1]` or `[batch]` setting as `[batch]`; another size raises a clear error."""
    value = tf.reshape(value, [-1])
    size = tf.size(value)
    check = tf.debugging.Assert(
        (size == batch) | (size == 1),
        [f"`{name}` must have 1 entry or one per prompt. Entries received:", size,
         "prompts:", batch],
    )
    with tf.control_dependencies([check]):
        return tf.cond(size == 1, lambda: tf.fill([batch], value[0]),
                       lambda: tf.identity(value))


def same_batch_check(a, b, name_a, name_b):
    """An assertion that `a` and `b` have as many rows, naming both sizes."""
    return tf.debugging.Assert(
        tf.equal(tf.shape(a)[0], tf.shape(b)[0]),
        [f"`{name_a}` and `{name_b}` need one entry each per example. Received entries:",
         tf.shape(a)[0], tf.shape(b)[0]],
    )


class Untracked:
    """Holds Python objects without putting them in the SavedModel's object graph."""

    def __init__(self, **objects):
        self.__dict__.update(objects)
