import keras
from keras import ops

from gpt1_keras.layers.next_token_log_probs import next_token_log_probs


@keras.saving.register_keras_serializable(package="gpt1_keras")
class AuxiliaryLMLoss(keras.layers.Layer):
    """Adds `lm_coef * language_model_loss(...)` as a model loss while training.

    The layer passes `outputs` through unchanged; it sits on the path to the
    model's outputs so that Keras runs it. The loss is added with `add_loss`
    (every backend) only when `training=True`: `fit`'s loss is GPT-1's
    `L_task + lm_coef * L_LM`; `evaluate`'s is the task loss alone.

    Args:
        lm_coef: the weight `lambda` of the LM loss.
        **kwargs: `keras.layers.Layer` arguments.

    Call arguments:
        outputs: the model's task outputs, returned unchanged.
        lm_logits: `(N, T, V)` logits of the tied LM head.
        token_ids: `(N, T)` ids.
        padding_mask: `(N, T)`, 1 for real tokens.
        training: whether to add the loss.

    Example:
    ```python
    loss_layer = AuxiliaryLMLoss(lm_coef=0.5)
    outputs = loss_layer(task_logits, lm_logits, token_ids, padding_mask,
                         training=True)  # task_logits; loss_layer.losses holds the LM term
    ```
    """

    def __init__(self, lm_coef=0.5, **kwargs):
        super().__init__(**kwargs)
        self.lm_coef = lm_coef

    def call(self, outputs, lm_logits, token_ids, padding_mask, training=None):
        if training:
            self.add_loss(
                self.lm_coef * language_model_loss(lm_logits, token_ids, padding_mask)
            )
        return outputs

    def compute_output_shape(
        self, outputs_shape, lm_logits_shape, token_ids_shape, padding_mask_shape
    ):
        return outputs_shape

    def get_config(self):
        return {**super().get_config(), "lm_coef": self.lm_coef}


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
