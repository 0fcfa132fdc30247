"""The model code imports no backend: only keras (TF-only code lives elsewhere)."""

import ast
import os

from absl.testing import absltest

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Packages whose modules must run on every Keras backend.
_AGNOSTIC = ("gpt1_keras/layers", "gpt1_keras/models", "gpt1_keras/evaluation")
_BACKENDS = ("tensorflow", "tensorflow_text", "jax", "torch")


def _module_level_imports(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in tree.body:  # Module level only: lazy imports in functions are fine.
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


class BackendAgnosticTest(absltest.TestCase):
    def test_model_code_imports_no_backend(self):
        checked = 0
        for package in _AGNOSTIC:
            directory = os.path.join(_ROOT, package)
            for name in sorted(os.listdir(directory)):
                if not name.endswith(".py"):
                    continue
                path = os.path.join(directory, name)
                for module in _module_level_imports(path):
                    self.assertNotIn(
                        module.split(".")[0], _BACKENDS, f"{package}/{name} imports {module}"
                    )
                checked += 1
        self.assertGreaterEqual(checked, 8)


if __name__ == "__main__":
    absltest.main()
