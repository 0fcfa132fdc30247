"""GPT-1's weight initialisation, defined once for every layer and model."""

import keras

# GPT-1 draws every weight matrix and embedding from N(0, 0.02); biases start at 0.
GPT1_INIT_STDDEV = 0.02


def gpt1_initializer():
    """A fresh `RandomNormal(mean=0, stddev=0.02)`, GPT-1's initializer.

    A new instance per call, so that each layer draws its own values.
    """
    return keras.initializers.RandomNormal(mean=0.0, stddev=GPT1_INIT_STDDEV)
