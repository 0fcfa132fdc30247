import collections
import functools
import numbers

import keras
import numpy as np
from keras import ops

from gpt1_keras.layers.next_token_log_probs import next_token_log_probs
from gpt1_keras.models.architectures import build_backbone
from gpt1_keras.models.gpt1_presets import preset_architecture

# Logit given to tokens that top-k / top-p filter out: finite, so that every
# backend's categorical sampler gives them exactly zero probability.
_FILTERED_LOGIT = -1e9
_STRATEGIES = ("greedy", "sample")

# The settings one compiled generation function is specialised for.
_Sampler = collections.namedtuple(
    "_Sampler", ["strategy", "temperature", "top_k", "top_p", "use_cache"]
)


@keras.saving.register_keras_serializable(package="gpt1_keras")
class GPT1CausalLM(keras.Model):
    """GPT-1 language model: a `GPT1Backbone` (or the `LSTMBackbone` baseline) plus the tied LM head.

    Logits are `hidden @ token_embedding^T` over the backbone's whole vocabulary
    (tokens and special tokens; not over position rows as in the original code),
    with no bias and no final LayerNorm.

    Trained with `fit` on `(x, y, sample_weight)` where `x` holds `token_ids` and
    `padding_mask`, `y` the next tokens and `sample_weight` zeros on padding.
    `compile()` with no arguments sets sparse cross-entropy from logits and a
    weighted accuracy metric.

    Args:
        backbone: a `GPT1Backbone` (or the `LSTMBackbone` baseline).
        **kwargs: `keras.Model` arguments.

    Call arguments (a dict):
        token_ids: int `(batch, length)` tensor.
        padding_mask: `(batch, length)` tensor, 1 for real tokens.

    Text generation: `generate()` decodes with a key/value cache
    (`call_with_cache()`), greedily or by sampling (temperature, top-k, top-p),
    in a loop compiled once per setting and input shape: `jax.jit` on JAX,
    `tf.function` on TensorFlow (with XLA when `jit_compile` is true: set
    `lm.jit_compile = True`, as Keras' "auto" leaves XLA off on CPU-only machines;
    XLA decodes faster there but compiles slower), eager under `torch.no_grad()`
    on PyTorch.

    Example:
    ```python
    lm = GPT1CausalLM.from_architecture("gpt1_tiny")
    x = {"token_ids": np.array([[1, 2, 3]]), "padding_mask": np.array([[1, 1, 1]])}
    logits = lm(x)  # (1, 3, 40481)
    log_probs = lm.score(x["token_ids"], x["padding_mask"])  # (1, 3)
    ids = lm.generate([[1, 2, 3], [4, 5]], max_new_tokens=8)  # 2 lists, 11 and 10 ids
    ```
    """

    def __init__(self, backbone, **kwargs):
        # === Functional model ===
        inputs = backbone.input
        hidden = backbone(inputs)
        logits = backbone.token_embedding(hidden, reverse=True)  # (B, T, V)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Layers ===
        self.backbone = backbone
        # The task computes in its backbone's dtype policy (also after loading).
        self.dtype_policy = backbone.dtype_policy
        # Compiled generation loops, one per `_Sampler` (not saved).
        self._generate_functions = {}

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        weighted_metrics="auto",
        **kwargs,
    ):
        """Compiles with GPT-1 defaults wherever an argument is `"auto"`.

        `optimizer="auto"` is Adam(2.5e-4, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
        with global-norm clipping at 1 (the paper's pretraining optimizer, without
        its schedule); the full recipe lives in the trainer.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(
                learning_rate=2.5e-4, epsilon=1e-8, global_clipnorm=1.0
            )
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if weighted_metrics == "auto":
            weighted_metrics = [keras.metrics.SparseCategoricalAccuracy()]
        super().compile(
            optimizer=optimizer, loss=loss, weighted_metrics=weighted_metrics, **kwargs
        )

    def score(self, token_ids, padding_mask=None):
        """Per-token log-probabilities of `token_ids` under the model.

        Args:
            token_ids: int `(batch, length)` array.
            padding_mask: optional `(batch, length)` array, 1 for real tokens
                (defaults to all ones).

        Returns:
            A float32 `(batch, length)` tensor whose entry `t` is
            `log p(token_ids[t] | token_ids[:t])`. Entry 0 (no context) and
            padded positions are 0, so a row's sum is the sequence log-likelihood
            of its tokens after the first.
        """
        token_ids = ops.convert_to_tensor(token_ids, "int32")
        if padding_mask is None:
            padding_mask = ops.ones_like(token_ids)
        padding_mask = ops.cast(ops.convert_to_tensor(padding_mask), "int32")
        logits = self({"token_ids": token_ids, "padding_mask": padding_mask}, training=False)
        log_probs = next_token_log_probs(logits, token_ids, padding_mask)  # (B, T-1)
        return ops.pad(log_probs, ((0, 0), (1, 0)))  # (B, T): no score for position 0

    def call_with_cache(self, token_ids, cache, cache_update_index):
        """Logits for `token_ids` at positions `cache_update_index...`, with a cache.

        Args:
            token_ids: int `(batch, T)` tensor.
            cache: the tuple of per-block `(batch, 2, num_heads, max_length,
                head_dim)` tensors from `backbone.empty_cache()` or a previous call.
            cache_update_index: int or scalar int tensor, the position of
                `token_ids[:, 0]` in the sequence.

        Returns:
            `(logits, hidden_states, cache)`: `(batch, T, vocabulary_size)`
            logits, the backbone's `(batch, T, hidden_dim)` outputs and the
            updated cache. The logits equal those of a full forward pass over
            the sequence so far at the same positions.
        """
        hidden, cache = self.backbone.call_with_cache(token_ids, cache, cache_update_index)
        logits = self.backbone.token_embedding(hidden, reverse=True)  # (B, T, V)
        return logits, hidden, cache

    def generate(
        self,
        inputs,
        max_new_tokens=32,
        *,
        strategy="greedy",
        temperature=1.0,
        top_k=None,
        top_p=None,
        seed=None,
        tokenizer=None,
        use_cache=True,
    ):
        """Continues each prompt by `max_new_tokens` tokens.

        Prompts of different lengths are batched **right-padded**: every row
        keeps positions `0..len-1` as when run alone, and generation starts at
        the shortest prompt, copying the longer prompts' own tokens until each
        row reaches its end. Causal attention never looks at the padding, so
        each row's greedy continuation equals generating that prompt alone and
        equals recomputing the full sequence at every step.

        Args:
            inputs: the prompts: a string or list of strings (with `tokenizer`),
                a list of token ids, a list of such lists (lengths may differ),
                or an int `(batch, length)` array.
            max_new_tokens: int >= 1. Tokens added to every prompt. A prompt's
                length plus `max_new_tokens` must fit in the context
                (`backbone.max_sequence_length`); longer prompts are an error,
                not silently truncated.
            strategy: `"greedy"` (argmax, the default) or `"sample"`.
            temperature: float > 0, divides the logits before sampling.
            top_k: int, sample among the `top_k` most likely tokens (None: all).
            top_p: float in (0, 1], nucleus sampling: sample among the most
                likely tokens whose probabilities sum to at least `top_p`
                (after top-k and temperature; None: no limit).
            seed: int seed of the sampler; the same inputs, settings and seed
                give the same tokens. None draws one from NumPy's global RNG.
            tokenizer: a `GPT1Tokenizer`, required for string prompts: strings
                in, detokenized strings out.
            use_cache: bool. False recomputes the whole sequence at every step
                (for checking and benchmarking the cache; much slower).

        Returns:
            Prompt plus continuation, in the form of `inputs`: a string or list
            of strings; a list of ids or list of lists; or a
            `(batch, length + max_new_tokens)` NumPy array.
        """
        sampler = _check_sampler(strategy, temperature, top_k, top_p, use_cache,
                                 self.backbone.vocabulary_size)
        if not _is_int(max_new_tokens) or max_new_tokens < 1:
            raise ValueError(
                "`max_new_tokens` must be an integer >= 1. "
                f"Received: max_new_tokens={max_new_tokens}"
            )
        max_new_tokens = int(max_new_tokens)
        prompts, kind = _prompt_ids(inputs, tokenizer)
        self._check_prompts(prompts, max_new_tokens)

        # Right-pad the prompts into a (B, P) buffer; the loop extends it to P + N.
        lengths = np.array([len(p) for p in prompts], "int32")
        prompt_ids = np.zeros((len(prompts), lengths.max()), "int32")
        for row, prompt in enumerate(prompts):
            prompt_ids[row, : len(prompt)] = prompt
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        seed_state = np.array([int(seed), 0], "int64")

        key = (sampler, bool(self.jit_compile))
        generate_function = self._generate_functions.get(key)
        if generate_function is None:
            generate_function = self._make_generate_function(sampler)
            self._generate_functions[key] = generate_function
        token_ids = generate_function(prompt_ids, lengths, seed_state, max_new_tokens)
        token_ids = ops.convert_to_numpy(token_ids)
        rows = [token_ids[i, : n + max_new_tokens].tolist() for i, n in enumerate(lengths)]

        if kind == "array":
            return np.asarray(rows, "int32")
        if kind in ("ids", "ids_batch"):
            return rows[0] if kind == "ids" else rows
        texts = [t.decode("utf-8", "replace") for t in tokenizer.detokenize(rows).numpy()]
        return texts[0] if kind == "string" else texts

    def _check_prompts(self, prompts, max_new_tokens):
        context = self.backbone.max_sequence_length
        vocabulary_size = self.backbone.vocabulary_size
        for row, prompt in enumerate(prompts):
            if not prompt:
                raise ValueError(f"Prompt {row} is empty: pass at least one token.")
            if len(prompt) + max_new_tokens > context:
                raise ValueError(
                    f"Prompt {row} has {len(prompt)} tokens; with max_new_tokens="
                    f"{max_new_tokens} that is {len(prompt) + max_new_tokens} positions, "
                    f"more than the model's context of {context}. Shorten the prompt "
                    f"or generate fewer tokens. Received: max_new_tokens={max_new_tokens}"
                )
            bad = [i for i in prompt if not 0 <= i < vocabulary_size]
            if bad:
                raise ValueError(
                    f"Prompt {row} holds token ids outside [0, {vocabulary_size}). "
                    f"Received: {bad[:5]}"
                )

    def _make_generate_function(self, sampler):
        """`(prompt_ids, lengths, seed_state, max_new_tokens) -> token_ids`, compiled."""
        # The sampler's random state lives in the loop (a StatelessScope maps this
        # generator onto it), so the compiled function stays pure and the model
        # gains no variable.
        seed_generator = keras.random.SeedGenerator(0) if sampler.strategy == "sample" else None

        def generate_step(prompt_ids, lengths, seed_state, max_new_tokens):
            return self._generate_step(
                prompt_ids, lengths, seed_state, max_new_tokens, sampler, seed_generator
            )

        backend = keras.config.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            return tf.function(generate_step, jit_compile=self.jit_compile)
        if backend == "jax":
            import jax

            variables = self.trainable_variables + self.non_trainable_variables

            # Model variables are arguments, not constants baked into the program.
            @functools.partial(jax.jit, static_argnames="max_new_tokens")
            def stateless_step(values, prompt_ids, lengths, seed_state, max_new_tokens):
                with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                    return generate_step(prompt_ids, lengths, seed_state, max_new_tokens)

            def jax_step(prompt_ids, lengths, seed_state, max_new_tokens):
                values = [v.value for v in variables]
                return stateless_step(values, prompt_ids, lengths, seed_state,
                                      max_new_tokens=max_new_tokens)

            return jax_step
        if backend == "torch":
            import torch

            def torch_step(*args):
                with torch.no_grad():
                    return generate_step(*args)

            return torch_step
        return generate_step

    def _generate_step(self, prompt_ids, lengths, seed_state, max_new_tokens, sampler,
                       seed_generator):
        batch, prompt_width = ops.shape(prompt_ids)
        total = prompt_width + max_new_tokens
        # (B, P) -> (B, P + N): room for the continuation.
        token_ids = ops.pad(ops.cast(prompt_ids, "int32"), ((0, 0), (0, max_new_tokens)))
        lengths = ops.cast(lengths, "int32")
        seed_state = ops.cast(seed_state, seed_generator.state.dtype) if seed_generator \
            else ops.cast(seed_state, "int32")

        if sampler.use_cache:
            # Prefill: keys and values of every prompt position (padding included;
            # a padded slot is rewritten with its generated token before any real
            # query can see it).
            cache = self.backbone.empty_cache(batch, total)
            _, cache = self.backbone.call_with_cache(prompt_ids, cache, 0)
        else:
            cache = ops.zeros((), self.compute_dtype)  # unused loop variable

        # The tied LM head, transposed once here rather than at every step:
        # (V, C) -> (C, V). Same product as `token_embedding(h, reverse=True)`.
        embedding = self.backbone.token_embedding
        head = ops.transpose(ops.cast(embedding.embeddings, embedding.compute_dtype))

        def next_logits(token_ids, cache, index):
            # Logits for position `index`, from the token at `index - 1`.
            if sampler.use_cache:
                last = ops.slice(token_ids, (0, index - 1), (batch, 1))  # (B, 1)
                hidden, cache = self.backbone.call_with_cache(last, cache, index - 1)
            else:
                hidden = self.backbone(
                    {"token_ids": token_ids, "padding_mask": ops.ones_like(token_ids)},
                    training=False,
                )  # (B, P + N, C): the whole sequence again
                hidden = ops.slice(hidden, (0, index - 1, 0), (batch, 1, ops.shape(hidden)[2]))
            return ops.matmul(hidden[:, 0], head), cache  # (B, V)

        def cond(token_ids, cache, index, seed_state):
            return index < total

        def body(token_ids, cache, index, seed_state):
            logits, cache = next_logits(token_ids, cache, index)
            next_token, seed_state = _next_token(logits, sampler, seed_generator, seed_state)
            # Rows whose prompt is longer than `index` keep their own token.
            current = ops.slice(token_ids, (0, index), (batch, 1))[:, 0]
            next_token = ops.where(index < lengths, current, next_token)
            token_ids = ops.slice_update(token_ids, (0, index), next_token[:, None])
            return token_ids, cache, index + 1, seed_state

        start = ops.min(lengths)
        token_ids, _, _, _ = ops.while_loop(cond, body, (token_ids, cache, start, seed_state))
        return token_ids

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)

    @classmethod
    def from_architecture(cls, preset, **overrides):
        """A randomly initialised LM on a backbone preset of either architecture
        (`gpt1_small`, ..., or the LSTM baseline's `lstm_small`, ...)."""
        return cls(build_backbone(preset_architecture(preset), preset, **overrides))

    @classmethod
    def from_preset(cls, preset, **kwargs):
        # TODO(#12): keras-hub semantics (weights included); for now an alias.
        return cls.from_architecture(preset, **kwargs)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_sampler(strategy, temperature, top_k, top_p, use_cache, vocabulary_size):
    if strategy not in _STRATEGIES:
        raise ValueError(
            f"`strategy` must be one of {_STRATEGIES}. Received: strategy={strategy!r}"
        )
    if not _is_real(temperature) or not temperature > 0:
        raise ValueError(f"`temperature` must be > 0. Received: temperature={temperature}")
    if top_k is not None and (not _is_int(top_k) or not 1 <= top_k <= vocabulary_size):
        raise ValueError(
            f"`top_k` must be an integer in [1, {vocabulary_size}] (the vocabulary size). "
            f"Received: top_k={top_k}"
        )
    if top_p is not None and (not _is_real(top_p) or not 0 < top_p <= 1):
        raise ValueError(f"`top_p` must be in (0, 1]. Received: top_p={top_p}")
    if strategy == "greedy" and (temperature != 1.0 or top_k is not None or top_p is not None):
        raise ValueError(
            "`temperature`, `top_k` and `top_p` apply to strategy='sample'; greedy "
            f"decoding takes the argmax. Received: temperature={temperature}, "
            f"top_k={top_k}, top_p={top_p}"
        )
    return _Sampler(
        strategy,
        float(temperature),
        None if top_k is None else int(top_k),
        None if top_p is None else float(top_p),
        bool(use_cache),
    )


def _prompt_ids(inputs, tokenizer):
    """Prompts as lists of ints, and the form of `inputs` to return results in."""
    if isinstance(inputs, str) or (
        isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], str)
    ):
        if tokenizer is None:
            raise ValueError(
                "String prompts need `tokenizer=` (a GPT1Tokenizer). "
                f"Received: inputs={inputs!r}"
            )
        kind = "string" if isinstance(inputs, str) else "strings"
        texts = [inputs] if kind == "string" else list(inputs)
        return tokenizer(texts).to_list(), kind
    if isinstance(inputs, (list, tuple)):
        if not inputs:
            raise ValueError("`inputs` is empty: pass at least one prompt.")
        if isinstance(inputs[0], (list, tuple, np.ndarray)):
            return [[int(i) for i in p] for p in inputs], "ids_batch"
        return [[int(i) for i in inputs]], "ids"
    array = np.asarray(ops.convert_to_numpy(inputs))
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            "Array prompts must be int (batch, length) token ids. "
            f"Received: shape={array.shape}, dtype={array.dtype}"
        )
    return array.tolist(), "array"


