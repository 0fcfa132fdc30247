import keras
from keras import ops

from gpt1_keras.models.gpt1_backbone import GPT1Backbone


@keras.saving.register_keras_serializable(package="gpt1_keras")
class GPT1CausalLM(keras.Model):
    """GPT-1 language model: a `GPT1Backbone` plus the tied LM head.

    Logits are `hidden @ token_embedding^T` over the backbone's whole vocabulary
    (tokens and special tokens; not over position rows as in the original code),
    with no bias and no final LayerNorm.

    Trained with `fit` on `(x, y, sample_weight)` where `x` holds `token_ids` and
    `padding_mask`, `y` the next tokens and `sample_weight` zeros on padding.
    `compile()` with no arguments sets sparse cross-entropy from logits and a
    weighted accuracy metric.

    Args:
        backbone: a `GPT1Backbone`.
        **kwargs: `keras.Model` arguments.

    Call arguments (a dict):
        token_ids: int `(batch, length)` tensor.
        padding_mask: `(batch, length)` tensor, 1 for real tokens.

    Example:
    ```python
    lm = GPT1CausalLM.from_preset("gpt1_tiny")
    x = {"token_ids": np.array([[1, 2, 3]]), "padding_mask": np.array([[1, 1, 1]])}
    logits = lm(x)  # (1, 3, 40481)
    log_probs = lm.score(x["token_ids"], x["padding_mask"])  # (1, 3)
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
        log_probs = ops.log_softmax(ops.cast(logits[:, :-1, :], "float32"), axis=-1)
        # (B, T-1, V) -> (B, T-1): the log-prob of each actual next token.
        targets = ops.expand_dims(token_ids[:, 1:], -1)
        next_log_probs = ops.squeeze(ops.take_along_axis(log_probs, targets, axis=-1), -1)
        next_log_probs = next_log_probs * ops.cast(padding_mask[:, 1:], "float32")
        return ops.pad(next_log_probs, ((0, 0), (1, 0)))

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
    def from_preset(cls, preset, **overrides):
        """Builds a randomly initialised LM from a backbone preset name."""
        return cls(GPT1Backbone.from_preset(preset, **overrides))
