import keras
from keras import ops

from gpt1_keras.layers.gpt1_decoder_block import GPT1DecoderBlock
from gpt1_keras.layers.initializers import gpt1_initializer
from gpt1_keras.layers.position_embedding import PositionEmbedding
from gpt1_keras.layers.seeded_dropout import seeded_dropout
from gpt1_keras.models.preset_loading import GPT1FamilyBackbone


@keras.saving.register_keras_serializable(package="gpt1_keras")
class GPT1Backbone(GPT1FamilyBackbone):
    """The GPT-1 decoder: embeddings and post-LN transformer blocks.

    `h0 = token_embedding[ids] + position_embedding[0..T-1]`, dropout, then
    `num_layers` post-LN blocks (`GPT1DecoderBlock`). There is no final
    LayerNorm. The outputs are the last block's hidden states; the LM head
    (`GPT1CausalLM`) projects them with the transposed token embedding.

    Choices where GPT-1's original code and Hugging Face differ (both defensible,
    see `docs/model.md`): embedding dropout acts on the summed activations (as HF),
    not on the embedding matrix; positions are `0..T-1` for every row, padded or
    not (as HF), so left-padded rows get shifted positions.

    Args:
        vocabulary_size: int. Rows of the token embedding (40,478 BPE tokens plus
            the 3 special tokens in the `gpt1` preset).
        num_layers: int. Transformer blocks.
        num_heads: int. Attention heads per block.
        hidden_dim: int. Model width.
        intermediate_dim: int. MLP inner width.
        dropout: float. Dropout on embeddings, attention probabilities and
            residual branches.
        max_sequence_length: int. Context size (learned positions).
        layer_norm_epsilon: float. LayerNorm epsilon.
        remat: bool. Rematerialize each block in training (gradient
            checkpointing, see `GPT1DecoderBlock`): the same gradients with the
            activations of one block at a time instead of all of them, for about
            a third more compute; what lets the paper's 64 x 512 batch train in a
            CPU's memory (BENCHMARKS.md). Also `from_preset(..., remat=True)`.
        dtype: dtype or `keras.DTypePolicy` for the model's computations and
            weights (e.g. `"mixed_bfloat16"`).
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments (a dict):
        token_ids: int `(batch, length)` tensor.
        padding_mask: `(batch, length)` tensor, 1 (or True) for real tokens.

    A `keras_hub.models.Backbone`: `from_preset()` loads weights (a preset
    directory written by `save_to_preset()`, `"hf://openai-community/openai-gpt"`
    or any Hugging Face `OpenAIGPT*` checkpoint, a local Hugging Face directory,
    a `kaggle://` handle), `from_architecture()` builds an untrained model from
    an architecture configuration (`gpt1`, `gpt1_small`, `gpt1_tiny`), and
    `keras_hub.models.Backbone.from_preset(directory)` returns this class.

    For autoregressive decoding, `empty_cache()` and `call_with_cache()` run the
    same layers one step at a time with a key/value cache (see `GPT1CausalLM.generate`).

    Example:
    ```python
    backbone = GPT1Backbone.from_architecture("gpt1_tiny")
    hidden = backbone({
        "token_ids": np.array([[40478, 249, 1362, 40480]]),
        "padding_mask": np.array([[1, 1, 1, 1]]),
    })  # (1, 4, 32)

    # The released GPT-1 weights, converted from Hugging Face on load.
    backbone = GPT1Backbone.from_preset("hf://openai-community/openai-gpt")
    backbone.save_to_preset("./gpt1_preset")
    backbone = keras_hub.models.Backbone.from_preset("./gpt1_preset")
    ```
    """

    architecture = "transformer"

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        max_sequence_length=512,
        layer_norm_epsilon=1e-5,
        remat=False,
        dtype=None,
        **kwargs,
    ):
        # === Layers ===
        # Built as locals and assigned after `super().__init__()`: the torch
        # backend refuses attribute layers before `Module.__init__`.
        token_embedding = keras.layers.ReversibleEmbedding(
            input_dim=vocabulary_size,
            output_dim=hidden_dim,
            embeddings_initializer=gpt1_initializer(),
            dtype=dtype,
            name="token_embedding",
        )
        position_embedding = PositionEmbedding(
            sequence_length=max_sequence_length,
            initializer=gpt1_initializer(),
            dtype=dtype,
            name="position_embedding",
        )
        embeddings_dropout = seeded_dropout(
            dropout, dtype=dtype, name="embeddings_dropout"
        )
        transformer_layers = [
            GPT1DecoderBlock(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=gpt1_initializer(),
                remat=remat,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]

        # === Functional model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        tokens = token_embedding(token_ids)  # (B, T, C)
        x = tokens + position_embedding(tokens)  # + (1, T, C)
        x = embeddings_dropout(x)
        for block in transformer_layers:
            x = block(x, padding_mask=padding_mask)
        # `keras_hub.models.Backbone` sets the dtype policy (which a functional
        # model would otherwise ignore) from `dtype`.
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=x,
            dtype=dtype,
            **kwargs,
        )

        self.token_embedding = token_embedding
        self.position_embedding = position_embedding
        self.embeddings_dropout = embeddings_dropout
        self.transformer_layers = transformer_layers

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.layer_norm_epsilon = layer_norm_epsilon
        self.remat = remat

    @staticmethod
    def get_layout_map(device_mesh, model_parallel_dim_name="model",
                       data_parallel_dim_name="batch"):
        """A `keras.distribution.LayoutMap` sharding the backbone for `ModelParallel`.

        As keras-hub's backbones do (Megatron-style): the token embedding, shared
        with the tied LM head, split over the vocabulary on the model axis; each
        block's first projections (`c_attn`, the fused query/key/value, and the
        MLP's `c_fc`) split over their outputs on the model axis, and the second
        (`attn/c_proj`, the MLP's `c_proj`) over their inputs, so that a block
        needs one all-reduce per projection pair; the other dimension is split over
        the data axis (weights stay whole on a mesh whose data axis has size 1).
        Position embeddings, biases of the second projections and LayerNorms are
        replicated.

        Example:
        ```python
        mesh = keras.distribution.DeviceMesh((2, 4), ("batch", "model"),
                                             keras.distribution.list_devices())
        distribution = keras.distribution.ModelParallel(
            layout_map=GPT1Backbone.get_layout_map(mesh), batch_dim_name="batch")
        with distribution.scope():
            lm = GPT1CausalLM.from_preset("hf://openai-community/openai-gpt")
        ```

        Args:
            device_mesh: a `keras.distribution.DeviceMesh`.
            model_parallel_dim_name: the mesh axis the weights are split over.
            data_parallel_dim_name: the mesh axis the data is split over.

        Returns:
            The `keras.distribution.LayoutMap`.
        """
        if not isinstance(device_mesh, keras.distribution.DeviceMesh):
            raise ValueError("`device_mesh` must be a `keras.distribution.DeviceMesh`. "
                             f"Received: device_mesh={device_mesh!r}")
        for name in (model_parallel_dim_name, data_parallel_dim_name):
            if name not in device_mesh.axis_names:
                raise ValueError(f"{name!r} is not an axis of the device mesh, whose axes "
                                 f"are {list(device_mesh.axis_names)}.")
        model, data = model_parallel_dim_name, data_parallel_dim_name
        layout_map = keras.distribution.LayoutMap(device_mesh)
        layout_map["token_embedding/embeddings"] = (model, data)
        layout_map["transformer_layer_.*(c_attn|c_fc)/kernel"] = (data, model)
        layout_map["transformer_layer_.*(c_attn|c_fc)/bias"] = (model,)
        layout_map["transformer_layer_.*c_proj/kernel"] = (model, data)
        return layout_map

    def empty_cache(self, batch_size, max_length):
        """A zero key/value cache for `call_with_cache()`.

        Args:
            batch_size: int or scalar int tensor. Rows decoded together.
            max_length: int or scalar int tensor. Positions the cache holds
                (prompt plus new tokens, at most `max_sequence_length`; an int
                is checked, a tensor, such as a served request's buffer width
                in a TensorFlow graph, is the caller's to bound).

        Returns:
            A tuple with one `(batch_size, 2, num_heads, max_length, head_dim)`
            tensor per block, in the compute dtype: keys (`[:, 0]`) and values
            (`[:, 1]`) in the attention's head-major layout. One tensor per block,
            not one stacked tensor, so that a decoding step updates each in place
            instead of slicing and re-stacking the whole cache.
        """
        self.check_cache_length(max_length)
        head_dim = self.hidden_dim // self.num_heads
        shape = (batch_size, 2, self.num_heads, max_length, head_dim)
        dtype = self.token_embedding.compute_dtype
        return tuple(ops.zeros(shape, dtype=dtype) for _ in range(self.num_layers))

    def call_with_cache(self, token_ids, cache, cache_update_index):
        """Runs `token_ids` at positions `cache_update_index...` against a cache.

        Equivalent to the rows `cache_update_index .. cache_update_index + T - 1`
        of a full forward pass (inference mode, no padding mask) over the tokens
        written to the cache so far plus `token_ids`.

        Args:
            token_ids: int `(batch, T)` tensor: the prompt to prefill (with
                `cache_update_index=0`) or the latest token (`T == 1`).
            cache: the tuple of per-block `(batch, 2, num_heads, max_length,
                head_dim)` tensors from `empty_cache()` or a previous call.
            cache_update_index: int or scalar int tensor, the position of
                `token_ids[:, 0]` in the sequence.

        Returns:
            `(hidden_states, cache)`: `(batch, T, hidden_dim)` outputs of the last
            block and the cache with these positions' keys and values written.
        """
        tokens = self.token_embedding(token_ids)  # (B, T, C)
        x = tokens + self.position_embedding(tokens, start_index=cache_update_index)
        x = self.embeddings_dropout(x, training=False)
        updated = []
        for block, block_cache in zip(self.transformer_layers, cache):
            x, block_cache = block(
                x, cache=block_cache, cache_update_index=cache_update_index, training=False
            )
            updated.append(block_cache)
        return x, tuple(updated)

    def default_lora_layer_names(self):
        """The layers `enable_lora(rank)` targets: `c_attn` and `c_proj`.

        keras-hub's default (`query_dense`, `value_dense`, ...) names no layer of
        GPT-1, whose attention has one fused `c_attn` Dense (`hidden -> 3 * hidden`:
        queries, keys and values) and the output projection `c_proj`. keras-hub
        matches layer names, so `c_proj` is also the MLP's output projection (Hugging
        Face's `attn.c_proj` and `mlp.c_proj`, which peft's
        `target_modules=["c_attn", "c_proj"]` also both match). Pass
        `enable_lora(rank, target_layer_names=[...])` to choose others.
        """
        return ["c_attn", "c_proj"]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "max_sequence_length": self.max_sequence_length,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "remat": self.remat,
            }
        )
        return config
