import contextlib
import functools
import itertools

import keras
import keras_hub
import numpy as np
from keras import ops
from keras.src.losses.loss import scale_loss_for_distribution
from keras_hub.src.samplers.sampler import Sampler
from keras_hub.src.utils.python_utils import classproperty
from keras_hub.src.utils.tensor_utils import any_equal

from gpt1_keras.layers.chunked_cross_entropy import chunked_cross_entropy_sum
from gpt1_keras.layers.chunked_cross_entropy import tied_head_matrix
from gpt1_keras.layers.next_token_log_probs import next_token_log_probs
from gpt1_keras.models import preset_loading
from gpt1_keras.models.architectures import build_backbone
from gpt1_keras.models.gpt1_backbone import GPT1Backbone
from gpt1_keras.models.gpt1_presets import preset_architecture


@keras.saving.register_keras_serializable(package="gpt1_keras")
class GPT1CausalLM(keras_hub.models.CausalLM):
    """GPT-1 language model: a `GPT1Backbone` (or the `LSTMBackbone` baseline) plus the tied LM head.

    A `keras_hub.models.CausalLM`: logits are `hidden @ token_embedding^T`
    over the backbone's whole vocabulary (tokens and special tokens; not over
    position rows as in the original code), with no bias and no final
    LayerNorm.

    Trained with `fit` on `(x, y, sample_weight)` where `x` holds `token_ids` and
    `padding_mask`, `y` the next tokens and `sample_weight` zeros on padding,
    or on raw strings when a `GPT1CausalLMPreprocessor` is attached.
    `compile()` with no arguments sets GPT-1's Adam, sparse cross-entropy from
    logits, a weighted accuracy metric and keras-hub's default sampler.
    `compile(loss_chunk_size=n)` trains and evaluates on the same loss without
    the full `(batch * length, vocabulary)` logits or their gradient: the tied
    head and the cross-entropy run `n` positions at a time
    (`gpt1_keras.layers.chunked_cross_entropy`), with the loss alone as metric.

    Text generation is keras-hub's: `compile(sampler=...)` picks a
    `keras_hub.samplers.Sampler` (`"greedy"`, `"top_k"`, `"top_p"`,
    `"random"`, `"beam"`, `"contrastive"` or an instance), and
    `generate(inputs, max_length)` decodes strings to strings with the
    preprocessor, or `{"token_ids", "padding_mask"}` to the same dict without
    it. Decoding runs GPT-1's own cached loop (`generate_step`): the prompt is
    prefilled once into the key/value cache (`call_with_cache()`), then one
    position per step, with the sampler's `get_next_token()` choosing each
    token; samplers that define their own loop (beam, contrastive) get the same
    cached step as their `next` function. The loop is compiled once per
    sampler, input shape and prompt-width bucket: `tf.function` on TensorFlow
    (with XLA when `jit_compile=True` is passed to `compile()`; Keras' "auto"
    leaves it off on CPU-only machines), `jax.jit` on JAX, eager under
    `torch.no_grad()` on PyTorch.

    Conventions (the same in `generate` and in the SavedModel `generate`
    signature of `gpt1_keras.export`):

    - Prompts are right-padded: every row keeps positions `0..n-1`, as when
      run alone; greedy decoding equals recomputing the full sequence at every
      step.
    - GPT-1 has no end-of-text token (its LM was pretrained on raw text,
      documents joined by newlines), so `stop_token_ids="auto"` means `None`:
      every row is generated up to `max_length`. Pass e.g.
      `stop_token_ids=[tokenizer.newline_token_id]` to stop at a line's end.
    - Greedy is `GreedySampler` (argmax of the logits); `TopKSampler(k=1)`
      gives the same tokens.
    - An over-long prompt is cut from the left (its last tokens are kept) by
      the preprocessor, leaving room for at least one new token; token-dict
      inputs are never cut, and a buffer longer than the context is an error.

    Args:
        backbone: a `GPT1Backbone` (or the `LSTMBackbone` baseline).
        preprocessor: optional `GPT1CausalLMPreprocessor` (strings in
            `fit`/`predict`/`generate`), or `None`.
        **kwargs: `keras.Model` arguments.

    Call arguments (a dict):
        token_ids: int `(batch, length)` tensor.
        padding_mask: `(batch, length)` tensor, 1 for real tokens.

    Example:
    ```python
    lm = GPT1CausalLM.from_architecture("gpt1_tiny")
    x = {"token_ids": np.array([[1, 2, 3]]), "padding_mask": np.array([[1, 1, 1]])}
    logits = lm(x)  # (1, 3, 40481)
    log_probs = lm.score(x["token_ids"], x["padding_mask"])  # (1, 3)

    # Token ids in, token ids out: a right-padded (batch, max_length) buffer.
    lm.compile(sampler="greedy")
    ids = np.zeros((2, 12), "int32"); ids[0, :3] = [1, 2, 3]; ids[1, :2] = [4, 5]
    mask = ids > 0
    out = lm.generate({"token_ids": ids, "padding_mask": mask})
    out["token_ids"]  # (2, 12): each prompt continued to 12 tokens

    # Strings in, strings out.
    lm = GPT1CausalLM(lm.backbone, GPT1CausalLMPreprocessor(GPT1Tokenizer()))
    lm.compile(sampler=keras_hub.samplers.TopKSampler(k=40, seed=0))
    lm.generate(["ROMEO:"], max_length=48)
    ```
    """

    backbone_cls = GPT1Backbone

    def __init__(self, backbone, preprocessor=None, **kwargs):
        if getattr(preprocessor, "tokenizer", None) is not None:
            backbone.check_tokenizer(preprocessor.tokenizer, "preprocessor's tokenizer")
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor

        # === Functional model ===
        inputs = backbone.input
        hidden = backbone(inputs)
        logits = backbone.token_embedding(hidden, reverse=True)  # (B, T, V)
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

    @classproperty
    def preprocessor_cls(cls):
        # Imported on use: the preprocessor is TensorFlow code, the model is not.
        from gpt1_keras.preprocessing.gpt1_causal_lm_preprocessor import (
            GPT1CausalLMPreprocessor,
        )

        return GPT1CausalLMPreprocessor

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        weighted_metrics="auto",
        sampler="top_k",
        loss_chunk_size=None,
        **kwargs,
    ):
        """Compiles with GPT-1 defaults wherever an argument is `"auto"`.

        `optimizer="auto"` is Adam(2.5e-4, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
        with global-norm clipping at 1 (the paper's pretraining optimizer, without
        its schedule); the full recipe lives in the trainer. `sampler` is a
        keras-hub sampler name or instance for `generate()` (keras-hub's default,
        `"top_k"`: `TopKSampler(k=5)`, unseeded).

        `loss_chunk_size`: `None` (default) computes `loss="auto"` on the
        model's full logits. An integer `n` computes the same loss (sparse
        cross-entropy from logits, weighted by `sample_weight`, Keras'
        `"sum_over_batch_size"` reduction) in `fit` and `evaluate` without the
        `(batch * length, vocabulary)` logits: the train and test steps run
        the backbone alone, and the tied head, softmax and loss gradient are
        formed `n` positions at a time (`chunked_cross_entropy_sum`). Same
        loss, same gradients, same variables and checkpoints, with a few
        `(n, vocabulary)` float32 tensors alive at a time instead of several
        of `(batch * length, vocabulary)`. The accuracy
        metric needs the logits, so `weighted_metrics="auto"` is then no metric
        (the loss is reported alone); compile with `loss_chunk_size=None` to
        measure accuracy. `predict`, `score` and `generate` are unchanged.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(
                learning_rate=2.5e-4, epsilon=1e-8, global_clipnorm=1.0
            )
        if loss_chunk_size is not None:
            _check_loss_chunk_size(loss_chunk_size, loss, weighted_metrics, kwargs)
            tied_head_matrix(self.backbone.token_embedding)  # Checks the head can be chunked.
            if weighted_metrics == "auto":
                weighted_metrics = None
        self.loss_chunk_size = loss_chunk_size
        super().compile(
            optimizer=optimizer,
            loss=loss,
            weighted_metrics=weighted_metrics,
            sampler=sampler,
            **kwargs,
        )
        if loss_chunk_size is not None:
            # Keras keeps an earlier compile's metrics when given none (the
            # constructor compiles with the accuracy); they would see hidden states.
            self._compile_metrics = None

    # === The chunked loss (`compile(loss_chunk_size=...)`) ===
    # In a train or test step the model returns the backbone's hidden states and
    # `compute_loss` applies the tied head a chunk at a time; anywhere else
    # (`predict`, direct calls) it returns the logits.

    loss_chunk_size = None  # Set by `compile()`.
    _hidden_output_steps = 0  # Train/test steps being traced or run with the chunked loss.

    def call(self, inputs, training=None, mask=None):
        if self._hidden_output_steps:
            return self.backbone(inputs, training=training)  # (B, T, C)
        return super().call(inputs, training=training, mask=mask)

    @contextlib.contextmanager
    def _chunked_loss_step(self):
        # A count, not a flag: MirroredStrategy traces one step per replica,
        # interleaved in threads.
        chunked = int(self.loss_chunk_size is not None)
        self._hidden_output_steps += chunked
        try:
            yield
        finally:
            self._hidden_output_steps -= chunked

    def train_step(self, *args, **kwargs):
        with self._chunked_loss_step():
            return super().train_step(*args, **kwargs)

    def test_step(self, *args, **kwargs):
        with self._chunked_loss_step():
            return super().test_step(*args, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not self._hidden_output_steps:
            # `y_pred` is the logits (no chunked loss, or Keras building the loss
            # outside a step).
            return super().compute_loss(x, y, y_pred, sample_weight, training=training)
        # `y_pred`: the (B, T, C) hidden states (`call` inside a train/test step).
        total = chunked_cross_entropy_sum(
            y_pred, tied_head_matrix(self.backbone.token_embedding), y, sample_weight,
            chunk_size=self.loss_chunk_size, differentiable=training,
        )
        # Keras' "sum_over_batch_size", as the compiled SparseCategoricalCrossentropy.
        positions = ops.prod(ops.convert_to_tensor(ops.shape(y), "int32"))
        loss = scale_loss_for_distribution(
            ops.divide_no_nan(total, ops.cast(positions, "float32")))
        losses = [loss] + [self._aggregate_additional_loss(extra) for extra in self.losses]
        return losses[0] if len(losses) == 1 else ops.sum(losses)

    # === Training and inference on arrays ===
    # Without a preprocessor, Keras' own data handling (arrays shuffled every epoch,
    # distributed datasets); keras-hub's `PipelineModel` would batch arrays unshuffled.

    def fit(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        if self.preprocessor is None:
            return keras.Model.fit(self, x, y, batch_size=batch_size,
                                   sample_weight=sample_weight, **kwargs)
        return super().fit(x, y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        if self.preprocessor is None:
            return keras.Model.evaluate(self, x, y, batch_size=batch_size,
                                        sample_weight=sample_weight, **kwargs)
        return super().evaluate(x, y, batch_size=batch_size, sample_weight=sample_weight,
                                **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        if self.preprocessor is None:
            return keras.Model.predict(self, x, batch_size=batch_size, **kwargs)
        return super().predict(x, batch_size=batch_size, **kwargs)

    def export_to_transformers(self, path):
        """Writes the LM as a Hugging Face `OpenAIGPTLMHeadModel` checkpoint.

        `gpt1_keras.checkpoint_conversion.export_to_hf`: `model.safetensors`,
        `config.json` and the tokenizer files of the preprocessor's tokenizer
        (keras-hub's exporter knows no GPT-1).
        """
        from gpt1_keras.checkpoint_conversion import export_to_hf

        export_to_hf(self, path)

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

    # === Generation ===

    def generate(self, inputs, max_length=None, stop_token_ids="auto", strip_prompt=False):
        """Generates text (or token ids) continuing `inputs`, with the compiled sampler.

        keras-hub's `CausalLM.generate`, with GPT-1's conventions (see the
        class docstring): `stop_token_ids="auto"` is `None`, as GPT-1 has no
        end token, and prompts are right-padded.

        Args:
            inputs: with a preprocessor, a string, a list of strings or a
                `tf.data.Dataset` of strings; without, a dict of `token_ids`
                and `padding_mask`, `(batch, max_length)` each: the prompts
                right-padded into the buffer the continuations fill.
            max_length: with a preprocessor, the length of prompt plus
                continuation (defaults to `preprocessor.sequence_length`; at
                most the context). Ignored without one (the buffer's width).
            stop_token_ids: `"auto"` or `None` (generate to `max_length`), or a
                list of ids: a row stops after its first new one of them, and
                generation ends when every row has.
            strip_prompt: return only the new tokens.

        Returns:
            Strings (a string for a string input) with a preprocessor; else a
            dict of NumPy `token_ids` and `padding_mask`.
        """
        if isinstance(stop_token_ids, str) and stop_token_ids == "auto":
            stop_token_ids = None
        return super().generate(
            inputs, max_length=max_length, stop_token_ids=stop_token_ids,
            strip_prompt=strip_prompt,
        )

    def make_generate_function(self):
        """The compiled `generate_step`, called as `fn(inputs, stop_token_ids=None)`.

        The inputs are checked here (eagerly, once per call), and the prefill
        width is bucketed to a power of two, so that a compiled loop serves
        every prompt whose longest row falls in the same bucket.
        """
        if self.generate_function is not None:
            return self.generate_function
        backend = keras.config.backend()
        step = self.generate_step
        if backend == "tensorflow" and not self.run_eagerly:
            import tensorflow as tf

            step = tf.function(self.generate_step, jit_compile=bool(self.jit_compile))
        elif backend == "jax" and not self.run_eagerly:
            import jax

            @functools.partial(jax.jit, static_argnames=("stop_token_ids", "prompt_width"))
            def compiled(inputs, state, stop_token_ids, prompt_width):
                sampler_values, trainable, non_trainable = state
                mapping = itertools.chain(
                    zip(self.sampler.variables, sampler_values),
                    zip(self.trainable_variables, trainable),
                    zip(self.non_trainable_variables, non_trainable),
                )
                with keras.StatelessScope(state_mapping=mapping) as scope:
                    outputs = self.generate_step(inputs, stop_token_ids, prompt_width)
                new_values = []
                for v in self.sampler.variables:
                    value = scope.get_current_value(v)
                    new_values.append(v.value if value is None else value)
                return outputs, new_values

            def step(inputs, stop_token_ids=None, prompt_width=None):
                state = (
                    [v.value for v in self.sampler.variables],
                    [v.value for v in self.trainable_variables],
                    [v.value for v in self.non_trainable_variables],
                )
                outputs, new_values = compiled(inputs, state, stop_token_ids, prompt_width)
                for v, value in zip(self.sampler.variables, new_values):
                    v.assign(value)
                return outputs
        elif backend == "torch":
            import torch

            def step(inputs, stop_token_ids=None, prompt_width=None):
                with torch.no_grad():
                    return self.generate_step(inputs, stop_token_ids, prompt_width)

        def generate_function(inputs, stop_token_ids=None):
            if stop_token_ids is not None:
                stop_token_ids = tuple(int(i) for i in stop_token_ids)
            inputs, width = self._check_generate_inputs(inputs)
            if _has_own_loop(self.sampler):
                width = None  # keras-hub's own loop: prefill the whole buffer, as keras-hub does
            return step(inputs, stop_token_ids=stop_token_ids, prompt_width=width)

        self.generate_function = generate_function
        return generate_function

    def _check_generate_inputs(self, inputs):
        """Validates a `{"token_ids", "padding_mask"}` batch; returns it and the prefill width."""
        if not isinstance(inputs, dict) or not {"token_ids", "padding_mask"} <= set(inputs):
            raise ValueError(
                "Without a preprocessor, `generate` takes a dict of `token_ids` and "
                f"`padding_mask`. Received: inputs={inputs!r}"
            )
        token_ids = np.asarray(_to_numpy(inputs["token_ids"]))
        mask = np.asarray(_to_numpy(inputs["padding_mask"])).astype(bool)
        if token_ids.ndim != 2 or mask.shape != token_ids.shape:
            raise ValueError(
                "`token_ids` and `padding_mask` must both be (batch, max_length). Received: "
                f"token_ids.shape={token_ids.shape}, padding_mask.shape={mask.shape}"
            )
        batch, total = token_ids.shape
        context = self.backbone.max_sequence_length
        if total > context:
            raise ValueError(
                f"The generation buffer has {total} positions, more than the model's context "
                f"of {context}. Received: max_length={total}"
            )
        lengths = mask.sum(axis=1)
        right_padded = np.arange(total)[None, :] < lengths[:, None]
        if not np.array_equal(mask, right_padded):
            rows = np.nonzero((mask != right_padded).any(axis=1))[0].tolist()
            raise ValueError(
                "`padding_mask` must be right-padded (ones, then zeros) in every row. "
                f"Received: rows {rows[:5]} are not"
            )
        if batch and lengths.min() == 0:
            raise ValueError(
                "Every prompt needs at least one token (GPT-1 has no start-of-text token "
                "in its LM; the preprocessor starts an empty prompt from a newline). "
                f"Received: empty rows {np.nonzero(lengths == 0)[0].tolist()[:5]}"
            )
        vocabulary_size = self.backbone.vocabulary_size
        bad = token_ids[mask & ((token_ids < 0) | (token_ids >= vocabulary_size))]
        if bad.size:
            raise ValueError(
                f"`token_ids` holds ids outside [0, {vocabulary_size}). "
                f"Received: {bad[:5].tolist()}"
            )
        longest = int(lengths.max()) if batch else 1
        width = min(total, 1 << max(longest - 1, 0).bit_length())
        inputs = {"token_ids": token_ids.astype("int32"), "padding_mask": mask}
        return inputs, width

    def generate_step(self, inputs, stop_token_ids=None, prompt_width=None):
        """A compilable generation function for a single batch of inputs.

        Args:
            inputs: a dict of `token_ids` and `padding_mask`, `(batch,
                max_length)` each, prompts right-padded.
            stop_token_ids: optional tuple of ids; a row is done after its
                first new one, and the loop ends when every row is.
            prompt_width: optional int, the positions prefilled into the cache
                in one call (at least the longest prompt; default: the whole
                buffer). Positions past a row's prompt are rewritten with its
                generated tokens before any of its later positions read them.

        Returns:
            A dict of `token_ids` `(batch, max_length)` and a boolean
            `padding_mask`, True up to and including each row's first new stop
            token (everywhere without stop tokens).
        """
        token_ids = ops.cast(inputs["token_ids"], "int32")
        padding_mask = ops.cast(inputs["padding_mask"], "bool")
        if _has_own_loop(self.sampler):
            token_ids = self._sampler_loop(token_ids, padding_mask, stop_token_ids)
        else:
            sampler = self.sampler
            variables = list(sampler.variables)

            def next_token(logits, index, state):
                return _sampler_next_token(sampler, variables, logits, state)

            token_ids, state = self.decode(
                token_ids, padding_mask, next_token, [v.value for v in variables],
                stop_token_ids=stop_token_ids, prompt_width=prompt_width,
            )
            # The sampler's advanced seed state, so that the next call draws anew
            # (a recorded assignment inside JAX's StatelessScope).
            for v, value in zip(variables, state):
                v.assign(value)
        return _outputs(token_ids, padding_mask, stop_token_ids)

    def decode(self, token_ids, padding_mask, next_token, state, stop_token_ids=None,
               prompt_width=None):
        """GPT-1's cached decoding loop, for `generate_step` and the SavedModel export.

        Prefills the first `prompt_width` positions in one call into a
        key/value cache of `total` positions (the buffer's width; a tensor in
        the served `generate`, whose cache spans the request, not the context),
        then from the shortest prompt's end runs one position per step: the
        token at `index - 1` against the cache gives the logits of position
        `index`, `next_token` picks a token, and rows whose prompt covers
        `index` keep their own token.

        Args:
            token_ids: int32 `(batch, total)`, prompts right-padded.
            padding_mask: bool `(batch, total)`, True on prompt tokens.
            next_token: `fn(logits, index, state) -> (tokens, state)`, float32
                `(batch, vocabulary_size)` logits to int `(batch,)` tokens;
                `state` is a loop variable (a list of tensors, e.g. seeds).
            state: the initial `state`.
            stop_token_ids: optional tuple of ids ending a row.
            prompt_width: int or scalar tensor, positions prefilled (default
                `total`).

        Returns:
            `(token_ids, state)`: the filled buffer and the final state.
        """
        batch, total = ops.shape(token_ids)[0], ops.shape(token_ids)[1]
        lengths = ops.sum(ops.cast(padding_mask, "int32"), axis=-1)
        backbone = self.backbone
        cache = backbone.empty_cache(batch, total)
        prefill = token_ids
        if prompt_width is not None:
            prefill = ops.slice(token_ids, (0, 0), (batch, prompt_width))
        _, cache = backbone.call_with_cache(prefill, cache, 0)

        # The tied LM head, transposed once here rather than at every step:
        # (V, C) -> (C, V). Same product as `token_embedding(h, reverse=True)`.
        embedding = backbone.token_embedding
        head = ops.transpose(ops.cast(embedding.embeddings, embedding.compute_dtype))

        def cond(token_ids, cache, index, state):
            going = index < total
            if stop_token_ids is not None:
                done = ops.any(any_equal(token_ids, stop_token_ids, ~padding_mask), axis=-1)
                going = ops.logical_and(going, ops.logical_not(ops.all(done)))
            return going

        def body(token_ids, cache, index, state):
            last = ops.slice(token_ids, (0, index - 1), (batch, 1))  # (B, 1)
            hidden, cache = backbone.call_with_cache(last, cache, index - 1)
            logits = ops.cast(ops.matmul(hidden[:, 0], head), "float32")  # (B, V)
            tokens, state = next_token(logits, index, state)
            # Rows whose prompt covers `index` keep their own token.
            current = ops.slice(token_ids, (0, index), (batch, 1))[:, 0]
            in_prompt = ops.slice(padding_mask, (0, index), (batch, 1))[:, 0]
            tokens = ops.where(in_prompt, current, ops.cast(tokens, "int32"))
            token_ids = ops.slice_update(token_ids, (0, index), tokens[:, None])
            return token_ids, cache, index + 1, state

        start = ops.maximum(ops.min(lengths), 1)
        token_ids, _, _, state = ops.while_loop(cond, body, (token_ids, cache, start, state))
        return token_ids, state

    def _sampler_loop(self, token_ids, padding_mask, stop_token_ids):
        """Runs a sampler with its own `__call__` (beam, contrastive) on the cached step."""
        batch = ops.shape(token_ids)[0]
        cache = self.backbone.empty_cache(batch, ops.shape(token_ids)[1])
        _, hidden_states, cache = self.call_with_cache(token_ids, cache, 0)
        lengths = ops.sum(ops.cast(padding_mask, "int32"), axis=-1)

        def next(prompt, cache, index):
            last = ops.slice(prompt, (0, index - 1), (ops.shape(prompt)[0], 1))
            logits, hidden, cache = self.call_with_cache(last, cache, index - 1)
            return logits[:, 0], hidden[:, 0], cache

        return self.sampler(
            next=next, prompt=token_ids, cache=cache, index=ops.min(lengths),
            mask=padding_mask, stop_token_ids=stop_token_ids,
            hidden_states=hidden_states, model=self,
        )

    # === Serialization ===

    @classmethod
    def from_config(cls, config):
        if isinstance(config.get("preprocessor"), dict):
            # Registers the (TensorFlow) preprocessor class before deserializing.
            import gpt1_keras.preprocessing.gpt1_causal_lm_preprocessor  # noqa: F401
        return super().from_config(dict(config))

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """A language model from a preset, weights included (`preset_loading`).

        A preset directory (`save_to_preset()`, with its preprocessor), a
        pretraining run's `model_dir/preset`, `"hf://openai-community/openai-gpt"`
        or a local Hugging Face directory. Architecture names build untrained
        models with `from_architecture()` instead.
        """
        return preset_loading.from_preset(cls, preset, load_weights=load_weights, **kwargs)

    @classmethod
    def from_architecture(cls, preset, **overrides):
        """A randomly initialised LM on a backbone preset of either architecture
        (`gpt1_small`, ..., or the LSTM baseline's `lstm_small`, ...)."""
        return cls(build_backbone(preset_architecture(preset), preset, **overrides))


def _check_loss_chunk_size(loss_chunk_size, loss, weighted_metrics, kwargs):
    """The arguments `compile(loss_chunk_size=...)` can run with, else a `ValueError`."""
    if (not isinstance(loss_chunk_size, int) or isinstance(loss_chunk_size, bool)
            or loss_chunk_size < 1):
        raise ValueError("`loss_chunk_size` must be None or a positive integer. "
                         f"Received: loss_chunk_size={loss_chunk_size!r}")
    if not (isinstance(loss, str) and loss == "auto"):
        raise ValueError("`loss_chunk_size` computes GPT-1's own loss; it needs loss=\"auto\". "
                         f"Received: loss={loss!r}")
    metrics = kwargs.get("metrics")
    if weighted_metrics not in ("auto", None) or metrics is not None:
        raise ValueError("`loss_chunk_size` never forms the logits that metrics need; compile "
                         "without metrics or with loss_chunk_size=None. Received: "
                         f"weighted_metrics={weighted_metrics!r}, metrics={metrics!r}")


def _to_numpy(x):
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        try:
            return x.numpy()
        except Exception:  # noqa: BLE001 - not a TF eager tensor
            pass
    return ops.convert_to_numpy(x) if ops.is_tensor(x) else np.asarray(x)


def _has_own_loop(sampler):
    """Whether a keras-hub sampler replaces `Sampler.__call__` (beam, contrastive, ...)."""
    return type(sampler).__call__ is not Sampler.__call__


def _sampler_next_token(sampler, variables, logits, state):
    """One token per row from `(B, V)` float32 logits with a keras-hub sampler.

    The sampler's seed state is a loop variable: a `StatelessScope` maps the
    sampler's seed generators onto it, so the compiled loop stays pure (the
    model runs outside that scope).
    """
    if type(sampler) is keras_hub.samplers.GreedySampler:
        # argmax(softmax(logits / T)) == argmax(logits): skip the softmax.
        return ops.argmax(logits, axis=-1), state
    if not variables:
        return sampler.get_next_token(sampler.compute_probabilities(logits)), state
    with keras.StatelessScope(state_mapping=list(zip(variables, state))) as scope:
        tokens = sampler.get_next_token(sampler.compute_probabilities(logits))
        new_state = []
        for v, old in zip(variables, state):
            value = scope.get_current_value(v)
            new_state.append(old if value is None else value)
    return tokens, new_state


def _outputs(token_ids, padding_mask, stop_token_ids):
    if stop_token_ids is not None:
        # True up to and including each row's first new stop token.
        end_locations = ops.cast(
            any_equal(token_ids, stop_token_ids, ops.logical_not(padding_mask)), "int32")
        overflow = ops.cumsum(end_locations, axis=-1) - end_locations
        padding_mask = ops.logical_not(ops.cast(overflow, "bool"))
    else:
        padding_mask = ops.ones_like(token_ids, dtype="bool")
    return {"token_ids": token_ids, "padding_mask": padding_mask}
