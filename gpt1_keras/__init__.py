"""gpt1-keras: GPT-1 (Radford et al., 2018) as a Keras 3 multi-backend library.

The model code (`gpt1_keras.layers`, `gpt1_keras.models`) runs on the TensorFlow,
JAX and PyTorch backends. The tokenizer and the tf.data pipelines use TensorFlow
and are imported on first use.
"""

__version__ = "0.1.0"

from gpt1_keras import extras as _extras

if _extras.missing_backend() is None:
    # Importing the models registers their classes with Keras (`load_model` of a
    # `.keras` file needs that).
    from gpt1_keras.checkpoint_conversion import convert_hf_weights
    from gpt1_keras.checkpoint_conversion import convert_openai_weights
    from gpt1_keras.checkpoint_conversion import load_hf_state_dict
    from gpt1_keras.layers import CausalSelfAttention
    from gpt1_keras.layers import GPT1DecoderBlock
    from gpt1_keras.layers import PositionEmbedding
    from gpt1_keras.models import GPT1Backbone
    from gpt1_keras.models import GPT1CausalLM
    from gpt1_keras.models import GPT1Classifier
    from gpt1_keras.models import backbone_presets
else:
    # Keras cannot load its backend: the package still imports (so that the
    # binaries print one line naming the extra); the models say the same when used.
    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise _extras.missing_backend_error(_extras.missing_backend())
