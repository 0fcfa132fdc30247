"""Preprocessing layers for GPT-1 tasks (TensorFlow ops; usable with every backend)."""

from gpt1_keras.preprocessing.gpt1_classifier_preprocessor import GPT1ClassifierPreprocessor
from gpt1_keras.preprocessing.gpt1_causal_lm_preprocessor import GPT1CausalLMPreprocessor
