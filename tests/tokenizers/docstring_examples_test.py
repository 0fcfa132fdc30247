"""Runs the `>>>` examples in the tokenizer modules' docstrings (no network, no data)."""

import doctest
import importlib

from absl.testing import absltest

# Each module and the least number of examples it must hold (a module whose examples were
# deleted or mis-formatted, so that doctest finds none, fails here).
MODULES = {
    "gpt1_keras.tokenizers.gpt1_tokenizer": 10,
    "gpt1_keras.tokenizers.normalization": 3,
    "gpt1_keras.tokenizers.spacy_splitter": 3,
    "gpt1_keras.tokenizers.bpe": 3,
}


class DocstringExamplesTest(absltest.TestCase):
    def test_examples_run_and_print_what_they_show(self):
        for name, minimum in MODULES.items():
            with self.subTest(module=name):
                module = importlib.import_module(name)
                result = doctest.testmod(module, verbose=False, report=True)
                self.assertEqual(result.failed, 0, f"{name}: failing docstring examples")
                self.assertGreaterEqual(result.attempted, minimum, name)


if __name__ == "__main__":
    absltest.main()
