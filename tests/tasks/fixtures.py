"""A pure-Python test tokenizer with hand-checkable ids.

`DigitTokenizer` serves the backend-agnostic tests; the TF stand-in for
`GPT1Tokenizer` is `tests/data/fake_tokenizer.py`.
"""

import zlib


class DigitTokenizer:
    """Pure Python: `"3 4"` -> `[3, 4]`; any other word -> a stable id in [10, 50)."""

    start_token_id = 59

    def __call__(self, texts):
        return [[int(w) if w.isdigit() else 10 + zlib.crc32(w.encode()) % 40
                 for w in t.split()] for t in texts]

