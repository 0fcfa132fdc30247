"""export_saved_model: versions, model directories, metadata and argument errors."""

import json
import os
import subprocess
import sys

import keras
from absl.testing import absltest

from gpt1_keras.export import export_saved_model
from gpt1_keras.export import load_model
from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.models import GPT1Classifier
from gpt1_keras.run_lock import LOCK_NAME
from gpt1_keras.tokenizers import GPT1Tokenizer
from tests.export import export_test_lib as lib


class SavedModelExportTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        keras.utils.set_random_seed(2)
        cls.tokenizer = GPT1Tokenizer()
        cls.classifier = GPT1Classifier(GPT1Backbone.from_architecture("gpt1_tiny"), num_classes=2)

    def test_versions_count_up_and_are_never_overwritten(self):
        export_dir = self.create_tempdir().full_path
        os.makedirs(os.path.join(export_dir, "7"))  # an older model
        os.makedirs(os.path.join(export_dir, "notes"))  # ignored: not a number
        first = export_saved_model(self.classifier, export_dir, tokenizer=self.tokenizer,
                                   sequence_length=8)
        self.assertEqual(first, os.path.join(export_dir, "8"))
        self.assertTrue(os.path.isfile(os.path.join(first, "saved_model.pb")))
        with self.assertRaisesRegex(ValueError, r"/8 exists; pick another `version` "
                                    r"\(existing: \[7, 8\]\)"):
            export_saved_model(self.classifier, export_dir, version=8,
                               tokenizer=self.tokenizer, sequence_length=8)
        with self.assertRaisesRegex(ValueError, "version` must be a positive int. "
                                    "Received: version=0"):
            export_saved_model(self.classifier, export_dir, version=0,
                               tokenizer=self.tokenizer, sequence_length=8)
        # Besides the versions, only the export lock (`RunLock`) and the user's own entries.
        self.assertEqual(sorted(os.listdir(export_dir)), [LOCK_NAME, "7", "8", "notes"])
        with open(os.path.join(first, "assets.extra", "gpt1_keras_export.json")) as f:
            info = json.load(f)
        self.assertEqual(info["version"], 8)
        self.assertIsNone(info["label_names"])  # none given, none known
        self.assertEqual(info["utf8_errors"], "strict")
        self.assertEqual(info["signatures"]["serving_default"]["outputs"]["probabilities"],
                         {"dtype": "float32", "shape": [None, 2]})

    def test_model_directory_metadata(self):
        model_dir = lib.save_model_dir(self.classifier, self.create_tempdir().full_path,
                                       task="sst2", sequence_length=40)
        model, source, metadata = load_model(model_dir)
        self.assertIsInstance(model, GPT1Classifier)
        self.assertEqual(source, os.path.join(model_dir, "model.keras"))
        # Label names come from the model's preprocessor, not from metrics.json.
        self.assertEqual(metadata, {"task": "sst2", "sequence_length": 40})
        # --task=csv records no label list.
        csv_dir = lib.save_model_dir(self.classifier, self.create_tempdir().full_path,
                                     task="csv", sequence_length=40)
        self.assertEqual(load_model(csv_dir)[2], {"task": "csv", "sequence_length": 40})
        # A .keras file alone: no metadata.
        file = os.path.join(self.create_tempdir().full_path, "clf.keras")
        self.classifier.save(file)
        self.assertEqual(load_model(file)[1:], (file, {}))

    def test_missing_models_are_named(self):
        empty = self.create_tempdir().full_path
        open(os.path.join(empty, "notes.txt"), "w").close()
        with self.assertRaisesRegex(FileNotFoundError,
                                    r"is a directory without model.keras .*'notes.txt'"):
            load_model(empty)
        with self.assertRaisesRegex(FileNotFoundError, "No model at /nonexistent/x"):
            export_saved_model("/nonexistent/x", empty)

    def test_argument_errors_name_the_value(self):
        out = self.create_tempdir().full_path
        lm = GPT1CausalLM.from_architecture("gpt1_tiny")
        cases = [
            (self.classifier, dict(label_names=["a", "b", "c"]),
             r"needs one name per class \(2\). Received 3"),
            (self.classifier, dict(sequence_length=65), r"int in \[3, 64\].*sequence_length=65"),
            (self.classifier, dict(max_new_tokens_limit=5), "for language models"),
            (self.classifier, dict(utf8_errors="ignore"), "utf8_errors='ignore'"),
            (lm, dict(label_names=["a"]), "`label_names` is for classifiers"),
            (lm, dict(max_new_tokens_limit=64),
             r"int in \[1, 63\].*max_new_tokens_limit=64"),
            (GPT1Backbone.from_architecture("gpt1_tiny"), {}, "holds a GPT1Backbone; export takes"),
        ]
        for model, kwargs, message in cases:
            with self.subTest(kwargs=kwargs), self.assertRaisesRegex(ValueError, message):
                export_saved_model(model, out, tokenizer=self.tokenizer, **kwargs)
        self.assertEqual(os.listdir(out), [])

    def test_utf8_errors_replace_rebuilds_the_tokenizer(self):
        path = export_saved_model(self.classifier, self.create_tempdir().full_path,
                                  tokenizer=self.tokenizer, sequence_length=8,
                                  utf8_errors="replace")
        with open(os.path.join(path, "assets.extra", "gpt1_keras_export.json")) as f:
            self.assertEqual(json.load(f)["utf8_errors"], "replace")
        self.assertEqual(self.tokenizer.errors, "strict")  # the given one is unchanged

    def test_binary_usage_errors(self):
        def run(*flags):
            return subprocess.run([sys.executable, "-m", "pipelines.export", *flags],
                                  capture_output=True, text=True, timeout=300)

        # Expected errors: one `ERROR:` line and exit 2 (gpt1_keras.cli), no traceback.
        proc = run("--export_dir=/tmp/unused")
        self.assertEqual(proc.returncode, 2)
        self.assertIn("ERROR: --model_dir is required.", proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        empty = self.create_tempdir().full_path
        proc = run(f"--model_dir={empty}", f"--export_dir={empty}/out")
        self.assertEqual(proc.returncode, 2)
        self.assertIn(f"{empty} is a directory without model.keras", proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)
        self.assertFalse(os.path.exists(f"{empty}/out"))

    def test_other_backends_are_refused(self):
        code = ("import os; os.environ['KERAS_BACKEND'] = 'jax'\n"
                "from gpt1_keras.export import export_saved_model\n"
                "try:\n"
                "    export_saved_model('unused', 'unused')\n"
                "except ValueError as e:\n"
                "    print(e)\n")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=300)
        self.assertIn("run it with KERAS_BACKEND=tensorflow. Received: backend='jax'",
                      proc.stdout, proc.stderr[-2000:])


if __name__ == "__main__":
    absltest.main()
