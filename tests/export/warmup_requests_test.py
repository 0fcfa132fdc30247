"""TF Serving warm-up records (`assets.extra/tf_serving_warmup_requests`): they parse as
`PredictionLog`s, one or more per signature, with inputs fitting the signature as
`saved_model_cli` lists it; replayed in a fresh process without gpt1_keras (as TF
Serving does when it loads a version), they leave the next request of every signature
far from the cold first call, which optimises the signature's graph."""

import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import absltest
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import prediction_log_pb2

from gpt1_keras.export import export_saved_model
from gpt1_keras.export.serving_utils import write_warmup_requests
from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.models import GPT1Classifier
from gpt1_keras.preprocessing import GPT1ClassifierPreprocessor
from gpt1_keras.tokenizers import GPT1Tokenizer
from tests.export import export_test_lib as lib

# Replays the records of each model, then times the first request of every signature
# after them (other inputs than the records') and three more. Then loads the language
# model again, a second copy whose functions nothing has called, and times its cold first
# `score` call. The cold call comes last, so that whatever it warms in the process helps
# it, not the warmed copy.
_SERVE = r'''
import os, time
from tensorflow_serving.apis import prediction_log_pb2


def timed(fn, inputs):
    start = time.perf_counter()
    outputs = fn(**inputs)
    for t in outputs.values():
        t.numpy()
    return time.perf_counter() - start


for key in ("lm", "classifier"):
    model = tf.saved_model.load(payload[key]["path"])
    records = os.path.join(payload[key]["path"], "assets.extra", "tf_serving_warmup_requests")
    replayed = []
    for record in tf.data.TFRecordDataset(records):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        name = request.model_spec.signature_name
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        model.signatures[name](**inputs)
        replayed.append(name)
    result[key] = {"replayed": replayed, "first": {}, "steady": {}}
    for name, inputs in payload[key]["requests"].items():
        fn = model.signatures[name]
        inputs = {k: tensor(v) for k, v in inputs.items()}
        result[key]["first"][name] = timed(fn, inputs)
        result[key]["steady"][name] = sorted(timed(fn, inputs) for _ in range(3))[1]
cold = tf.saved_model.load(payload["lm"]["path"]).signatures["score"]
result["cold_score"] = timed(cold, {k: tensor(v) for k, v in payload["lm"]["requests"]["score"].items()})
'''


def _read_records(path):
    file = os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
    return [prediction_log_pb2.PredictionLog.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(file)]


def _settings(temperature, top_k, top_p, seed, max_new_tokens):
    return {"max_new_tokens": lib.encode([max_new_tokens], "int32"),
            "temperature": lib.encode([temperature], "float32"),
            "top_k": lib.encode([top_k], "int32"), "top_p": lib.encode([top_p], "float32"),
            "seed": lib.encode([seed], "int64")}


class WarmupRequestsTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        keras.utils.set_random_seed(5)
        tmp = absltest.get_default_test_tmpdir()
        tokenizer = GPT1Tokenizer()
        cls.lm_path = export_saved_model(
            GPT1CausalLM.from_architecture("gpt1_tiny"), os.path.join(tmp, "lm"),
            tokenizer=tokenizer, max_new_tokens_limit=8)
        # Multiple choice: two signatures (`serving_default`, `with_question`).
        classifier = GPT1Classifier(
            GPT1Backbone.from_architecture("gpt1_tiny"), head="multiple_choice",
            preprocessor=GPT1ClassifierPreprocessor(tokenizer, "multiple_choice", 24))
        cls.classifier_path = export_saved_model(classifier, os.path.join(tmp, "mc"))
        choices = lib.encode([["to the market", "home", "nowhere"]])
        payload = {
            "lm": {"path": cls.lm_path, "requests": {
                "serving_default": {"text": lib.encode(["A fair day in Verona."])},
                "score": {"text": lib.encode(["Good morrow, cousin."])},
                "score_continuation": {"context": lib.encode(["Where are you going?"]),
                                       "text": lib.encode([" To the market."])},
                "generate": {"prompt": lib.encode(["JULIET:"]),
                             **_settings(0.0, 0, 1.0, 3, 6)},
            }},
            "classifier": {"path": cls.classifier_path, "requests": {
                "serving_default": {"text": lib.encode(["She took her basket."]),
                                    "choices": choices},
                "with_question": {"text": lib.encode(["She took her basket."]),
                                  "question": lib.encode(["Where did she go?"]),
                                  "choices": choices},
            }},
        }
        cls.served = lib.run_fresh(_SERVE, payload, tmp)

    def test_records_are_prediction_logs_for_every_signature(self):
        for path in (self.lm_path, self.classifier_path):
            signatures = lib.parse_saved_model_cli(lib.saved_model_cli_show(path))
            signatures.pop("__saved_model_init_op", None)
            logs = _read_records(path)
            names = [log.predict_log.request.model_spec.signature_name for log in logs]
            self.assertEqual(sorted(set(names)), sorted(signatures), path)
            for log in logs:
                request = log.predict_log.request
                expected = signatures[request.model_spec.signature_name]["inputs"]
                self.assertEqual(sorted(request.inputs), sorted(expected))
                for key, proto in request.inputs.items():
                    dtype, shape = expected[key]
                    self.assertEqual(types_pb2.DataType.Name(proto.dtype), dtype, key)
                    # saved_model_cli writes (-1) or (-1, -1): one -1 per dimension.
                    self.assertLen(proto.tensor_shape.dim, shape.count("-1"), key)
                    value = tf.make_ndarray(proto)
                    self.assertGreater(value.size, 0, key)
                    if dtype == "DT_STRING":  # raw text, not ids
                        for text in value.reshape(-1):
                            self.assertRegex(text.decode("utf-8"), r"[A-Za-z]{2}")

    def test_replayed_in_a_fresh_process(self):
        self.assertEqual(self.served["gpt1_keras_modules"], [])
        for key, path in (("lm", self.lm_path), ("classifier", self.classifier_path)):
            self.assertEqual(self.served[key]["replayed"],
                             [log.predict_log.request.model_spec.signature_name
                              for log in _read_records(path)])

    def test_next_request_after_replay_is_not_the_cold_one(self):
        # The cold first call optimises the tokenizer's graph (seconds; tens of them on
        # a loaded machine); after the replay, the first request of each signature costs
        # a small fraction of it. The speed target itself (first request within 2x of the
        # steady-state p50) is bench/export/serving_benchmark.py's.
        cold = self.served["cold_score"]
        for key in ("lm", "classifier"):
            for name, first in self.served[key]["first"].items():
                self.assertLess(first, cold / 5, f"{key} {name}: first {first:.3f} s after the "
                                f"replay, cold {cold:.3f} s, steady "
                                f"{self.served[key]['steady'][name]:.3f} s")

    def test_requests_must_fit_the_signatures(self):
        fn = tf.function(lambda text, n: {"out": text},
                         input_signature=[tf.TensorSpec([None], tf.string, "text"),
                                          tf.TensorSpec([None], tf.int32, "n")])
        signatures = {"serving_default": fn.get_concrete_function(),
                      "other": fn.get_concrete_function()}
        file = os.path.join(self.create_tempdir().full_path, "records")
        good = {"text": ["a b"], "n": [1]}
        cases = [
            ([("serving_default", good)], r"No warm-up request for the signatures \['other'\]"),
            ([("serving_default", good), ("other", {"text": ["a b"]})],
             r"'other' has inputs \['text'\]; the signature takes \['n', 'text'\]"),
            ([("serving_default", good), ("other", {"text": [["a b"]], "n": [1]})],
             r"other/text has shape \(1, 1\); the signature takes \(None,\)"),
        ]
        for requests, message in cases:
            with self.subTest(message), self.assertRaisesRegex(ValueError, message):
                write_warmup_requests(file, requests, signatures)
        write_warmup_requests(file, [("serving_default", good), ("other", good)], signatures)
        logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy())
                for r in tf.data.TFRecordDataset(file)]
        n = logs[1].predict_log.request.inputs["n"]
        self.assertEqual((types_pb2.DataType.Name(n.dtype), tf.make_ndarray(n).tolist()),
                         ("DT_INT32", [1]))
        np.testing.assert_array_equal(
            tf.make_ndarray(logs[0].predict_log.request.inputs["text"]), [b"a b"])


if __name__ == "__main__":
    absltest.main()
