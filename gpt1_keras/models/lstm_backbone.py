import keras
from keras import ops

from gpt1_keras.layers.seeded_dropout import seeded_dropout
from gpt1_keras.models.preset_loading import GPT1FamilyBackbone


def _gpt1_initializer():
    return keras.initializers.RandomNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="gpt1_keras")
class LSTMBackbone(GPT1FamilyBackbone):
    """The LSTM baseline of GPT-1's ablations: embeddings, one LSTM, a projection.

    `x = dropout(token_embedding[ids])`, one left-to-right `keras.layers.LSTM`
    of `lstm_units`, dropout on its outputs, then a linear projection back to
    `hidden_dim`, the embedding width, so that the tied LM head of
    `GPT1CausalLM` (`hidden @ token_embedding^T`) and the heads and auxiliary LM
    loss of `GPT1Classifier` work on it unchanged. It takes the same inputs as
    `GPT1Backbone` and returns `(batch, length, hidden_dim)` hidden states.

    There are no position embeddings: the recurrence orders the tokens. Inputs
    are right-padded (as everywhere in gpt1-keras), and the LSTM reads from the
    left, so padding never changes the outputs at real positions; the outputs
    at padded positions are zeros.

    Args:
        vocabulary_size: int. Rows of the token embedding (40,478 BPE tokens plus
            the 3 special tokens in the presets).
        hidden_dim: int. Embedding width, and width of the outputs.
        lstm_units: int. Width of the LSTM's hidden and cell states.
        dropout: float. Dropout on the embeddings and on the LSTM outputs.
        max_sequence_length: int. The context the tasks and `generate` assume
            (the LSTM itself runs on any length).
        dtype: dtype or `keras.DTypePolicy` for the model's computations and
            weights (e.g. `"mixed_bfloat16"`).
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments (a dict):
        token_ids: int `(batch, length)` tensor.
        padding_mask: `(batch, length)` tensor, 1 (or True) for real tokens,
            on the left of each row.

    A `keras_hub.models.Backbone`: `save_to_preset()` writes a preset directory
    that `from_preset()` and `keras_hub.models.Backbone.from_preset()` load
    (weights included); `from_architecture()` builds an untrained model from an
    architecture configuration (`lstm_small`, `lstm_tiny`).

    For autoregressive decoding, `empty_cache()` and `call_with_cache()` run the
    same layers one step at a time; the cache is the LSTM state after every
    position (see `GPT1CausalLM.generate`).

    Example:
    ```python
    backbone = LSTMBackbone.from_architecture("lstm_tiny")
    hidden = backbone({
        "token_ids": np.array([[40478, 249, 1362, 40480]]),
        "padding_mask": np.array([[1, 1, 1, 1]]),
    })  # (1, 4, 32)
    lm = GPT1CausalLM(backbone)  # the tied head over the same embedding
    ```
    """

    architecture = "lstm"

    def __init__(
        self,
        vocabulary_size,
        hidden_dim,
        lstm_units,
        dropout=0.1,
        max_sequence_length=512,
        dtype=None,
        **kwargs,
    ):
        # === Layers ===
        # Locals first, attributes after `super().__init__()` (torch requires it).
        token_embedding = keras.layers.ReversibleEmbedding(
            input_dim=vocabulary_size,
            output_dim=hidden_dim,
            embeddings_initializer=_gpt1_initializer(),
            dtype=dtype,
            name="token_embedding",
        )
        embeddings_dropout = seeded_dropout(
            dropout, dtype=dtype, name="embeddings_dropout"
        )
        # Keras' default LSTM (sigmoid gates, tanh, forget-gate bias 1), which
        # uses cuDNN where the backend has it.
        lstm = keras.layers.LSTM(
            lstm_units, return_sequences=True, dtype=dtype, name="lstm"
        )
        output_dropout = seeded_dropout(dropout, dtype=dtype, name="output_dropout")
        output_projection = keras.layers.Dense(
            hidden_dim,
            kernel_initializer=_gpt1_initializer(),
            dtype=dtype,
            name="output_projection",
        )

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        x = embeddings_dropout(token_embedding(token_ids))  # (B, T, C)
        # No mask into the LSTM: with right padding, position t only reads 0..t.
        x = lstm(x)  # (B, T, U)
        x = output_projection(output_dropout(x))  # (B, T, U) -> (B, T, C)
        # Zeros at the padding: (B, T) -> (B, T, 1).
        x = x * ops.expand_dims(ops.cast(padding_mask, x.dtype), -1)
        # `keras_hub.models.Backbone` sets the dtype policy from `dtype`.
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=x,
            dtype=dtype,
            **kwargs,
        )

        self.token_embedding = token_embedding
        self.embeddings_dropout = embeddings_dropout
        self.lstm = lstm
        self.output_dropout = output_dropout
        self.output_projection = output_projection

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.hidden_dim = hidden_dim
        self.lstm_units = lstm_units
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length

    def empty_cache(self, batch_size, max_length):
        """A zero state cache for `call_with_cache()`.

        Args:
            batch_size: int or scalar int tensor. Rows decoded together.
            max_length: int or scalar int tensor. Positions the cache holds
                (prompt plus new tokens, at most `max_sequence_length`; an int
                is checked, a tensor, such as a served request's buffer width
                in a TensorFlow graph, is the caller's to bound).

        Returns:
            A tuple `(h, c)` of `(batch_size, max_length, lstm_units)` tensors in
            the compute dtype: the LSTM's hidden and cell states after reading
            each position. Keeping every position (not only the latest state)
            gives the key/value cache's contract: a call at position `i` starts
            from the state after `i - 1`, whatever was written later, which is
            what `GPT1CausalLM.generate` needs for right-padded prompts.
        """
        self.check_cache_length(max_length)
        shape = (batch_size, max_length, self.lstm_units)
        dtype = self.lstm.compute_dtype
        return ops.zeros(shape, dtype=dtype), ops.zeros(shape, dtype=dtype)

    def call_with_cache(self, token_ids, cache, cache_update_index):
        """Runs `token_ids` at positions `cache_update_index...` against a cache.

        Equivalent to the rows `cache_update_index .. cache_update_index + T - 1`
        of a full forward pass (inference mode, no padding) over the tokens
        written to the cache so far plus `token_ids`.

        Args:
            token_ids: int `(batch, T)` tensor: the prompt to prefill (with
                `cache_update_index=0`) or the latest token (`T == 1`).
            cache: the `(h, c)` tuple of `(batch, max_length, lstm_units)`
                tensors from `empty_cache()` or a previous call.
            cache_update_index: int or scalar int tensor, the position of
                `token_ids[:, 0]` in the sequence.

        Returns:
            `(hidden_states, cache)`: `(batch, T, hidden_dim)` outputs and the
            cache with the states after these positions written.
        """
        h_cache, c_cache = cache
        batch, _, units = ops.shape(h_cache)
        index = cache_update_index
        # The state after position index - 1; zeros before position 0.
        previous = ops.maximum(index - 1, 0)
        started = ops.cast(ops.greater(index, 0), h_cache.dtype)
        h = ops.slice(h_cache, (0, previous, 0), (batch, 1, units))[:, 0] * started
        c = ops.slice(c_cache, (0, previous, 0), (batch, 1, units))[:, 0] * started

        x = self.embeddings_dropout(self.token_embedding(token_ids), training=False)
        hs, cs = self._run_cell(x, h, c)  # (B, T, U) each
        h_cache = ops.slice_update(h_cache, (0, index, 0), hs)
        c_cache = ops.slice_update(c_cache, (0, index, 0), cs)
        hidden = self.output_projection(self.output_dropout(hs, training=False))
        return hidden, (h_cache, c_cache)

    def _run_cell(self, x, h, c):
        """The LSTM's own cell over `(B, T, C)` inputs from state `(h, c)`.

        Returns the hidden and cell states after every step, `(B, T, U)` each
        (`keras.layers.LSTM` returns only the hidden ones).
        """
        cell = self.lstm.cell

        def step(state, x_t):
            _, (h, c) = cell(x_t, list(state), training=False)
            return (h, c), (h, c)

        if x.shape[1] == 1:  # one decoding step: no loop
            (h, c), _ = step((h, c), x[:, 0])
            return h[:, None], c[:, None]
        # (B, T, C) -> (T, B, C): scan over time.
        _, (hs, cs) = ops.scan(step, (h, c), ops.transpose(x, (1, 0, 2)))
        return ops.transpose(hs, (1, 0, 2)), ops.transpose(cs, (1, 0, 2))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "hidden_dim": self.hidden_dim,
                "lstm_units": self.lstm_units,
                "dropout": self.dropout,
                "max_sequence_length": self.max_sequence_length,
            }
        )
        return config
