"""An EMULATION of TF Serving's Predict API, for tests (no gpt1_keras import).

`tensorflow_model_server` cannot be installed here (no PyPI/npm/Debian package), so
the tests serve a SavedModel loaded with `tf.saved_model.load` through this stand-in.
Two parts, kept apart on purpose:

- What a real TF Serving runs, and what the tests assert: the SavedModel's own
  signatures. Once a request is turned into tensors they go to the loaded signature
  unchanged (whatever dtype and shape the request carried), so a malformed input is
  refused by the model itself, e.g. with its `InvalidArgumentError` "... was expected
  to be a string tensor but is a int32 tensor" or "Shape of tensor text [2,1] is not
  compatible with expected shape [?]", and the model's other errors (such as the
  tokenizer's invalid-UTF-8 assertion) pass through as they are.
- What is emulated, written here after TF Serving's documentation, NOT TF Serving's
  code: the REST JSON conversions (row format `{"instances": [...]}`, one value per
  example or one object of named inputs per example, stacked along a new 0-th
  dimension; columnar format `{"inputs": ...}`; `{"b64": ...}` for binary strings;
  responses `{"predictions": [...]}` or `{"outputs": ...}`), the gRPC
  `PredictionService` of `tensorflow-serving-api` with a check that the request names
  every signature input and no other, the model/signature lookup, and the local HTTP
  (`POST /v1/models/<name>[/versions/<v>]:predict`) and gRPC servers so that clients
  send real requests over sockets. The messages of `RequestError` are this module's
  own wording: tests may check that such a request is refused (HTTP 400 / gRPC
  `INVALID_ARGUMENT`) and names the input at fault, not that TF Serving words it so.

Errors come back as TF Serving's do: HTTP 400 `{"error": message}` or gRPC
`INVALID_ARGUMENT` with the message.
"""
import base64
import http.server
import json
import re
import threading
from concurrent import futures

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc


class RequestError(ValueError):
    """A request refused by the emulated request handling, before the model runs
    (this module's wording, not TF Serving's)."""


def signature_inputs(fn):
    """`{name: tf.TensorSpec}` of a loaded signature function."""
    args, kwargs = fn.structured_input_signature
    return {**{s.name: s for s in args}, **kwargs}


# === REST JSON ===

def _decode_value(value, dtype):
    if dtype == tf.string:
        def leaf(v):
            if isinstance(v, list):
                return [leaf(x) for x in v]
            if isinstance(v, dict) and set(v) == {"b64"}:
                return base64.b64decode(v["b64"])
            if isinstance(v, str):
                return v.encode("utf-8")
            raise RequestError(f"Expected a string or {{'b64': ...}}, got {v!r}")
        return np.array(leaf(value), dtype=object)
    try:
        return np.array(value, dtype=dtype.as_numpy_dtype)
    except (TypeError, ValueError) as e:
        raise RequestError(f"Cannot parse {value!r} as {dtype.name}: {e}") from None


def json_to_tensors(body, fn):
    """A REST `:predict` body -> `({name: tf.Tensor}, row_format)`."""
    specs = signature_inputs(fn)
    if ("instances" in body) == ("inputs" in body):
        raise RequestError("JSON Value: must have exactly one of 'instances' or 'inputs'")
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise RequestError("'instances' must be a list")
        if len(specs) == 1 and not (instances and isinstance(instances[0], dict)
                                    and set(instances[0]) == set(specs)):
            (name,) = specs
            columns = {name: instances}
        else:
            for i, instance in enumerate(instances):
                if not isinstance(instance, dict) or set(instance) != set(specs):
                    got = sorted(instance) if isinstance(instance, dict) else instance
                    raise RequestError(
                        f"instances[{i}] must be an object with the inputs "
                        f"{sorted(specs)}; got {got}")
            columns = {name: [inst[name] for inst in instances] for name in specs}
        row_format = True
    else:
        inputs = body["inputs"]
        if len(specs) == 1 and not (isinstance(inputs, dict) and set(inputs) == set(specs)):
            (name,) = specs
            inputs = {name: inputs}
        if not isinstance(inputs, dict) or set(inputs) != set(specs):
            got = sorted(inputs) if isinstance(inputs, dict) else inputs
            raise RequestError(f"'inputs' must name {sorted(specs)}; got {got}")
        columns, row_format = inputs, False
    tensors = {}
    for name, spec in specs.items():
        # Any shape goes to the model: its signature checks the shape itself.
        tensors[name] = tf.constant(_decode_value(columns[name], spec.dtype),
                                    dtype=spec.dtype)
    return tensors, row_format


