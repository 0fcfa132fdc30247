"""GPT-1's optimizer: Adam with the original code's decoupled L2, as a Keras optimizer.

OpenAI's `opt.py` (finetune-transformer-lm) updates every parameter `p` with

    lr_t = lr * schedule * sqrt(1 - b2^t) / (1 - b1^t)
    m = b1 m + (1 - b1) g ;  v = b2 v + (1 - b2) g^2
    p -= lr_t * (m / (sqrt(v) + eps) + l2 * p)      # `l2 * p` only if rank(p) > 1

after clipping all gradients by their global norm. Keras' `AdamW` differs in two ways
(docs/model.md, choice 5): its decay `p -= lr * wd * p` is not scaled by the bias-correction
factor `sqrt(1 - b2^t) / (1 - b1^t)`, and it decays every variable unless told to
exclude some. `GPT1Adam` implements the original update exactly, with `keras.ops`
only (every backend), and decides "rank > 1" from each variable's shape, so biases,
LayerNorm gains/biases (rank 1) are never decayed while matrices and embeddings are.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="gpt1_keras")
class GPT1Adam(keras.optimizers.Optimizer):
    """Adam with GPT-1's decoupled, bias-corrected L2 on weights of rank > 1.

    The Adam part is Keras `Adam`'s update (the same epsilon placement as the original
    code: `m / (sqrt(v) + eps)` scaled by `lr * sqrt(1 - b2^t) / (1 - b1^t)`); the
    decay adds `lr_t * l2 * p` for variables of rank > 1, using `p` before the update.

    Args:
        learning_rate: a float or a `LearningRateSchedule`.
        beta_1, beta_2, epsilon: Adam's constants; GPT-1 uses 0.9, 0.999, 1e-8.
        l2: the decoupled decay coefficient `w` (0.01 in GPT-1). 0 disables it.
        **kwargs: `keras.optimizers.Optimizer` arguments, e.g. `global_clipnorm=1.0`.
            `weight_decay` is refused: it is Keras' un-corrected AdamW decay, use `l2`.

    Example:
    ```python
    optimizer = GPT1Adam(WarmupCosineDecay(2.5e-4, 2000, 100_000), l2=0.01,
                         global_clipnorm=1.0)
    ```
    """

    def __init__(
        self,
        learning_rate=2.5e-4,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        l2=0.01,
        name="gpt1_adam",
        **kwargs,
    ):
        if kwargs.get("weight_decay"):
            raise ValueError(
                "GPT1Adam applies GPT-1's decay through `l2`; Keras' `weight_decay` "
                f"would decay a second time. Received: weight_decay={kwargs['weight_decay']}"
            )
        kwargs.pop("weight_decay", None)
        if l2 < 0:
            raise ValueError(f"`l2` must be >= 0. Received: l2={l2}")
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.l2 = l2

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(
            var_list, ["momentum", "velocity"]
        )

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        t = ops.cast(self.iterations + 1, variable.dtype)
        beta_1_power = ops.power(ops.cast(self.beta_1, variable.dtype), t)
        beta_2_power = ops.power(ops.cast(self.beta_2, variable.dtype), t)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]

        # lr_t: the bias-corrected step size, shared by the Adam step and the decay.
        lr_t = lr * ops.sqrt(1.0 - beta_2_power) / (1.0 - beta_1_power)
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(
            v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2)
        )
        step = ops.divide(m, ops.add(ops.sqrt(v), self.epsilon))
        if self.l2 > 0 and len(variable.shape) > 1:
            step = ops.add(step, ops.multiply(self.l2, variable))
        self.assign_sub(variable, ops.multiply(lr_t, step))

    # Keras 3.15 on a multi-replica tf.distribute strategy clips each replica's
    # gradient *before* the all-reduce, so "global norm 1" would bound each replica's
    # share, not the global gradient. Here the TF path clips after the all-reduce
    # (see `tf_distribute.all_reduce_then_clip_update`), matching one device.

    def _multi_replica_tf(self):
        if keras.backend.backend() != "tensorflow" or not self.global_clipnorm:
            return False
        from gpt1_keras.training import tf_distribute

        return tf_distribute.in_multi_replica_context()

    def _clip_gradients(self, grads):
        if self._multi_replica_tf():
            return grads  # Clipped after the all-reduce, in `_backend_update_step`.
        return super()._clip_gradients(grads)

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if keras.backend.backend() == "tensorflow":
            from gpt1_keras.training import tf_distribute

            if self._multi_replica_tf():
                return tf_distribute.all_reduce_then_clip_update(
                    self, grads, trainable_variables, learning_rate
                )
            if not tf_distribute.in_multi_replica_context():
                # One replica: the all-reduce is the identity, and skipping it keeps
                # TF from holding every traced train step (and its model) for the life
                # of the process (see `update_without_all_reduce`).
                return tf_distribute.update_without_all_reduce(
                    self, grads, trainable_variables, learning_rate
                )
        return super()._backend_update_step(grads, trainable_variables, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "l2": self.l2,
            }
        )
        return config


def build_optimizer(
    learning_rate,
    weight_decay=0.01,
    clip_norm=1.0,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-8,
):
    """GPT-1's optimizer: `GPT1Adam` with global-norm gradient clipping.

    Args:
        learning_rate: a float or a `LearningRateSchedule` (see `schedules`).
        weight_decay: GPT-1's decoupled L2 `w` on weights of rank > 1 (0.01).
        clip_norm: clip all gradients together to this global norm (1.0); 0 or
            `None` disables clipping.
        beta_1, beta_2, epsilon: Adam's constants (GPT-1: 0.9, 0.999, 1e-8).

    Returns:
        A `GPT1Adam`.
    """
    if clip_norm is not None and clip_norm < 0:
        raise ValueError(f"`clip_norm` must be >= 0. Received: clip_norm={clip_norm}")
    return GPT1Adam(
        learning_rate=learning_rate,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
        l2=weight_decay,
        global_clipnorm=clip_norm or None,
    )
