"""Export of the similarity (regression) and multiple-choice heads, served from a fresh
process without gpt1_keras, compared with the Keras models to 1e-5."""

import os

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.export import export_saved_model
from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1Classifier
from gpt1_keras.preprocessing import GPT1ClassifierPreprocessor
from gpt1_keras.tokenizers import GPT1Tokenizer
from tests.export import export_test_lib as lib

SENTENCES_A = ["A plane is taking off.", "", "long " * 300, "Two dogs play."]
SENTENCES_B = ["An air plane is taking off.", "Nothing on the left.", "short", ""]
CONTEXTS = ["The cat sat on the mat. It was warm.", "", "story " * 200]
QUESTIONS = ["Where was the cat?", "What?", ""]
CHOICES = [["on the mat", "in the rain", "", "at school"],
           ["a", "b", "c", "d"],
           ["ending " * 100, "x", "y", "z"]]


def _model(head, num_classes, preprocessor_length, label_names=None):
    keras.utils.set_random_seed(11)
    tokenizer = GPT1Tokenizer()
    return GPT1Classifier(
        GPT1Backbone.from_architecture("gpt1_tiny"), num_classes=num_classes, head=head,
        preprocessor=GPT1ClassifierPreprocessor(tokenizer, head, preprocessor_length,
                                                label_names=label_names))


class ClassifierTasksExportTest(absltest.TestCase):
    def test_similarity_regression(self):
        model = _model("similarity", 1, 20)
        model_dir = lib.save_model_dir(model, self.create_tempdir().full_path,
                                       task="stsb", sequence_length=20)
        path = export_saved_model(model_dir, self.create_tempdir().full_path)
        code = (
            "fn = tf.saved_model.load(payload['path']).signatures['serving_default']\n"
            "result['outputs'] = call(fn, payload['inputs'])\n"
        )
        served = lib.run_fresh(
            code, {"path": path, "inputs": {"text": lib.encode(SENTENCES_A),
                                            "text_b": lib.encode(SENTENCES_B)}},
            self.create_tempdir().full_path)
        self.assertEqual(served["gpt1_keras_modules"], [])
        self.assertEqual(sorted(served["outputs"]), ["score"])  # no labels for STS-B
        expected = keras.ops.convert_to_numpy(
            model(model.preprocessor((SENTENCES_A, SENTENCES_B)), training=False))
        self.assertEqual(expected.shape, (4,))
        np.testing.assert_allclose(lib.decode(served["outputs"]["score"]), expected,
                                   atol=1e-5, rtol=0)

    def test_multiple_choice_with_and_without_question(self):
        model = _model("multiple_choice", None, 32, label_names="ABCD")
        model_dir = lib.save_model_dir(model, self.create_tempdir().full_path,
                                       task="race", sequence_length=32)
        path = export_saved_model(model_dir, self.create_tempdir().full_path)
        code = (
            "model = tf.saved_model.load(payload['path'])\n"
            "result['plain'] = call(model.signatures['serving_default'], payload['plain'])\n"
            "result['question'] = call(model.signatures['with_question'],\n"
            "                          payload['question'])\n"
            "result['two_choices'] = call(model.signatures['serving_default'],\n"
            "                             payload['two_choices'])\n"
            "try:\n"
            "    call(model.signatures['serving_default'], payload['no_choices'])\n"
            "except tf.errors.InvalidArgumentError as e:\n"
            "    result['no_choices_error'] = e.message\n"
        )
        payload = {
            "path": path,
            "plain": {"text": lib.encode(CONTEXTS), "choices": lib.encode(CHOICES)},
            "question": {"text": lib.encode(CONTEXTS), "question": lib.encode(QUESTIONS),
                         "choices": lib.encode(CHOICES)},
            "two_choices": {"text": lib.encode(CONTEXTS),
                            "choices": lib.encode([c[:2] for c in CHOICES])},
            "no_choices": {"text": lib.encode(["a"]), "choices": lib.encode([[]])},
        }
        served = lib.run_fresh(code, payload, self.create_tempdir().full_path)
        self.assertEqual(served["gpt1_keras_modules"], [])
        self.assertIn("`choices` needs at least one choice per example",
                      served["no_choices_error"])

        for key, x in (("plain", (CONTEXTS, CHOICES)),
                       ("question", (CONTEXTS, QUESTIONS, CHOICES)),
                       ("two_choices", (CONTEXTS, [c[:2] for c in CHOICES]))):
            out = {k: lib.decode(v) for k, v in served[key].items()}
            expected = keras.ops.convert_to_numpy(
                keras.ops.softmax(model(model.preprocessor(x), training=False), axis=-1))
            np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5, rtol=0,
                                       err_msg=key)
            np.testing.assert_array_equal(out["label"], expected.argmax(-1))
            # RACE's answer names, from the preprocessor's config.
            self.assertEqual(list(out["label_name"]),
                             ["ABCD"[i].encode() for i in expected.argmax(-1)])

        signatures = lib.parse_saved_model_cli(lib.saved_model_cli_show(path))
        self.assertEqual(signatures["with_question"]["inputs"], {
            "text": ("DT_STRING", "(-1)"), "question": ("DT_STRING", "(-1)"),
            "choices": ("DT_STRING", "(-1, -1)")})
        self.assertEqual(signatures["serving_default"]["outputs"], {
            "label": ("DT_INT64", "(-1)"), "label_name": ("DT_STRING", "(-1)"),
            "probabilities": ("DT_FLOAT", "(-1, -1)")})


if __name__ == "__main__":
    absltest.main()
