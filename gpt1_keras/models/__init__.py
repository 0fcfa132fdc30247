"""GPT-1 models (backend-agnostic: `keras.ops` only)."""

from gpt1_keras.models.gpt1_backbone import GPT1Backbone
from gpt1_keras.models.gpt1_causal_lm import GPT1CausalLM
from gpt1_keras.models.gpt1_presets import backbone_presets
from gpt1_keras.models.gpt1_classifier import GPT1Classifier
