"""A SavedModel of a model with its own BPE reads text with that BPE (issue #27).

A language model and a classifier whose tokenizer comes from `train_bpe` are exported
from their model directories (the tokenizer travels inside `model.keras`, as
pretraining and fine-tuning save it); a fresh process that imports only TensorFlow and
TF Text loads each SavedModel and answers raw strings: the LM's `score` equals the
Keras model's own log-probabilities of the text's ids under the custom tokenizer (an
independent NumPy log-softmax over `model(x)`), the classifier's probabilities equal
`softmax(model.predict(texts))`.
"""

import os

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.data.lm_dataset import default_corpus_path
from gpt1_keras.export import export_saved_model
from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.models import GPT1Classifier
from gpt1_keras.preprocessing import GPT1CausalLMPreprocessor
from gpt1_keras.preprocessing import GPT1ClassifierPreprocessor
from gpt1_keras.tokenizers import GPT1Tokenizer
from gpt1_keras.tokenizers import train_bpe
from tests import test_case
from tests.export import export_test_lib as lib

TEXTS = ["Wherefore art thou so merry, good cousin?", "my lord , the king is come"]

_SERVE = r'''
model = tf.saved_model.load(payload["path_lm"])
result["score"] = call(model.signatures["score"], payload["score"])
model = tf.saved_model.load(payload["path_classifier"])
result["classify"] = call(model.signatures["serving_default"], payload["classify"])
'''


class CustomVocabularyExportTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        tmp = absltest.get_default_test_tmpdir()
        with open(default_corpus_path(), encoding="utf-8") as f:
            lines = [line for line in f.read().split("\n")[:4000] if line.strip()]
        train_bpe(lines, 300, output_dir=os.path.join(tmp, "bpe"))
        cls.tokenizer = GPT1Tokenizer.from_preset(os.path.join(tmp, "bpe"))
        backbone = GPT1Backbone(**{**test_case.TINY_BACKBONE, "max_sequence_length": 32,
                                   "vocabulary_size": cls.tokenizer.vocabulary_size()})
        test_case.assign_random_weights(backbone, seed=2)
        cls.lm = GPT1CausalLM(backbone, GPT1CausalLMPreprocessor(cls.tokenizer, 32))
        cls.classifier = GPT1Classifier(
            backbone, num_classes=2, lm_coef=0.0, dropout=0.0,
            preprocessor=GPT1ClassifierPreprocessor(cls.tokenizer, "classification", 24))
        test_case.assign_random_weights(cls.classifier.get_layer("classifier_head"), seed=3)
        # From model directories: the exporter finds the tokenizer in model.keras alone.
        paths = {}
        for name, model, task in (("lm", cls.lm, None), ("classifier", cls.classifier, "sst2")):
            model_dir = lib.save_model_dir(model, os.path.join(tmp, name), task=task,
                                           sequence_length=24)
            paths[f"path_{name}"] = export_saved_model(
                model_dir, os.path.join(tmp, f"{name}_export"))
        cls.served = lib.run_fresh(_SERVE, {
            **paths, "score": {"text": lib.encode(TEXTS)},
            "classify": {"text": lib.encode(TEXTS)}}, tmp)

    def test_loaded_without_gpt1_keras(self):
        self.assertEqual(self.served["gpt1_keras_modules"], [])

    def test_score_reads_the_text_with_the_custom_bpe(self):
        out = {k: lib.decode(v) for k, v in self.served["score"].items()}
        for row, text in enumerate(TEXTS):
            ids = [self.tokenizer.start_token_id] + self.tokenizer([text]).to_list()[0]
            x = np.asarray([ids], "int32")
            logits = test_case.to_numpy(self.lm({"token_ids": x, "padding_mask": np.ones_like(x)}))
            log_probs = test_case.log_softmax(logits[0].astype("float64"))
            want = [log_probs[t - 1, ids[t]] for t in range(1, len(ids))]
            self.assertEqual(int(out["num_tokens"][row]), len(ids) - 1)
            np.testing.assert_allclose(out["sum_log_prob"][row], np.sum(want), rtol=1e-5)

    def test_classifier_probabilities_equal_predict(self):
        out = {k: lib.decode(v) for k, v in self.served["classify"].items()}
        expected = keras.ops.convert_to_numpy(
            keras.ops.softmax(self.classifier.predict(TEXTS, verbose=0), axis=-1))
        np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5, rtol=0)


if __name__ == "__main__":
    absltest.main()
