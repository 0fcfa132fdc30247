"""`CausalLMServingModule`: a `GPT1CausalLM` and its tokenizer as SavedModel signatures.

TensorFlow-only module (the model runs on the Keras TensorFlow backend). The
signatures take raw strings; tokenization, truncation, padding and the model
run in one graph. See `docs/serving.md` for requests and responses.
"""

import tensorflow as tf

from gpt1_keras.export import sampling
from gpt1_keras.export.serving_utils import Untracked
from gpt1_keras.export.serving_utils import broadcast_to_batch
from gpt1_keras.export.serving_utils import same_batch_check
from gpt1_keras.export.serving_utils import shared_function
from gpt1_keras.export.serving_utils import signature_function
from gpt1_keras.export.serving_utils import tokenizer_resources

class CausalLMServingModule(tf.Module):
    """Serving functions of a language model: `score`, `score_continuation`, `generate`.

    `context` is the backbone's `max_sequence_length`; no sequence the model
    sees is longer. Over-long inputs are cut from the **left**, keeping the
    part being scored or continued.

    - `score(text)`: `[_start_] + tokens(text)` (GPT-1's zero-shot scoring,
      `zero_shot.cola_scores`); returns `mean_log_prob` (the average of
      `log p(token | previous tokens)` over the text's tokens), `sum_log_prob`
      and `num_tokens`, the number of tokens scored. A sequence longer than
      `context` keeps its last `context` tokens (as `zero_shot` does), so at
      most `context - 1` are scored. An empty text scores nothing:
      `num_tokens` 0 and both log-probabilities 0.
    - `score_continuation(context, text)`: the same for the tokens of `text`
      written after `[_start_] + tokens(context)` (`zero_shot.span_log_probs`:
      multiple-choice answers, the SST-2 cue words).
    - `generate(prompt, max_new_tokens, temperature, top_k, top_p, seed)`:
      continues `tokens(prompt)` with `GPT1CausalLM.decode`, the loop of the
      Keras `generate`: the prompts are prefilled into a key/value cache in
      one call, then one position per step against it. The
      five settings are `[1]` (shared by all prompts) or one per prompt.
      `max_new_tokens` is clamped to `[0, max_new_tokens_limit]`; a prompt
      keeps its last `context - max_new_tokens` tokens so that prompt and
      continuation fit the context (as pretraining's samples do); an empty
      prompt starts from the newline token (pretraining's line separator);
      both as `GPT1CausalLMPreprocessor.generate_preprocess` does.
      Sampling is `sampling.sample_next_tokens`, each row's settings written as
      keras-hub's samplers: temperature <= 0 is `GreedySampler` (the tokens of
      Keras `generate` with `sampler="greedy"`), else top-k (`top_k` <= 0: the
      whole vocabulary) and top-p filtering at that temperature.
      Returns `completion` (the new tokens' text), `text` (the prompt's
      normalised text, then the completion) and `token_ids` (the new ids, -1
      after each row's last).

    Args:
        lm: a built `GPT1CausalLM`.
        tokenizer: a `GPT1Tokenizer` (or a tokenizer with its interface:
            strings -> ragged ids, `detokenize`, `start_token_id`,
            `newline_token_id`).
        max_new_tokens_limit: the most tokens one `generate` call adds per
            prompt, at most `context - 1` (the default).
    """

    def __init__(self, lm, tokenizer, max_new_tokens_limit=None):
        super().__init__(name="gpt1_causal_lm_serving")
        context = lm.backbone.max_sequence_length
        if max_new_tokens_limit is None:
            max_new_tokens_limit = context - 1
        if not isinstance(max_new_tokens_limit, int) or isinstance(max_new_tokens_limit, bool) \
                or not 1 <= max_new_tokens_limit < context:
            raise ValueError(
                f"`max_new_tokens_limit` must be an int in [1, {context - 1}] (the context "
                f"less one prompt token). Received: max_new_tokens_limit={max_new_tokens_limit!r}")
        # Tracked for the SavedModel: the weights and the tokenizer's tables. The
        # Keras objects themselves stay out of the object graph (`_keras`).
        self.model_variables = list(lm.variables)
        self.tokenizer_resources = tokenizer_resources(tokenizer)
        self._keras = Untracked(
            lm=lm, tokenizer=tokenizer,
            tokenize=shared_function(lambda text: tf.cast(tokenizer(text), tf.int32),
                                     [tf.TensorSpec([None], tf.string)]),
            detokenize=shared_function(tokenizer.detokenize,
                                       [tf.RaggedTensorSpec([None, None], tf.int32)]))
        self.context = context
        self.max_new_tokens_limit = max_new_tokens_limit
        first = getattr(tokenizer, "newline_token_id", None)
        self.empty_prompt_token_id = tokenizer.start_token_id if first is None else first

    def signatures(self):
        """`{name: concrete function}` for `tf.saved_model.save`.

        Only the signatures are saved (the functions are not module attributes):
        saving each graph once keeps the export fast and the SavedModel small.
        """
        score = signature_function(
            self._score_text, [tf.TensorSpec([None], tf.string, "text")])
        score_continuation = signature_function(
            self._score_continuation,
            [tf.TensorSpec([None], tf.string, "context"),
             tf.TensorSpec([None], tf.string, "text")])
        generate = signature_function(self._generate, [
            tf.TensorSpec([None], tf.string, "prompt"),
            tf.TensorSpec([None], tf.int32, "max_new_tokens"),
            tf.TensorSpec([None], tf.float32, "temperature"),
            tf.TensorSpec([None], tf.int32, "top_k"),
            tf.TensorSpec([None], tf.float32, "top_p"),
            tf.TensorSpec([None], tf.int64, "seed"),
        ])
        score = score.get_concrete_function()
        return {
            "serving_default": score,
            "score": score,
            "score_continuation": score_continuation.get_concrete_function(),
            "generate": generate.get_concrete_function(),
        }

    def warmup_requests(self):
        """`[(signature, {input: values})]`: a realistic request for every
        signature, for TF Serving's warm-up records (`serving_utils`).

        `generate` gets a greedy and a sampled row (both branches of the
        sampler run) and a few new tokens.
        """
        texts = ["ROMEO: Is the day so young?", "The king is dead, long live the king!"]
        score = {"text": texts}
        new_tokens = min(4, self.max_new_tokens_limit)
        return [
            ("serving_default", score),
            ("score", score),
            ("score_continuation", {"context": ["Once upon a time", "The answer is"],
                                    "text": [" there was a princess.", " yes."]}),
            ("generate", {"prompt": ["ROMEO:", "First Citizen:"],
                          "max_new_tokens": [new_tokens], "temperature": [0.0, 0.8],
                          "top_k": [0, 40], "top_p": [1.0, 0.95], "seed": [0, 1]}),
        ]

    # === Scoring ===

    def _score_text(self, text):
        ids = self._tokenize(text)
        return self._score(ids[:, :0], ids)

    def _score_continuation(self, context, text):
        with tf.control_dependencies([same_batch_check(context, text, "context", "text")]):
            return self._score(self._tokenize(context), self._tokenize(text))

    def _score(self, prefix, span):
        """Scores the ragged ids `span` after `[_start_] + prefix`, row by row."""
        start = tf.fill([span.nrows(), 1], tf.constant(
            self._keras.tokenizer.start_token_id, tf.int32))
        sequences = tf.concat([start, prefix, span], axis=1)
        window, window_lengths = _last_tokens(sequences, self.context)
        mask = tf.sequence_mask(window_lengths, tf.shape(window)[1], tf.int32)
        per_token = self._keras.lm.score(window, mask)  # (B, W): log p(x_t | x_<t)
        # The span is the last `scored` tokens of each window (a window's first
        # token has no context, so at most window_length - 1 of them).
        scored = tf.minimum(tf.cast(span.row_lengths(), tf.int32), window_lengths - 1)
        position = tf.range(tf.shape(window)[1])[None, :]
        in_span = (position >= (window_lengths - scored)[:, None]) & (
            position < window_lengths[:, None])
        total = tf.reduce_sum(tf.where(in_span, per_token, 0.0), axis=1)
        mean = total / tf.cast(tf.maximum(scored, 1), tf.float32)
        return {"mean_log_prob": mean, "sum_log_prob": total, "num_tokens": scored}

    # === Generation ===

    def _generate(self, prompt, max_new_tokens, temperature, top_k, top_p, seed):
        batch = tf.size(prompt)
        max_new_tokens, temperature, top_k, top_p, seed = (
            broadcast_to_batch(value, batch, name) for value, name in (
                (max_new_tokens, "max_new_tokens"), (temperature, "temperature"),
                (top_k, "top_k"), (top_p, "top_p"), (seed, "seed")))
        new_tokens = tf.clip_by_value(max_new_tokens, 0, self.max_new_tokens_limit)
        steps = _max_or_zero(new_tokens)

        prompt_ids = self._tokenize(prompt)
        empty = tf.equal(prompt_ids.row_lengths(), 0)
        first = tf.RaggedTensor.from_tensor(
            tf.fill([batch, 1], tf.constant(self.empty_prompt_token_id, tf.int32)),
            lengths=tf.cast(empty, tf.int64))
        # (B, P): each prompt's last `context - new_tokens` ids, right-padded.
        context_ids, prompt_lengths = _last_tokens(
            tf.concat([first, prompt_ids], axis=1), self.context - new_tokens)
        # (B, W): room for every row's new tokens, W <= context.
        width = tf.maximum(_max_or_zero(prompt_lengths + new_tokens), tf.shape(context_ids)[1])
        buffer = tf.pad(context_ids, [[0, 0], [0, width - tf.shape(context_ids)[1]]])
        mask = tf.sequence_mask(prompt_lengths, width)

        def next_token(logits, index, state):
            # A row's k-th new token draws with the stateless seed (seed, k).
            step = tf.cast(index, tf.int32) - prompt_lengths
            return sampling.sample_next_tokens(logits, temperature, top_k, top_p, seed,
                                               step), state

        # The Keras model's own cached loop (`GPT1CausalLM.decode`): the prompts
        # prefilled into a key/value cache of the buffer's `width` positions (not
        # the whole context), then one position a step.
        buffer, _ = self._keras.lm.decode(
            buffer, mask, next_token, (), prompt_width=tf.shape(context_ids)[1])
        # (B, steps): each row's new ids, -1 after its last.
        index = prompt_lengths[:, None] + tf.range(steps)[None, :]
        new_ids = tf.gather(buffer, tf.minimum(index, tf.shape(buffer)[1] - 1), batch_dims=1)
        produced = tf.range(steps)[None, :] < new_tokens[:, None]
        new_ragged = tf.RaggedTensor.from_tensor(new_ids, lengths=new_tokens)
        detokenize = self._keras.detokenize
        return {
            "completion": detokenize(new_ragged),
            "text": detokenize(tf.concat([prompt_ids, new_ragged], axis=1)),
            "token_ids": tf.where(produced, new_ids, -1),
        }

    # === Helpers ===

    def _tokenize(self, text):
        return self._keras.tokenize(text)


