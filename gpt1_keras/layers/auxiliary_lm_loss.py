import keras
from keras import ops

from gpt1_keras.layers.chunked_cross_entropy import chunked_cross_entropy_sum
from gpt1_keras.layers.chunked_cross_entropy import tied_head_matrix
from gpt1_keras.layers.next_token_log_probs import next_token_log_probs

# Positions whose logits exist at once in the chunked loss: (1024, V) float32, 166 MB
# for GPT-1's 40,481 tokens (pretraining's chunk size).
DEFAULT_CHUNK_SIZE = 1024


class _Untracked:
    """Holds the tied embedding layer without making it a sublayer (the backbone owns it)."""

    def __init__(self, layer):
        self.layer = layer


@keras.saving.register_keras_serializable(package="gpt1_keras")
class AuxiliaryLMLoss(keras.layers.Layer):
    """Adds `lm_coef * language_model_loss(...)` of the tied LM head as a model loss while training.

    The layer passes `outputs` through unchanged; it sits on the path to the
    model's outputs so that Keras runs it. The loss is added with `add_loss`
    (every backend) only when `training=True`: `fit`'s loss is GPT-1's
    `L_task + lm_coef * L_LM`; `evaluate`'s is the task loss alone.

    The LM loss is computed from the final hidden states and the tied embedding
    matrix `chunk_size` positions at a time (`chunked_cross_entropy_sum`): the same
    loss and gradients as `language_model_loss(hidden @ E^T, ...)`, but the
    `(sequences, length, vocabulary)` logits never exist at once, so fine-tuning's
    memory does not grow with batch x length x vocabulary (the full logits of 128
    x 512 tokens over GPT-1's vocabulary are 10.6 GB, and past 2^31 elements some
    kernels overflow). A head that is not a plain tied product (untied,
    soft-capped or quantized), or `chunk_size=None`, uses the full logits.

    Args:
        embedding: the backbone's tied `ReversibleEmbedding` (its `reverse=True`
            call is the LM head). Held, not owned: its weights stay the backbone's.
        lm_coef: the weight `lambda` of the LM loss.
        chunk_size: positions per chunk of the LM loss; `None` for the full logits.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        outputs: the model's task outputs, returned unchanged.
        hidden: `(N, T, C)` final hidden states of the backbone.
        token_ids: `(N, T)` ids.
        padding_mask: `(N, T)`, 1 for real tokens.
        training: whether to add the loss.

    Example:
    ```python
    loss_layer = AuxiliaryLMLoss(backbone.token_embedding, lm_coef=0.5)
    outputs = loss_layer(task_logits, hidden, token_ids, padding_mask,
                         training=True)  # task_logits; loss_layer.losses holds the LM term
    ```
    """

    def __init__(self, embedding, lm_coef=0.5, chunk_size=DEFAULT_CHUNK_SIZE, **kwargs):
        super().__init__(**kwargs)
        self._embedding = _Untracked(embedding)
        self.lm_coef = lm_coef
        self.chunk_size = chunk_size

    def call(self, outputs, hidden, token_ids, padding_mask, training=None):
        if training:
            self.add_loss(self.lm_coef * self.lm_loss(hidden, token_ids, padding_mask))
        return outputs

    def lm_loss(self, hidden, token_ids, padding_mask):
        """`language_model_loss` of the tied head's logits over `hidden`, chunked when it can be."""
        embedding = self._embedding.layer
        try:
            matrix = None if self.chunk_size is None else tied_head_matrix(embedding)
        except ValueError:  # Not a plain tied product: the full logits.
            matrix = None
        if matrix is None:
            return language_model_loss(embedding(hidden, reverse=True), token_ids, padding_mask)
        # Position t predicts token t + 1: the last position has no target.
        weights = ops.cast(padding_mask[:, 1:], "float32")
        total = chunked_cross_entropy_sum(
            hidden[:, :-1], matrix, token_ids[:, 1:], weights, chunk_size=self.chunk_size)
        return total / ops.maximum(ops.sum(weights), 1.0)

    def compute_output_shape(
        self, outputs_shape, hidden_shape, token_ids_shape, padding_mask_shape
    ):
        return outputs_shape

    def get_config(self):
        # The embedding is the model's to pass in (`GPT1Classifier` does): not serialized.
        return {**super().get_config(), "lm_coef": self.lm_coef, "chunk_size": self.chunk_size}


def language_model_loss(lm_logits, token_ids, padding_mask):
    """Mean next-token cross-entropy over the real tokens after the first.

    Args:
        lm_logits: `(N, T, V)`.
        token_ids: `(N, T)` int.
        padding_mask: `(N, T)`, 1 for real tokens.

    Returns:
        A float32 scalar: `-mean log p(token_ids[t] | token_ids[:t])` over the
        positions `t >= 1` with `padding_mask[t] == 1` (per token, as Hugging
        Face; GPT-1's code averages per sequence first).
    """
    log_probs = next_token_log_probs(lm_logits, token_ids, padding_mask)  # (N, T-1)
    weights = ops.cast(padding_mask[:, 1:], "float32")
    return -ops.sum(log_probs) / ops.maximum(ops.sum(weights), 1.0)
