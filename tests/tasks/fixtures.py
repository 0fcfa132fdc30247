"""A pure-Python test tokenizer with hand-checkable ids.

`DigitTokenizer` serves the backend-agnostic tests; the TF stand-in for
`GPT1Tokenizer` is `tests/data/fake_tokenizer.py`.
"""

import os
import zlib

from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM


def save_tiny_lm(directory):
    """Saves a 1-layer LM over the fake tokenizers' 904 ids; returns its path."""
    path = os.path.join(directory, "lm.keras")
    GPT1CausalLM(
        GPT1Backbone(vocabulary_size=904, num_layers=1, num_heads=2, hidden_dim=16,
                     intermediate_dim=32, max_sequence_length=16)
    ).save(path)
    return path


class DigitTokenizer:
    """Pure Python: `"3 4"` -> `[3, 4]`; any other word -> a stable id in [10, 50)."""

    start_token_id = 59

    def __call__(self, texts):
        return [[int(w) if w.isdigit() else 10 + zlib.crc32(w.encode()) % 40
                 for w in t.split()] for t in texts]

