"""Evaluation of pretrained GPT-1 language models (backend-agnostic)."""
