import keras
from keras import ops

from gpt1_keras.layers.causal_self_attention import CausalSelfAttention
from gpt1_keras.layers.initializers import gpt1_initializer
from gpt1_keras.layers.seeded_dropout import draw_dropout_seed
from gpt1_keras.layers.seeded_dropout import dropout_with_seed
from gpt1_keras.layers.seeded_dropout import seeded_dropout


@keras.saving.register_keras_serializable(package="gpt1_keras")
class GPT1DecoderBlock(keras.layers.Layer):
    """One GPT-1 transformer block: attention and MLP, each followed by LayerNorm.

    GPT-1 is **post-LN**: `n = LN_1(x + Attn(x))`, `h = LN_2(n + MLP(n))`, with
    `MLP(n) = c_proj(gelu_tanh(c_fc(n)))`. Dropout hits each residual branch.

    Args:
        num_heads: int. Attention heads.
        intermediate_dim: int. Inner width of the MLP (4 x width in GPT-1).
        dropout: float. Dropout on attention probabilities and residual branches.
        layer_norm_epsilon: float. LayerNorm epsilon (1e-5 in GPT-1, not Keras'
            default 1e-3).
        kernel_initializer: initializer for every kernel (default N(0, 0.02)).
        remat: bool. Rematerialize the block in training (`keras.remat`, gradient
            checkpointing): only its inputs are kept for the backward pass, which
            runs the block's forward pass again; about a third more compute for
            a fraction of the activation memory. Exact: the block's dropout seeds
            are drawn before it runs, so the recomputation drops the same units,
            and the gradients equal those without `remat`.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, length, hidden_dim)` tensor.
        padding_mask: optional `(batch, key_length)` mask, 1 for real tokens
            (see `CausalSelfAttention`).
        cache: optional `(batch, 2, num_heads, max_length, head_dim)` key/value
            cache of this block's attention; the block then returns
            `(outputs, updated_cache)`.
        cache_update_index: int or scalar int tensor, position of the first
            element of `inputs`; required with `cache`.
        training: bool, whether dropout is active.

    Example:
    ```python
    block = GPT1DecoderBlock(num_heads=12, intermediate_dim=3072)
    outputs = block(keras.ops.ones((2, 16, 768)))  # (2, 16, 768)
    cache = keras.ops.zeros((2, 2, 12, 16, 64))
    outputs, cache = block(keras.ops.ones((2, 1, 768)), cache=cache,
                           cache_update_index=0)
    ```
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.1,
        layer_norm_epsilon=1e-5,
        kernel_initializer=None,
        remat=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.remat = bool(remat)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(
            kernel_initializer or gpt1_initializer()
        )
        self.supports_masking = True

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        common = dict(dtype=self.dtype_policy)
        dense = dict(
            kernel_initializer=self.kernel_initializer, bias_initializer="zeros", **common
        )
        self.attn = CausalSelfAttention(
            self.num_heads,
            dropout=self.dropout,
            kernel_initializer=self.kernel_initializer,
            name="attn",
            **common,
        )
        self.attn.build(inputs_shape)
        self.ln_1 = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="ln_1", **common
        )
        self.ln_1.build(inputs_shape)
        self.c_fc = keras.layers.Dense(self.intermediate_dim, name="c_fc", **dense)
        self.c_fc.build(inputs_shape)
        self.c_proj = keras.layers.Dense(hidden_dim, name="c_proj", **dense)
        self.c_proj.build(tuple(inputs_shape[:-1]) + (self.intermediate_dim,))
        self.ln_2 = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="ln_2", **common
        )
        self.ln_2.build(inputs_shape)
        self.residual_dropout = seeded_dropout(
            self.dropout, name="residual_dropout", **common
        )
        self.built = True

    def call(
        self,
        inputs,
        padding_mask=None,
        cache=None,
        cache_update_index=None,
        training=None,
    ):
        if self.remat and training and cache is None:
            return self._rematerialized_call(inputs, padding_mask)
        return self._forward(
            inputs, padding_mask, cache, cache_update_index, training=training
        )

    def _rematerialized_call(self, inputs, padding_mask):
        # The seeds of the attention dropout and of the two residual dropouts, in the
        # order `_forward` would draw them (none at dropout 0): the same masks as
        # without remat, and the same again when the backward pass recomputes the block.
        seeds = tuple(s for s in (
            draw_dropout_seed(self.attn.attention_dropout),
            draw_dropout_seed(self.residual_dropout),
            draw_dropout_seed(self.residual_dropout),
        ) if s is not None)
        return keras.remat(
            lambda x, *s: self._forward(x, padding_mask, training=True, seeds=s)
        )(inputs, *seeds)

    def _forward(
        self, inputs, padding_mask, cache=None, cache_update_index=None, training=None,
        seeds=None,
    ):
        attention_seed, attended_seed, hidden_seed = seeds or (None, None, None)
        attended = self.attn(
            inputs,
            padding_mask=padding_mask,
            cache=cache,
            cache_update_index=cache_update_index,
            training=training,
            dropout_seed=attention_seed,
        )
        if cache is not None:
            attended, cache = attended
        attended = dropout_with_seed(self.residual_dropout, attended, attended_seed, training)
        normed = self.ln_1(inputs + attended)
        # tanh-approximate GELU, as in GPT-1 (Keras' default is the exact erf form).
        hidden = ops.gelu(self.c_fc(normed), approximate=True)
        hidden = self.c_proj(hidden)
        hidden = dropout_with_seed(self.residual_dropout, hidden, hidden_seed, training)
        outputs = self.ln_2(normed + hidden)
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
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "remat": self.remat,
            }
        )
        return config