def _next_token(logits, sampler, seed_generator, seed_state):
    """Picks one token per row from `(B, V)` logits; returns it and the new seed state."""
    logits = ops.cast(logits, "float32")
    if sampler.strategy == "greedy":
        return ops.cast(ops.argmax(logits, axis=-1), "int32"), seed_state
    logits = logits / sampler.temperature
    indices = None
    if sampler.top_k is not None or sampler.top_p is not None:
        # Candidates in decreasing order: (B, V) -> (B, k).
        k = sampler.top_k or ops.shape(logits)[-1]
        logits, indices = ops.top_k(logits, k, sorted=True)
        if sampler.top_p is not None:
            # Keep a token while the mass of the tokens before it is < top_p: the
            # smallest set reaching top_p, never empty.
            probs = ops.softmax(logits, axis=-1)
            mass_before = ops.cumsum(probs, axis=-1) - probs
            logits = ops.where(mass_before < sampler.top_p, logits, _FILTERED_LOGIT)
    state = seed_generator.state
    with keras.StatelessScope(state_mapping=[(state, seed_state)]) as scope:
        choice = keras.random.categorical(logits, 1, dtype="int32", seed=seed_generator)
        seed_state = scope.get_current_value(state)
    if indices is not None:
        choice = ops.take_along_axis(ops.cast(indices, "int32"), choice, axis=-1)
    return ops.cast(choice[:, 0], "int32"), seed_state
