"""Every third-party module the package imports is a declared dependency or a guarded extra.

Walks the source of `gpt1_keras` and the binaries (`pipelines/`, shipped as
`gpt1_keras.pipelines`) with `ast`, and checks each import of a module outside the
standard library and the package:

- a module of a core dependency (`[project] dependencies` of `pyproject.toml`) may be
  imported anywhere;
- a module of an optional dependency must be in `gpt1_keras.extras.EXTRAS`, whose
  extra `pyproject.toml` declares with the distribution that provides the module, and
  it is imported only inside functions or through `extras.require("module", ...)`,
  never when the package is imported;
- nothing else.

Which distribution provides a module is read from the installed distributions'
metadata (`importlib.metadata.packages_distributions`), not from a table of ours.
"""

import ast
import importlib.metadata
import os
import re
import sys
import tomllib

from absl.testing import absltest

from gpt1_keras import extras

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FIRST_PARTY = {"gpt1_keras", "pipelines"}


def _distribution_name(requirement):
    """`"keras-hub>=0.32,<0.33"` -> `"keras-hub"` (normalised as PEP 503 does)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def _imports(path):
    """`[(top-level module, line, inside a function)]` of one source file."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((a.name.split(".")[0], child.lineno, in_function)
                             for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0:
                found.append((child.module.split(".")[0], child.lineno, in_function))
            elif (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                  and child.func.attr == "require" and child.args
                  and isinstance(child.args[0], ast.Constant)):
                # extras.require("module", ...): guarded by construction.
                found.append((child.args[0].value.split(".")[0], child.lineno, True))
            visit(child, nested)

    visit(tree, False)
    return found


def _source_files():
    for package in ("gpt1_keras", "pipelines"):
        for directory, _, files in os.walk(os.path.join(_ROOT, package)):
            for name in sorted(files):
                if name.endswith(".py"):
                    yield os.path.join(directory, name)


class DependenciesTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(os.path.join(_ROOT, "pyproject.toml"), "rb") as f:
            project = tomllib.load(f)["project"]
        cls.core = {_distribution_name(r) for r in project["dependencies"]}
        cls.optional = {extra: {_distribution_name(r) for r in requirements}
                        for extra, requirements in project["optional-dependencies"].items()}
        cls.providers = {module: {_distribution_name(d) for d in dists}
                         for module, dists in importlib.metadata.packages_distributions().items()}

    def test_the_walk_sees_the_whole_package(self):
        files = list(_source_files())
        names = {os.path.relpath(f, _ROOT) for f in files}
        for expected in ("gpt1_keras/__init__.py", "gpt1_keras/extras.py",
                         "gpt1_keras/export/serving_utils.py",
                         "gpt1_keras/training/pretraining.py",
                         "gpt1_keras/tokenizers/bpe_trainer.py",
                         "gpt1_keras/tasks/finetuning.py", "pipelines/export.py"):
            self.assertIn(expected, names)
        self.assertGreater(len(files), 60)

    def test_every_extra_is_declared_with_its_provider(self):
        for module, extra in extras.EXTRAS.items():
            self.assertIn(extra, self.optional, f"{module}: extra {extra!r} not in pyproject")
            self.assertTrue(self.providers.get(module, set()) & self.optional[extra],
                            f"extra {extra!r} does not install the module {module!r}")
            self.assertFalse(self.providers.get(module, set()) & self.core,
                             f"{module} is a core dependency, not an extra")

    def test_third_party_imports_are_declared(self):
        problems = []
        for path in _source_files():
            where = os.path.relpath(path, _ROOT)
            for module, line, in_function in _imports(path):
                if module in sys.stdlib_module_names or module in _FIRST_PARTY:
                    continue
                providers = self.providers.get(module, set())
                if providers & self.core:
                    continue
                if module not in extras.EXTRAS:
                    problems.append(f"{where}:{line}: {module} is neither a dependency "
                                    f"nor an extra (installed from {sorted(providers)})")
                elif not in_function:
                    problems.append(f"{where}:{line}: the optional {module} is imported "
                                    "with the package; import it inside the function "
                                    "that needs it, through extras.require")
        self.assertEqual(problems, [])

    def test_checker_catches_an_unguarded_extra_and_an_undeclared_module(self):
        path = self.create_tempfile("bad.py", (
            "import matplotlib\n"
            "from transformers import AutoModel\n"
            "def f():\n"
            "    import torch\n"
            "    return extras.require('jax.numpy', 'x')\n")).full_path
        self.assertEqual(_imports(path), [("matplotlib", 1, False), ("transformers", 2, False),
                                          ("torch", 4, True), ("jax", 5, True)])
        self.assertNotIn("transformers", extras.EXTRAS)
        self.assertFalse(self.providers["transformers"] & self.core)


if __name__ == "__main__":
    absltest.main()
