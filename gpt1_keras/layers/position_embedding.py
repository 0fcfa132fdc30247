import keras
from keras import ops

from gpt1_keras.layers.initializers import gpt1_initializer


@keras.saving.register_keras_serializable(package="gpt1_keras")
class PositionEmbedding(keras.layers.Layer):
    """Learned position embeddings, one vector per position.

    GPT-1 learns a `(sequence_length, hidden_dim)` table and adds row `t` to the
    token embedding at position `t`.

    Args:
        sequence_length: int. The largest number of positions (the context).
        initializer: initializer for the table. Defaults to N(0, 0.02) as in GPT-1.
        **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: a `(batch, length, hidden_dim)` tensor whose positions are embedded.
        start_index: int or scalar tensor. Position of the first element of
            `inputs` (non-zero when decoding with a key/value cache).

    Example:
    ```python
    layer = PositionEmbedding(sequence_length=512)
    positions = layer(keras.ops.zeros((2, 10, 768)))  # (1, 10, 768)
    ```
    """

    def __init__(self, sequence_length, initializer=None, **kwargs):
        super().__init__(**kwargs)
        if sequence_length is None or int(sequence_length) < 1:
            raise ValueError(
                "`sequence_length` must be a positive integer. "
                f"Received: sequence_length={sequence_length}"
            )
        self.sequence_length = int(sequence_length)
        self.initializer = keras.initializers.get(
            initializer or gpt1_initializer()
        )

    def build(self, inputs_shape):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.sequence_length, inputs_shape[-1]),
            initializer=self.initializer,
        )
        self.built = True

    def call(self, inputs, start_index=0):
        length = ops.shape(inputs)[1]
        if isinstance(length, int) and length > self.sequence_length:
            raise ValueError(
                f"Input length {length} exceeds the model's context of "
                f"{self.sequence_length} positions."
            )
        # (P, C) -> (1, T, C): rows start_index .. start_index + T - 1.
        embeddings = ops.convert_to_tensor(self.embeddings)
        positions = ops.slice(
            embeddings, (start_index, 0), (length, ops.shape(embeddings)[1])
        )
        return ops.expand_dims(ops.cast(positions, self.compute_dtype), 0)

    def compute_output_shape(self, inputs_shape):
        return (1,) + tuple(inputs_shape[1:])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "initializer": keras.initializers.serialize(self.initializer),
            }
        )
        return config
