import math

import keras
from keras import ops

from gpt1_keras.layers.initializers import gpt1_initializer
from gpt1_keras.layers.seeded_dropout import dropout_with_seed
from gpt1_keras.layers.seeded_dropout import seeded_dropout

# A large negative that is finite in every float dtype we compute softmax in (float32).
_MASKED_SCORE = -1e9


@keras.saving.register_keras_serializable(package="gpt1_keras")
class CausalSelfAttention(keras.layers.Layer):
    """Multi-head causal self-attention with a fused QKV projection (GPT-1).

    `c_attn` projects the input to queries, keys and values at once
    (`hidden_dim -> 3 * hidden_dim`), scores are scaled by `1/sqrt(head_dim)`,
    future positions (and padding keys) are masked, and `c_proj` projects the
    concatenated heads back. Softmax runs in float32 under mixed precision.

    Args:
        num_heads: int. Number of attention heads; must divide the input width.
        dropout: float. Dropout on the attention probabilities.
        kernel_initializer: initializer for `c_attn`/`c_proj` kernels
            (default N(0, 0.02)); biases start at zero.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, length, hidden_dim)` tensor.
        padding_mask: optional `(batch, key_length)` bool/int tensor, 1 for real
            tokens. Keys at padded positions receive no attention. `key_length`
            is `length`, or the cache's `max_length` when a cache is given.
        cache: optional `(batch, 2, num_heads, max_length, head_dim)` tensor of
            keys (`[:, 0]`) and values (`[:, 1]`) for autoregressive decoding.
            When given, the layer writes the keys and values of `inputs` at
            `cache_update_index`, attends over the updated cache, and returns
            `(outputs, updated_cache)`.
        cache_update_index: int or scalar int tensor, the position of the first
            element of `inputs` in the sequence; required with `cache`.
        training: bool, whether dropout is active.
        dropout_seed: optional seed for the attention dropout in training, a value
            `seeded_dropout.draw_dropout_seed(layer.attention_dropout)` returned
            (a rematerialized `GPT1DecoderBlock` draws it before the block runs, so
            that the recomputation drops the same probabilities).

    Returns:
        `(batch, length, hidden_dim)` outputs, or `(outputs, cache)` when called
        with a cache.

    Example:
    ```python
    layer = CausalSelfAttention(num_heads=12)
    outputs = layer(keras.ops.ones((2, 16, 768)))  # (2, 16, 768)

    # Decoding: prefill 4 positions, then one position at a time.
    cache = keras.ops.zeros((2, 2, 12, 16, 64))
    outputs, cache = layer(keras.ops.ones((2, 4, 768)), cache=cache,
                           cache_update_index=0)
    outputs, cache = layer(keras.ops.ones((2, 1, 768)), cache=cache,
                           cache_update_index=4)
    ```
    """

    def __init__(self, num_heads, dropout=0.0, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        if int(num_heads) < 1:
            raise ValueError(f"`num_heads` must be >= 1. Received: num_heads={num_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout}")
        self.num_heads = int(num_heads)
        self.dropout = dropout
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or gpt1_initializer()
        )
        self.supports_masking = True

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        if hidden_dim % self.num_heads:
            raise ValueError(
                f"The input width ({hidden_dim}) must be divisible by `num_heads`. "
                f"Received: num_heads={self.num_heads}"
            )
        self.head_dim = hidden_dim // self.num_heads
        dense = dict(
            kernel_initializer=self.kernel_initializer,
            bias_initializer="zeros",
            dtype=self.dtype_policy,
        )
        self.c_attn = keras.layers.Dense(3 * hidden_dim, name="c_attn", **dense)
        self.c_attn.build(inputs_shape)
        self.c_proj = keras.layers.Dense(hidden_dim, name="c_proj", **dense)
        self.c_proj.build(inputs_shape)
        self.attention_dropout = seeded_dropout(
            self.dropout, dtype=self.dtype_policy, name="attention_dropout"
        )
        self.built = True

    def _split_heads(self, x, batch, length):
        # (B, T, C) -> (B, nh, T, hs)
        x = ops.reshape(x, (batch, length, self.num_heads, self.head_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(
        self,
        inputs,
        padding_mask=None,
        cache=None,
        cache_update_index=None,
        training=None,
        dropout_seed=None,
    ):
        if (cache is None) != (cache_update_index is None):
            raise ValueError(
                "`cache` and `cache_update_index` must be passed together. "
                f"Received: cache_update_index={cache_update_index}"
            )
        batch, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        qkv = self.c_attn(inputs)  # (B, T, 3C)
        query, key, value = ops.split(qkv, 3, axis=-1)  # 3 x (B, T, C)
        # Scale the queries rather than the (T x S) scores: same result, less work.
        query = query * ops.cast(1.0 / math.sqrt(self.head_dim), query.dtype)
        query = self._split_heads(query, batch, length)
        key = self._split_heads(key, batch, length)
        value = self._split_heads(value, batch, length)

        start = 0
        if cache is not None:
            # Write this call's keys/values at positions start..start+T-1 and
            # attend over the whole cache: (B, 2, nh, S, hs).
            start = cache_update_index
            update = ops.cast(ops.stack((key, value), axis=1), cache.dtype)
            cache = ops.slice_update(cache, (0, 0, 0, start, 0), update)
            key, value = cache[:, 0], cache[:, 1]

        scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2)))  # (B, nh, T, S)
        scores = ops.cast(scores, "float32")
        # Causal mask: the query at position p sees keys 0..p. (T, S) -> broadcast
        # over (B, nh). Cache slots past p (not yet written) are masked too.
        query_positions = ops.arange(length) + start
        key_positions = ops.arange(ops.shape(key)[2])
        mask = ops.expand_dims(query_positions, 1) >= ops.expand_dims(key_positions, 0)
        mask = ops.expand_dims(ops.expand_dims(mask, 0), 0)
        if padding_mask is not None:
            # (B, S) -> (B, 1, 1, S): padded keys get no attention.
            keys_mask = ops.cast(padding_mask, "bool")[:, None, None, :]
            mask = ops.logical_and(mask, keys_mask)
        scores = ops.where(mask, scores, _MASKED_SCORE)
        probs = ops.cast(ops.softmax(scores, axis=-1), self.compute_dtype)
        probs = dropout_with_seed(self.attention_dropout, probs, dropout_seed, training)

        outputs = ops.matmul(probs, value)  # (B, nh, T, hs)
        outputs = ops.transpose(outputs, (0, 2, 1, 3))  # (B, T, nh, hs)
        outputs = ops.reshape(outputs, (batch, length, self.num_heads * self.head_dim))
        outputs = self.c_proj(outputs)
        if cache is not None:
            return outputs, cache
        return outputs

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "dropout": self.dropout,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