def _max_or_zero(values):
    """The largest of int32 `values` `(B,)`, 0 for an empty batch."""
    return tf.reduce_max(tf.concat([values, [0]], axis=0))


def _last_tokens(sequences, keep):
    """Ragged `(B, None)` ids -> the last `keep` of each row, right-padded.

    Args:
        sequences: int32 ragged `(B, None)`.
        keep: int32 scalar or `(B,)`, the most ids kept per row.

    Returns:
        `(ids, lengths)`: int32 `(B, W)` with `W = max(1, longest kept row)`,
        and int32 `(B,)` kept lengths.
    """
    lengths = tf.cast(sequences.row_lengths(), tf.int32)
    kept = tf.minimum(lengths, keep)
    width = tf.maximum(_max_or_zero(kept), 1)
    dense = sequences.to_tensor(default_value=0)
    # One zero column, so that every gather index below is in range.
    dense = tf.concat([dense, tf.zeros([tf.shape(dense)[0], 1], dense.dtype)], axis=1)
    index = (lengths - kept)[:, None] + tf.range(width)[None, :]
    ids = tf.gather(dense, tf.minimum(index, tf.shape(dense)[1] - 1), batch_dims=1)
    return tf.where(tf.range(width)[None, :] < kept[:, None], ids, 0), kept
