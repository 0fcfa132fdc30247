import keras
from keras import ops


@keras.saving.register_keras_serializable(package="gpt1_keras")
class FlattenSequences(keras.layers.Layer):
    """`(B, S, T)` -> `(B*S, T)`: every sequence of every example as one row.

    The classifier runs the `S` orders (similarity) or choices (multiple
    choice) of each example through the backbone as one batch;
    `UnflattenSequences` groups the results back.

    Call arguments:
        x: `(B, S, T)` tensor.

    Returns:
        `(B*S, T)`.
    """

    def call(self, x):
        return ops.reshape(x, (-1, ops.shape(x)[-1]))

    def compute_output_shape(self, shape):
        return (None, shape[-1])
