import random

import keras


def seeded_dropout(rate, **kwargs):
    """A `keras.layers.Dropout` whose seed is explicit, drawn from Python's `random`.

    An unseeded Dropout gets the same draw from Keras (`make_default_seed`:
    `random.randint(1, 10**9)`, taken only when `rate > 0`), so on TensorFlow and JAX
    the masks are unchanged and `keras.utils.set_random_seed` still fixes them. On
    PyTorch, Keras sends an unseeded Dropout to `torch.nn.functional.dropout`, which
    draws from torch's global generator: a checkpoint does not hold that, so a resumed
    run would drop other units than an uninterrupted one. With a seed, every backend
    draws from the layer's `SeedGenerator`, whose state is a layer variable saved in
    checkpoints.
    """
    seed = random.randint(1, int(1e9)) if rate > 0 else None
    return keras.layers.Dropout(rate, seed=seed, **kwargs)


class _DrawnSeed(keras.random.SeedGenerator):
    """A seed already drawn from a `SeedGenerator`, handed to `keras.random` again.

    `keras.random` ops take their seed as an int or a `SeedGenerator` (whose `next()`
    returns the `(seed, counter)` state and advances it), not as a tensor. This one
    returns the same drawn value at every `next()` and holds no state variable, so a
    function that is run twice (rematerialization recomputes a block's forward pass in
    the backward pass) draws the same mask both times.
    """

    def __init__(self, seed):  # No `super().__init__()`: no state variable.
        self._initial_seed = 0  # Not None: torch then draws from this seed too.
        self._seed = seed

    def next(self, ordered=True):
        del ordered
        return self._seed


def draw_dropout_seed(dropout):
    """The seed `dropout` (a `keras.layers.Dropout`) would draw at its next training
    call, drawn now (its generator advances as if it had been called), or `None`
    for a layer that draws nothing (rate 0)."""
    if dropout.rate <= 0:
        return None
    return dropout.seed_generator.next()


def dropout_with_seed(dropout, inputs, seed, training):
    """`dropout(inputs, training=training)`, in training with the mask drawn from `seed`.

    `seed` is a value `draw_dropout_seed(dropout)` returned, or `None` for the
    layer's own next draw. With the seed drawn earlier the mask is the one the
    layer would have drawn at that point, and the same however often this runs.
    """
    if not training or seed is None:
        return dropout(inputs, training=training)
    return keras.random.dropout(
        inputs, dropout.rate, noise_shape=dropout.noise_shape, seed=_DrawnSeed(seed)
    )
