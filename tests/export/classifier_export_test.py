"""Export of fine-tuned classifiers, served from a fresh process without gpt1_keras.

An RTE model fine-tuned by `finetune()` (real GPT-1 BPE, a tiny backbone) goes
through the `//pipelines:export` binary; an SST-2-style single-text classifier through
the library function. A fresh Python process loads each SavedModel with
`tf.saved_model.load` and calls `serving_default` with raw strings; its outputs must
match the Keras model in this process to 1e-5.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.export import export_saved_model
from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.models import GPT1Classifier
from gpt1_keras.preprocessing import GPT1ClassifierPreprocessor
from gpt1_keras.run_lock import LOCK_NAME
from gpt1_keras.tasks import get_task
from gpt1_keras.tasks.finetuning import FinetuneConfig
from gpt1_keras.tasks.finetuning import finetune
from gpt1_keras.tokenizers import GPT1Tokenizer
from tests.export import export_test_lib as lib

PAIRS = [
    ("A man is sleeping.", "A person rests."),
    ("", "An empty premise still gets an answer."),
    ("Don't panic: it's only a test!", ""),
    ("word " * 400, "An over-long premise is trimmed longest-first."),
    ("Ünïcödé, emoji \U0001F600 and CJK 漢字.", "tabs\tand\nnewlines"),
]
TEXTS = ["a great movie", "", "dull , boring and far too long " * 50, "Mr. Smith's café"]


def _write_rte(directory):
    rows = [("1", "A man sleeps.", "A person rests.", "entailment"),
            ("2", "A dog runs.", "A cat sleeps.", "not_entailment")] * 4
    os.makedirs(directory, exist_ok=True)
    for name, body in (("train.tsv", rows), ("dev.tsv", rows[:4])):
        with open(os.path.join(directory, name), "w") as f:
            f.write("index\tsentence1\tsentence2\tlabel\n")
            f.write("".join("\t".join(r) + "\n" for r in body))
    with open(os.path.join(directory, "test.tsv"), "w") as f:
        f.write("index\tsentence1\tsentence2\n0\tA man sleeps.\tSomeone rests.\n")


def _serve(saved_model, inputs, tmpdir):
    code = (
        "model = tf.saved_model.load(payload['path'])\n"
        "result['signatures'] = sorted(model.signatures)\n"
        "result['outputs'] = call(model.signatures['serving_default'], payload['inputs'])\n"
    )
    return lib.run_fresh(code, {"path": saved_model, "inputs": inputs}, tmpdir)


class ClassifierExportTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        keras.utils.set_random_seed(3)
        root = absltest.get_default_test_tmpdir()
        cls.tokenizer = GPT1Tokenizer()
        checkpoint = os.path.join(root, "lm.keras")
        GPT1CausalLM.from_architecture("gpt1_tiny").save(checkpoint)
        data, cls.rte_dir = os.path.join(root, "rte_data"), os.path.join(root, "rte_run")
        _write_rte(data)
        finetune(FinetuneConfig(data_dir=data, output_dir=cls.rte_dir,
                                init_checkpoint=checkpoint, batch_size=4, epochs=1,
                                sequence_length=24, eval_batch_size=8, verbose=0),
                 get_task("rte"), tokenizer=cls.tokenizer)

    def test_fine_tuned_rte_through_the_binary(self):
        export_dir = os.path.join(self.create_tempdir().full_path, "rte")
        proc = subprocess.run(
            [sys.executable, "-m", "pipelines.export", f"--model_dir={self.rte_dir}",
             f"--export_dir={export_dir}"],
            capture_output=True, text=True, timeout=600)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        version_dir = os.path.join(export_dir, "1")
        self.assertIn(f"Exported GPT1Classifier to {version_dir}", proc.stdout)
        self.assertIn("serving_default(text: string[None], text_b: string[None]) -> "
                      "label, label_name, probabilities", proc.stdout)
        # No partial directory left (the export's run lock file aside).
        self.assertEqual(sorted(set(os.listdir(export_dir)) - {LOCK_NAME}), ["1"])

        model = keras.saving.load_model(os.path.join(self.rte_dir, "model.keras"),
                                        compile=False)
        self.assertEqual(model.preprocessor.sequence_length, 24)
        a, b = (list(c) for c in zip(*PAIRS))
        served = _serve(version_dir, {"text": lib.encode(a), "text_b": lib.encode(b)},
                        self.create_tempdir().full_path)
        self.assertEqual(served["gpt1_keras_modules"], [])
        self.assertEqual(served["signatures"], ["serving_default"])
        out = {k: lib.decode(v) for k, v in served["outputs"].items()}

        logits = model(model.preprocessor((a, b)), training=False)
        expected = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
        np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(out["label"], expected.argmax(-1))
        self.assertEqual(out["label"].dtype, np.int64)
        names = get_task("rte").labels
        self.assertEqual(list(out["label_name"]),
                         [names[i].encode() for i in expected.argmax(-1)])

        with open(os.path.join(version_dir, "assets.extra", "gpt1_keras_export.json")) as f:
            info = json.load(f)
        self.assertEqual((info["head"], info["fine_tuning_task"], info["sequence_length"],
                          info["label_names"]), ("entailment", "rte", 24, list(names)))

        signatures = lib.parse_saved_model_cli(lib.saved_model_cli_show(version_dir))
        self.assertEqual(signatures["serving_default"], {
            "inputs": {"text": ("DT_STRING", "(-1)"), "text_b": ("DT_STRING", "(-1)")},
            "outputs": {"label": ("DT_INT64", "(-1)"), "label_name": ("DT_STRING", "(-1)"),
                        "probabilities": ("DT_FLOAT", "(-1, 2)")},
            "method": "tensorflow/serving/predict",
        })

    def test_single_text_classifier_from_the_library(self):
        keras.utils.set_random_seed(5)
        model = GPT1Classifier(
            GPT1Backbone.from_architecture("gpt1_tiny"), num_classes=3,
            preprocessor=GPT1ClassifierPreprocessor(self.tokenizer, "classification", 16))
        model_dir = lib.save_model_dir(model, self.create_tempdir().full_path)
        export_dir = os.path.join(self.create_tempdir().full_path, "sentiment")
        path = export_saved_model(model_dir, export_dir,
                                  label_names=["negative", "neutral", "positive"])
        self.assertEqual(path, os.path.join(export_dir, "1"))

        served = _serve(path, {"text": lib.encode(TEXTS)}, self.create_tempdir().full_path)
        self.assertEqual(served["gpt1_keras_modules"], [])
        out = {k: lib.decode(v) for k, v in served["outputs"].items()}
        expected = keras.ops.convert_to_numpy(keras.ops.softmax(
            model(model.preprocessor(TEXTS), training=False), axis=-1))
        np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(out["label"], expected.argmax(-1))
        self.assertEqual(
            list(out["label_name"]),
            [["negative", "neutral", "positive"][i].encode() for i in expected.argmax(-1)])


if __name__ == "__main__":
    absltest.main()
