"""GPT-1 models (backend-agnostic: `keras.ops` only)."""

from gpt1_keras.models.gpt1_backbone import GPT1Backbone
from gpt1_keras.models.gpt1_causal_lm import GPT1CausalLM
from gpt1_keras.models.gpt1_presets import backbone_presets
from gpt1_keras.models.gpt1_classifier import GPT1Classifier
from gpt1_keras.models.lstm_backbone import LSTMBackbone
from gpt1_keras.models.gpt1_presets import lstm_backbone_presets
from gpt1_keras.models.architectures import backbone_class
from gpt1_keras.models.architectures import build_backbone
from gpt1_keras.models import preset_loading
from gpt1_keras.models.preset_loading import PresetError
from gpt1_keras.models.preset_loading import PresetNotFoundError
