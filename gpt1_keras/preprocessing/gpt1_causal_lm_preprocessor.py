"""`GPT1CausalLMPreprocessor`: raw strings -> the inputs of a `GPT1CausalLM` (TensorFlow ops)."""

import keras
import keras_hub
import numpy as np
import tensorflow as tf
from keras_hub.src.utils.preset_utils import PREPROCESSOR_CONFIG_FILE

from gpt1_keras.models import preset_loading
from gpt1_keras.models.gpt1_backbone import GPT1Backbone
from gpt1_keras.tokenizers import GPT1Tokenizer


@keras.saving.register_keras_serializable(package="gpt1_keras")
class GPT1CausalLMPreprocessor(keras_hub.models.CausalLMPreprocessor):
    """GPT-1 causal LM preprocessing: tokenize, pack, shift; and the `generate` ends.

    A `keras_hub.models.CausalLMPreprocessor` over GPT-1's own BPE
    (`GPT1Tokenizer`), in TensorFlow ops (usable with every Keras backend, in
    eager calls and in `tf.data`). It follows what GPT-1's LM was pretrained on
    (`gpt1_keras.data.lm_dataset`): raw text, documents joined by the newline
    token, **no** `_start_` and no end token, right-padded. So
    `add_start_token` and `add_end_token` default to False (GPT-1 has no end
    token at all: `add_end_token=True` is an error), and
    `GPT1CausalLM.generate`'s `stop_token_ids="auto"` means no stop token.

    Calling the layer (for `fit`) returns `(x, y, sample_weight)`: `x` the
    first `sequence_length` tokens (`token_ids`, `padding_mask`), `y` the same
    shifted by one, `sample_weight` zero on padding. Texts longer than
    `sequence_length + 1` tokens are cut on the right (training windows).

    `generate_preprocess` packs prompts for generation: an over-long prompt
    keeps its **last** `sequence_length - 1` tokens (the most recent text, and
    room for at least one new token), an empty prompt starts from the newline
    token (pretraining's line separator), and rows are right-padded.
    `generate_postprocess` drops the padding (and the start token, when added)
    and detokenizes.

    Args:
        tokenizer: a `GPT1Tokenizer`.
        sequence_length: int. The packed length (`generate`'s default
            `max_length`); at most the model's context.
        add_start_token: bool. Prepend `_start_` (not what GPT-1's LM saw in
            pretraining; zero-shot scoring uses it).
        add_end_token: must be False: GPT-1 has no end token.
        **kwargs: `keras.layers.Layer` arguments.

    Example:
    ```python
    preprocessor = GPT1CausalLMPreprocessor(GPT1Tokenizer(), sequence_length=8)
    x, y, sample_weight = preprocessor(["the quick brown fox ."])
    x = preprocessor.generate_preprocess(["the quick"])  # token_ids, padding_mask (1, 8)
    lm = GPT1CausalLM(backbone, preprocessor)
    lm.generate("the quick", max_length=32)
    ```
    """

    backbone_cls = GPT1Backbone
    tokenizer_cls = GPT1Tokenizer

    def __init__(self, tokenizer, sequence_length=512, add_start_token=False,
                 add_end_token=False, **kwargs):
        if add_end_token:
            raise ValueError(
                "GPT-1 has no end token: `add_end_token` must be False. "
                f"Received: add_end_token={add_end_token!r}"
            )
        if not isinstance(sequence_length, int) or isinstance(sequence_length, bool) \
                or sequence_length < 2:
            raise ValueError(
                "`sequence_length` must be an int >= 2 (a prompt token and a new one). "
                f"Received: sequence_length={sequence_length!r}"
            )
        super().__init__(tokenizer=tokenizer, sequence_length=sequence_length,
                         add_start_token=add_start_token, add_end_token=False, **kwargs)

    def build(self, input_shape):
        self.built = True

    @classmethod
    def from_preset(cls, preset, config_file=PREPROCESSOR_CONFIG_FILE, **kwargs):
        """The preprocessor of a preset (`save_to_preset()`), or one over its tokenizer."""
        return preset_loading.from_preset(cls, preset, config_file=config_file, **kwargs)

    # === Training ===

    def call(self, x, y=None, sample_weight=None, sequence_length=None):
        del y, sample_weight  # The targets are the inputs shifted by one.
        length = sequence_length or self.sequence_length
        ids = self._tokenize(x)
        ids = self._with_start(ids)[:, : length + 1]
        token_ids, mask = _pad(ids, length + 1, self.tokenizer.pad_token_id)
        x = {"token_ids": token_ids[:, :-1], "padding_mask": mask[:, :-1]}
        return _eager_numpy(keras.utils.pack_x_y_sample_weight(
            x, token_ids[:, 1:], mask[:, 1:]))

    # === Generation ===

    def generate_preprocess(self, x, sequence_length=None):
        """Strings -> `{"token_ids", "padding_mask"}` `(batch, sequence_length)`, right-padded.

        A prompt keeps its last `sequence_length - 1` tokens (with the start
        token, when added, in front); an empty prompt becomes the newline token.
        """
        length = sequence_length or self.sequence_length
        if length < 2:
            raise ValueError(
                "`max_length` must be >= 2 (a prompt token and a new one). "
                f"Received: max_length={length}"
            )
        ids = self._tokenize(x)
        first = self.tokenizer.newline_token_id
        if first is None:
            first = self.tokenizer.start_token_id
        empty = tf.equal(ids.row_lengths(), 0)
        first_rows = tf.RaggedTensor.from_tensor(
            tf.fill([ids.nrows(), 1], tf.constant(first, tf.int32)),
            lengths=tf.cast(empty, ids.row_splits.dtype))
        ids = tf.concat([first_rows, ids], axis=1)
        room = length - 1 - int(self.add_start_token)
        ids = _last_tokens(ids, room)
        ids = self._with_start(ids)
        token_ids, mask = _pad(ids, length, self.tokenizer.pad_token_id)
        return _eager_numpy({"token_ids": token_ids, "padding_mask": mask})

    def generate_postprocess(self, x):
        """`{"token_ids", "padding_mask"}` -> strings: padding (and an added start token) dropped."""
        token_ids = tf.convert_to_tensor(_to_numpy(x["token_ids"]), tf.int32)
        mask = tf.cast(tf.convert_to_tensor(_to_numpy(x["padding_mask"])), tf.bool)
        if self.add_start_token:
            mask = mask & tf.not_equal(token_ids, self.tokenizer.start_token_id)
        texts = self.tokenizer.detokenize(tf.ragged.boolean_mask(token_ids, mask))
        if tf.executing_eagerly():
            return [t.decode("utf-8", "replace") for t in np.reshape(texts.numpy(), [-1])]
        return texts

    # === Helpers ===

    def _tokenize(self, x):
        x = tf.convert_to_tensor(x, tf.string) if not isinstance(x, tf.Tensor) else x
        if x.shape.rank != 1:
            raise ValueError(
                "`GPT1CausalLMPreprocessor` takes a batch of strings `[batch]`. "
                f"Received: shape={x.shape}"
            )
        return tf.cast(self.tokenizer(x), tf.int32)

    def _with_start(self, ids):
        if not self.add_start_token:
            return ids
        start = tf.fill([ids.nrows(), 1], tf.constant(self.tokenizer.start_token_id, tf.int32))
        return tf.concat([tf.RaggedTensor.from_tensor(start), ids], axis=1)

    def get_config(self):
        config = super().get_config()
        config.pop("add_end_token", None)
        return config


def _pad(ids, length, pad_id):
    """Ragged int32 `(B, None)` with rows of at most `length` -> dense ids and int32 mask."""
    token_ids = ids.to_tensor(default_value=pad_id, shape=[None, length])
    mask = tf.sequence_mask(ids.row_lengths(), length, tf.int32)
    return token_ids, mask


def _last_tokens(ids, keep):
    """The last `keep` ids of each ragged row."""
    lengths = ids.row_lengths()
    start = tf.maximum(lengths - keep, 0)
    flat = tf.ragged.range(start, lengths)
    return tf.gather(ids, flat, batch_dims=1)


def _to_numpy(x):
    if isinstance(x, (tf.Tensor, tf.Variable)):
        return x.numpy() if tf.executing_eagerly() else x
    return keras.ops.convert_to_numpy(x) if keras.ops.is_tensor(x) else np.asarray(x)


def _eager_numpy(outputs):
    """NumPy outputs in eager calls (any backend takes them); tensors in a graph."""
    if not tf.executing_eagerly():
        return outputs
    return tf.nest.map_structure(
        lambda t: t.numpy() if isinstance(t, tf.Tensor) else t, outputs)
