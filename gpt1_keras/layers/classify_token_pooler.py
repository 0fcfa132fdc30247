import keras
from keras import ops


@keras.saving.register_keras_serializable(package="gpt1_keras")
class ClassifyTokenPooler(keras.layers.Layer):
    """Picks the hidden state of the last real token (`_classify_`) of each row.

    Padding is on the right, so that token sits at `sum(padding_mask) - 1`.

    Call arguments:
        hidden: `(N, T, C)` hidden states.
        padding_mask: `(N, T)`, 1 for real tokens.

    Returns:
        `(N, C)`.

    Example:
    ```python
    hidden = keras.ops.reshape(keras.ops.arange(12.0), (2, 3, 2))
    ClassifyTokenPooler()(hidden, np.array([[1, 1, 1], [1, 0, 0]]))
    # [[4., 5.], [6., 7.]]: row 0's position 2, row 1's position 0
    ```
    """

    def call(self, hidden, padding_mask):
        mask = ops.cast(padding_mask, "int32")
        last = ops.maximum(ops.sum(mask, axis=-1) - 1, 0)  # (N,)
        index = ops.reshape(last, (-1, 1, 1))  # (N, 1, 1) -> broadcast over C
        return ops.squeeze(ops.take_along_axis(hidden, index, axis=1), axis=1)

    def compute_output_shape(self, hidden_shape, padding_mask_shape):
        return (hidden_shape[0], hidden_shape[2])
