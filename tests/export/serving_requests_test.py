"""TF Serving requests: REST JSON (`instances` and `inputs`) and gRPC `PredictRequest`s.

`tensorflow_model_server` is not installable here, so a fresh process without
gpt1_keras loads the SavedModels and serves them over localhost with
`serving_emulator` (an emulation of TF Serving's documented JSON conversions and of
the `tensorflow-serving-api` gRPC PredictionService). Every request's answer must equal
a direct call of the loaded signature with the tensors the request stands for, and a
malformed input's error must be the one the loaded signature itself raises for those
tensors (the part a real TF Serving runs); of the emulator's own request checks the
tests assert only that a request is refused and names the input at fault.
"""

import base64
import os

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.export import export_saved_model
from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.models import GPT1Classifier
from gpt1_keras.preprocessing import GPT1ClassifierPreprocessor
from gpt1_keras.tokenizers import GPT1Tokenizer
from tests.export import export_test_lib as lib
from tests.export import serving_emulator

PREMISES = ["A man is sleeping.", "", "Ünïcödé café"]
HYPOTHESES = ["A person rests.", "Nobody is here.", "x"]
GENERATE = {"max_new_tokens": [3, 2], "temperature": [0.0, 0.8], "top_k": [0, 20],
            "top_p": [1.0, 0.9], "seed": [1, 2]}

_SERVE = r'''
import urllib.error
import urllib.request

import grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

sys.path.insert(0, payload["emulator_dir"])
import serving_emulator as emu

models = emu.Models({"rte": tf.saved_model.load(payload["rte"]),
                     "lm": tf.saved_model.load(payload["lm"])})
rest, rest_port = emu.start_rest_server(models)
grpc_server, grpc_port = emu.start_grpc_server(models)


def post(model, body, path_version=""):
    request = urllib.request.Request(
        f"http://127.0.0.1:{rest_port}/v1/models/{model}{path_version}:predict",
        data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            return [reply.status, json.load(reply)]
    except urllib.error.HTTPError as e:
        return [e.code, json.load(e)]


result["rest"] = {name: post(model, body, version)
                  for name, (model, body, version) in payload["rest"].items()}
result["direct"] = {name: call(models.signature(model, signature), inputs)
                    for name, (model, signature, inputs) in payload["direct"].items()}
result["direct_errors"] = {}
for name, (model, signature, inputs) in payload["direct_errors"].items():
    try:
        call(models.signature(model, signature), inputs)
        result["direct_errors"][name] = None
    except Exception as e:  # noqa: BLE001  (the test records the type and message)
        result["direct_errors"][name] = [type(e).__name__, getattr(e, "message", str(e))]

stub = prediction_service_pb2_grpc.PredictionServiceStub(
    grpc.insecure_channel(f"127.0.0.1:{grpc_port}"))
result["grpc"] = {}
for name, (model, signature, inputs) in payload["grpc"].items():
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    for key, spec in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(tensor(spec).numpy()))
    try:
        response = stub.Predict(request, timeout=120)
        result["grpc"][name] = plain(
            {k: tf.constant(tf.make_ndarray(v)) for k, v in response.outputs.items()})
    except grpc.RpcError as e:
        result["grpc"][name] = {"error": [e.code().name, e.details()]}
grpc_server.stop(None)
rest.shutdown()
'''


def _b64(text):
    return {"b64": base64.b64encode(text).decode("ascii")}


class ServingRequestsTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        keras.utils.set_random_seed(9)
        tokenizer = GPT1Tokenizer()
        root = absltest.get_default_test_tmpdir()
        classifier = GPT1Classifier(
            GPT1Backbone.from_architecture("gpt1_tiny"), num_classes=2, head="entailment",
            preprocessor=GPT1ClassifierPreprocessor(tokenizer, "entailment", 24))
        rte = export_saved_model(classifier, os.path.join(root, "rte"),
                                 label_names=["entailment", "not_entailment"])
        lm = export_saved_model(GPT1CausalLM.from_architecture("gpt1_tiny"), os.path.join(root, "lm"),
                                tokenizer=tokenizer, max_new_tokens_limit=4)
        pair = {"text": lib.encode(PREMISES), "text_b": lib.encode(HYPOTHESES)}
        prompts = ["ROMEO:", ""]
        generate = {"prompt": lib.encode(prompts),
                    **{k: lib.encode(v, dtype) for (k, v), dtype in zip(
                        GENERATE.items(), ["int32", "float32", "int32", "float32", "int64"])}}
        payload = {
            "emulator_dir": os.path.dirname(serving_emulator.__file__),
            "rte": rte, "lm": lm,
            "rest": {
                # Row format: one object of named inputs per example.
                "rte_instances": ("rte", {"instances": [
                    {"text": a, "text_b": b} for a, b in zip(PREMISES, HYPOTHESES)]}, ""),
                # Columnar format, binary strings as {"b64": ...}, a version in the path.
                "rte_inputs": ("rte", {"signature_name": "serving_default", "inputs": {
                    "text": [_b64(a.encode()) for a in PREMISES], "text_b": HYPOTHESES}},
                    "/versions/1"),
                # One input: the instances are the values themselves.
                "lm_score": ("lm", {"signature_name": "score", "instances": PREMISES}, ""),
                "lm_generate_instances": ("lm", {"signature_name": "generate", "instances": [
                    {"prompt": p, **{k: v[i] for k, v in GENERATE.items()}}
                    for i, p in enumerate(prompts)]}, ""),
                # Columnar: one setting for every prompt.
                "lm_generate_inputs": ("lm", {"signature_name": "generate", "inputs": {
                    "prompt": prompts, "max_new_tokens": [2], "temperature": [0.0],
                    "top_k": [0], "top_p": [1.0], "seed": [0]}}, ""),
                # Errors.
                "missing_input": ("rte", {"instances": [{"text": "a"}]}, ""),
                "invalid_utf8": ("rte", {"inputs": {"text": [_b64(b"\xff")],
                                                    "text_b": ["b"]}}, ""),
                "matrix_text": ("rte", {"inputs": {"text": [["a"], ["b"]],
                                                   "text_b": ["c", "d"]}}, ""),
                "unknown_signature": ("lm", {"signature_name": "sample",
                                             "instances": ["a"]}, ""),
            },
            "direct": {
                "rte": ("rte", "serving_default", pair),
                "lm_score": ("lm", "score", {"text": lib.encode(PREMISES)}),
                "lm_generate": ("lm", "generate", generate),
                "lm_generate_shared": ("lm", "generate", {
                    "prompt": lib.encode(prompts), "max_new_tokens": lib.encode([2], "int32"),
                    "temperature": lib.encode([0.0], "float32"),
                    "top_k": lib.encode([0], "int32"), "top_p": lib.encode([1.0], "float32"),
                    "seed": lib.encode([0], "int64")}),
            },
            # The tensors the malformed requests stand for, given to the signature.
            "direct_errors": {
                "invalid_utf8": ("rte", "serving_default", {
                    "text": lib.encode([b"\xff"]), "text_b": lib.encode(["b"])}),
                "matrix_text": ("rte", "serving_default", {
                    "text": lib.encode([["a"], ["b"]]), "text_b": lib.encode(["c", "d"])}),
                "wrong_dtype": ("rte", "serving_default", {
                    "text": lib.encode([1], "int32"), "text_b": lib.encode(["b"])}),
            },
            "grpc": {
                "rte": ("rte", "serving_default", pair),
                "lm_generate": ("lm", "generate", generate),
                "wrong_dtype": ("rte", "serving_default", {
                    "text": lib.encode([1], "int32"), "text_b": lib.encode(["b"])}),
                "matrix_text": ("rte", "serving_default", {
                    "text": lib.encode([["a"], ["b"]]), "text_b": lib.encode(["c", "d"])}),
                "missing_input": ("rte", "", {"text": lib.encode(["a"])}),
            },
        }
        cls.served = lib.run_fresh(_SERVE, payload, root)
        cls.direct = {name: {k: lib.decode(v) for k, v in outputs.items()}
                      for name, outputs in cls.served["direct"].items()}

    def rest(self, name, status=200):
        got_status, body = self.served["rest"][name]
        self.assertEqual(got_status, status, body)
        return body

    def test_served_without_gpt1_keras(self):
        self.assertEqual(self.served["gpt1_keras_modules"], [])

    def test_rest_row_and_columnar_formats(self):
        direct = self.direct["rte"]
        names = [n.decode() for n in direct["label_name"]]
        predictions = self.rest("rte_instances")["predictions"]
        self.assertEqual([sorted(p) for p in predictions],
                         [["label", "label_name", "probabilities"]] * 3)
        np.testing.assert_allclose([p["probabilities"] for p in predictions],
                                   direct["probabilities"], rtol=0, atol=1e-7)
        self.assertEqual([p["label"] for p in predictions], direct["label"].tolist())
        self.assertEqual([p["label_name"] for p in predictions], names)
        outputs = self.rest("rte_inputs")["outputs"]
        np.testing.assert_allclose(outputs["probabilities"], direct["probabilities"],
                                   rtol=0, atol=1e-7)
        self.assertEqual(outputs["label_name"], names)

    def test_rest_language_model(self):
        score = self.rest("lm_score")["predictions"]
        np.testing.assert_allclose([p["mean_log_prob"] for p in score],
                                   self.direct["lm_score"]["mean_log_prob"], rtol=0, atol=1e-6)
        generated = self.rest("lm_generate_instances")["predictions"]
        direct = self.direct["lm_generate"]
        self.assertEqual([p["token_ids"] for p in generated], direct["token_ids"].tolist())
        self.assertEqual([p["completion"] for p in generated],
                         [c.decode() for c in direct["completion"]])
        self.assertEqual(direct["token_ids"][1, 2], -1)  # 2 tokens for the second prompt
        shared = self.rest("lm_generate_inputs")["outputs"]
        self.assertEqual(shared["token_ids"],
                         self.direct["lm_generate_shared"]["token_ids"].tolist())
        self.assertEqual(np.asarray(shared["token_ids"]).shape, (2, 2))

    def model_error(self, name, *messages):
        """The loaded signature's own error for case `name`, which must name `messages`."""
        error = self.served["direct_errors"][name]
        self.assertIsNotNone(error, f"the signature answered the malformed {name}")
        kind, message = error
        self.assertEqual(kind, "InvalidArgumentError", message)
        for expected in messages:
            self.assertIn(expected, message)
        return message

    def test_rest_errors(self):
        # Refused by the model: the reply carries the signature's own error.
        self.assertEqual(
            self.rest("invalid_utf8", 400)["error"],
            self.model_error("invalid_utf8", "GPT1Tokenizer: input is not valid UTF-8"))
        self.assertEqual(
            self.rest("matrix_text", 400)["error"],
            self.model_error("matrix_text", "Shape of tensor text [2,1] is not compatible "
                                            "with expected shape [?]"))
        # The emulator's own request checks (its wording): refused, naming what is wrong.
        self.assertIn("text_b", self.rest("missing_input", 400)["error"])
        self.assertIn('"sample"', self.rest("unknown_signature", 400)["error"])

    def test_grpc_predict_requests(self):
        got = {k: lib.decode(v) for k, v in self.served["grpc"]["rte"].items()}
        for key, value in self.direct["rte"].items():
            np.testing.assert_array_equal(got[key], value)
        got = {k: lib.decode(v) for k, v in self.served["grpc"]["lm_generate"].items()}
        for key, value in self.direct["lm_generate"].items():
            np.testing.assert_array_equal(got[key], value)
        # Refused by the model: INVALID_ARGUMENT with the signature's own error.
        for name, message in (
                ("wrong_dtype", "was expected to be a string tensor but is a int32 tensor"),
                ("matrix_text", "Shape of tensor text [2,1] is not compatible with "
                                "expected shape [?]")):
            with self.subTest(name):
                code, details = self.served["grpc"][name]["error"]
                self.assertEqual(code, "INVALID_ARGUMENT")
                self.assertEqual(details, self.model_error(name, message))
        # The emulator's own check that the request names every input (its wording).
        code, details = self.served["grpc"]["missing_input"]["error"]
        self.assertEqual(code, "INVALID_ARGUMENT")
        self.assertIn("'text_b'", details)

if __name__ == "__main__":
    absltest.main()