def _json_value(array):
    if array.dtype == object:
        def leaf(v):
            return [leaf(x) for x in v] if isinstance(v, list) else v.decode("utf-8")
        return leaf(array.tolist())
    return array.tolist()


def tensors_to_json(outputs, row_format):
    """Signature outputs -> the REST response body."""
    arrays = {k: np.asarray(v.numpy()) for k, v in outputs.items()}
    if not row_format:
        if len(arrays) == 1:
            return {"outputs": _json_value(next(iter(arrays.values())))}
        return {"outputs": {k: _json_value(a) for k, a in arrays.items()}}
    columns = {k: _json_value(a) for k, a in arrays.items()}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    rows = len(next(iter(columns.values())))
    return {"predictions": [{k: c[i] for k, c in columns.items()} for i in range(rows)]}


# === gRPC PredictRequest ===

def request_to_tensors(request, fn):
    """A `PredictRequest` -> `{name: tf.Tensor}` of the request's own dtypes and shapes.

    Only the set of input names is checked here (emulated); dtypes and shapes are the
    loaded signature's to check when it is called."""
    specs = signature_inputs(fn)
    missing, extra = set(specs) - set(request.inputs), set(request.inputs) - set(specs)
    if missing or extra:
        raise RequestError(
            f"input size does not match signature: {len(request.inputs)}!={len(specs)} "
            f"len({{{', '.join(sorted(request.inputs))}}}) != "
            f"len({{{', '.join(sorted(specs))}}}). Missing: {sorted(missing)}; "
            f"not in the signature: {sorted(extra)}")
    return {name: tf.constant(tf.make_ndarray(request.inputs[name])) for name in specs}


def outputs_to_response(outputs, request):
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
    return response


# === Servers ===

class Models:
    """Loaded SavedModels by name: `{name: tf.saved_model.load(path)}`."""

    def __init__(self, models):
        self.models = dict(models)

    def signature(self, model_name, signature_name):
        if model_name not in self.models:
            raise RequestError(f"Servable not found for request: Latest({model_name})")
        signatures = self.models[model_name].signatures
        name = signature_name or "serving_default"
        if name not in signatures:
            raise RequestError(f"Serving signature name: \"{name}\" not found in signature def")
        return signatures[name]


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, models):
        self.models = models

    def Predict(self, request, context):  # noqa: N802  (the gRPC method name)
        try:
            fn = self.models.signature(request.model_spec.name,
                                       request.model_spec.signature_name)
            return outputs_to_response(fn(**request_to_tensors(request, fn)), request)
        except (RequestError, tf.errors.InvalidArgumentError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, getattr(e, "message", str(e)))


def start_grpc_server(models):
    """A local gRPC PredictionService; returns `(server, port)`."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        _PredictionService(models), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


_PREDICT_PATH = re.compile(r"^/v1/models/([^/:]+)(?:/versions/\d+)?:predict$")


def start_rest_server(models):
    """A local HTTP server for `:predict`; returns `(server, port)` (serving in a thread)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            match = _PREDICT_PATH.match(self.path)
            try:
                if not match:
                    raise RequestError(f"Malformed request: POST {self.path}")
                try:
                    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                except ValueError as e:
                    raise RequestError(f"JSON Parse error: {e}") from None
                if not isinstance(body, dict):
                    raise RequestError("JSON Value: the body must be an object")
                fn = models.signature(match.group(1), body.get("signature_name"))
                inputs, row_format = json_to_tensors(body, fn)
                status, reply = 200, tensors_to_json(fn(**inputs), row_format)
            except (RequestError, tf.errors.InvalidArgumentError) as e:
                status, reply = 400, {"error": getattr(e, "message", str(e))}
            data = json.dumps(reply).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]
