"""SavedModel export for TF Serving with the tokenizer inside (TensorFlow-only).

`export_saved_model(model_or_path, export_dir)` writes `export_dir/<version>/`;
see `saved_model_export` and `docs/serving.md`.
"""

from gpt1_keras.export.causal_lm_serving import CausalLMServingModule
from gpt1_keras.export.classifier_serving import ClassifierServingModule
from gpt1_keras.export.sampling import sample_next_tokens
from gpt1_keras.export.saved_model_export import export_saved_model
from gpt1_keras.export.saved_model_export import load_model
