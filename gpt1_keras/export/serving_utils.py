"""Small graph helpers shared by the serving modules, and TF Serving's warm-up
records (TensorFlow-only; the records need the `serving` extra)."""

import functools

import numpy as np
import tensorflow as tf

from gpt1_keras import extras

# TF Serving replays this file (in the version's `assets.extra/`) when it loads the version.
WARMUP_FILE = "tf_serving_warmup_requests"


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


def shared_function(fn, input_signature):
    """`fn` as one `tf.function` for every signature that calls it.

    A Python function called inside a signature is traced into that signature's
    graph: called from several signatures (or twice in one), its ops are stored
    once per call. The tokenizer's graph is the largest part of an exported
    language model's functions (about 1.6 MB of ops for the tiny model, beside its
    tables and constants), so `score`, `score_continuation` (twice) and
    `generate` call it through one function, which the SavedModel stores once.
    """
    return tf.function(fn, input_signature=input_signature, autograph=False)


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


def write_warmup_requests(path, requests, signatures):
    """Writes TF Serving's warm-up records: a TFRecord file of `PredictionLog`s.

    TF Serving replays `assets.extra/tf_serving_warmup_requests` when it loads a
    model version, before the version takes traffic, so that the graph
    optimisation of each signature's first call (seconds for the tokenizer's
    graph) happens at load, not in a client's first request. Every signature
    needs its own records (each is optimised on its own first call).

    Args:
        path: the file to write.
        requests: `[(signature name, {input name: values})]` (NumPy-able values;
            strings as `str` or `bytes`), every signature of `signatures` at
            least once.
        signatures: `{name: concrete function}`: each request names every input
            of its signature, converted to the signature's dtype, and fits its
            shape.

    Raises:
        MissingExtraError: the `serving` extra is not installed.
        ValueError: a signature without a request, or a request that does not
            fit its signature (the name, the inputs and the specs).
    """
    what = "Writing TF Serving warm-up records"
    predict_pb2 = extras.require("tensorflow_serving.apis.predict_pb2", what)
    prediction_log_pb2 = extras.require("tensorflow_serving.apis.prediction_log_pb2", what)
    missing = sorted(set(signatures) - {name for name, _ in requests})
    if missing:
        raise ValueError(f"No warm-up request for the signatures {missing}.")
    with tf.io.TFRecordWriter(path) as writer:
        for name, inputs in requests:
            args, kwargs = signatures[name].structured_input_signature
            specs = {s.name: s for s in list(args) + list(kwargs.values())}
            if set(inputs) != set(specs):
                raise ValueError(f"The warm-up request of {name!r} has inputs {sorted(inputs)}; "
                                 f"the signature takes {sorted(specs)}.")
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = name
            for key, value in inputs.items():
                spec = specs[key]
                array = np.asarray(value, dtype=object if spec.dtype == tf.string
                                   else spec.dtype.as_numpy_dtype)
                if not spec.shape.is_compatible_with(array.shape):
                    raise ValueError(f"The warm-up input {name}/{key} has shape {array.shape}; "
                                     f"the signature takes {spec.shape}.")
                request.inputs[key].CopyFrom(tf.make_tensor_proto(array, dtype=spec.dtype))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
