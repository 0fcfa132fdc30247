import keras
from keras import ops


@keras.saving.register_keras_serializable(package="gpt1_keras")
class UnflattenSequences(keras.layers.Layer):
    """`(B*S, ...)` -> `(B, S, ...)`, with `S` read from `like` `(B, S, T)`.

    The inverse of `FlattenSequences`.

    Call arguments:
        x: `(B*S, ...)` tensor.
        like: the `(B, S, T)` tensor that was flattened.

    Returns:
        `(B, S, ...)`.
    """

    def call(self, x, like):
        return ops.reshape(x, (-1, ops.shape(like)[1]) + tuple(x.shape[1:]))

    def compute_output_shape(self, x_shape, like_shape):
        return (like_shape[0], like_shape[1]) + tuple(x_shape[1:])
