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
