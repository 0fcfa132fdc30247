r"""Serving speed of an exported classifier vs Hugging Face PyTorch, raw text in.

Usage:
  bazel run //bench/export:serving_benchmark -- --presets=gpt1_small,gpt1
  python bench/export/serving_benchmark.py --presets=gpt1_small --latency_requests=100

For each preset a random-weight `GPT1Classifier` (2 classes, single text, sequence
length 128, `GPT1Tokenizer`) is exported with `export_saved_model`, then two workers run
one after the other, each in its own process with 2 threads:

- `savedmodel`: TensorFlow + TF Text only, `tf.saved_model.load` and the
  `serving_default` signature (strings in; tokenizer, input transform, model, softmax and
  argmax in the graph). After loading it replays the export's TF Serving warm-up records
  (`assets.extra/tf_serving_warmup_requests`, every signature), as TF Serving does before
  a version takes traffic, then times the first served request (a text the records do
  not hold) against the steady-state p50 (target: within 2x);
- `savedmodel_cold`: the same load without the replay, then only the first request (the
  one that optimises the graph, seconds);
- `hf`: `transformers.OpenAIGPTForSequenceClassification` with the same configuration
  (random weights), `OpenAIGPTTokenizerFast` built from the shipped BPE files, GPT-1's
  `_start_ ... _classify_` layout, dynamic padding, `torch.inference_mode()`, softmax and
  argmax: what a PyTorch server would run per request.

Both see the same texts (tinyshakespeare lines joined into 8-60 word passages) and pad to
the longest text of a batch. Latency: one text per request, p50/p99 over
`--latency_requests` requests after warm-up. Throughput: batches of 32, texts per second
from the median batch time. The load average is recorded before each worker (the machine
may be shared). Prints a JSON line per worker, a Markdown table and, per preset, the first
request after load with and without the warm-up replay.
"""

import json
import os
import sys
import tempfile
import time

from absl import app
from absl import flags

from bench import common

_PRESETS = flags.DEFINE_list("presets", ["gpt1_small", "gpt1"], "Backbone presets.")
_SEQUENCE_LENGTH = flags.DEFINE_integer("sequence_length", 128, "Classifier sequence length.")
_LATENCY_REQUESTS = flags.DEFINE_integer("latency_requests", 200, "Batch-1 requests timed.")
_THROUGHPUT_BATCHES = flags.DEFINE_integer("throughput_batches", 12, "Batches of 32 timed.")
_THREADS = flags.DEFINE_integer("threads", 2, "Threads of each worker (TF intra/inter, torch).")
_NUM_TEXTS = flags.DEFINE_integer("num_texts", 512, "Distinct input texts.")
_WORKER = flags.DEFINE_enum("worker", None, ["savedmodel", "savedmodel_cold", "hf"],
                            "Internal: run one side.")
_SPEC = flags.DEFINE_string("spec", None, "Internal: the worker's JSON spec file.")

BATCH = 32


def make_texts(n):
    """`n` passages of 8-60 words from the shipped tinyshakespeare corpus."""
    from gpt1_keras.data.lm_dataset import default_corpus_path

    with open(default_corpus_path(), encoding="utf-8") as f:
        lines = [line.strip() for line in f if len(line.split()) >= 3]
    texts, i, k = [], 0, 0
    while len(texts) < n:
        want = 8 + (k * 37) % 53  # 8..60 words, deterministic
        words = []
        while len(words) < want:
            words += lines[i % len(lines)].split()
            i += 1
        texts.append(" ".join(words[:want]))
        k += 1
    return texts


def summarize(latencies, batch_times):
    import numpy as np

    latencies = np.asarray(latencies) * 1e3
    return {
        "latency_p50_ms": float(np.percentile(latencies, 50)),
        "latency_p99_ms": float(np.percentile(latencies, 99)),
        "throughput_texts_per_s": BATCH / float(np.median(batch_times)),
    }


def _batch(texts, i):
    """The `i`-th batch of 32 texts, cycling through `texts` (any `--num_texts`)."""
    return [texts[(i * BATCH + j) % len(texts)] for j in range(BATCH)]


def time_requests(run, texts, latency_requests, throughput_batches):
    """Times `run(list_of_texts)` at batch 1 and batch 32."""
    for i in range(5):  # warm-up: graph optimisation, allocator, caches
        run(texts[i:i + 1])
        run(_batch(texts, i))
    latencies = []
    for i in range(latency_requests):
        start = time.perf_counter()
        run([texts[i % len(texts)]])
        latencies.append(time.perf_counter() - start)
    batch_times = []
    for i in range(throughput_batches):
        batch = _batch(texts, i)
        start = time.perf_counter()
        run(batch)
        batch_times.append(time.perf_counter() - start)
    return summarize(latencies, batch_times)


def replay_warmup_requests(tf, model, path):
    """Runs the export's TF Serving warm-up records, as TF Serving does at load."""
    from tensorflow_serving.apis import prediction_log_pb2

    records = os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
    for record in tf.data.TFRecordDataset(records):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        model.signatures[request.model_spec.signature_name](
            **{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})


def savedmodel_worker(spec, replay_warmup=True):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (NormalizeUTF8)

    tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(spec["threads"])
    start = time.perf_counter()
    model = tf.saved_model.load(spec["path"])
    serve = model.signatures["serving_default"]
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    if replay_warmup:
        replay_warmup_requests(tf, model, spec["path"])
    warmup_s = time.perf_counter() - start

    def run(batch):
        out = serve(text=tf.constant(batch))
        return out["probabilities"].numpy(), out["label"].numpy()

    start = time.perf_counter()
    run(spec["texts"][:1])
    first_s = time.perf_counter() - start
    timings = {"load_s": load_s, "first_request_s": first_s, "tensorflow": tf.__version__}
    if not replay_warmup:
        return timings
    result = time_requests(run, spec["texts"], spec["latency_requests"],
                           spec["throughput_batches"])
    return {**result, **timings, "warmup_replay_s": warmup_s,
            "first_request_over_p50": first_s * 1e3 / result["latency_p50_ms"]}


def hf_worker(spec):
    import numpy as np
    import torch
    import transformers

    torch.set_num_threads(spec["threads"])
    torch.set_num_interop_threads(spec["threads"])
    preset = spec["preset_args"]
    tokenizer = transformers.OpenAIGPTTokenizerFast(vocab_file=spec["vocab_file"],
                                                    merges_file=spec["merges_file"])
    config = transformers.OpenAIGPTConfig(
        vocab_size=preset["vocabulary_size"], n_positions=preset["max_sequence_length"],
        n_embd=preset["hidden_dim"], n_layer=preset["num_layers"], n_head=preset["num_heads"],
        num_labels=2, pad_token_id=0)
    torch.manual_seed(0)
    model = transformers.OpenAIGPTForSequenceClassification(config).eval()
    start_id, classify_id = spec["start_token_id"], spec["classify_token_id"]
    room = spec["sequence_length"] - 2

    def run(batch):
        # GPT-1's classification layout, as HF's fine-tuning examples build it.
        pieces = tokenizer(batch, add_special_tokens=False, truncation=True,
                           max_length=room)["input_ids"]
        rows = [[start_id] + p + [classify_id] for p in pieces]
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), "int64")
        mask = np.zeros((len(rows), width), "int64")
        for i, r in enumerate(rows):
            ids[i, :len(r)], mask[i, :len(r)] = r, 1
        with torch.inference_mode():
            logits = model(input_ids=torch.from_numpy(ids),
                           attention_mask=torch.from_numpy(mask)).logits
            probabilities = torch.softmax(logits, dim=-1)
        return probabilities.numpy(), probabilities.argmax(-1).numpy()

    result = time_requests(run, spec["texts"], spec["latency_requests"],
                           spec["throughput_batches"])
    return {**result, "torch": torch.__version__, "transformers": transformers.__version__}


def run_worker(kind, spec, tmpdir):
    spec_file = os.path.join(tmpdir, f"{kind}_spec.json")
    with open(spec_file, "w") as f:
        json.dump(spec, f)
    load = [float(x) for x in common.load_average()]
    result = common.run_worker(
        [sys.executable, os.path.abspath(__file__), f"--worker={kind}", f"--spec={spec_file}"],
        kind)
    if "error" in result:
        raise RuntimeError(f"The {kind} worker failed ({result['error']}; its output is above).")
    return {"side": kind, "load_average_before": load, **result}


def benchmark(preset, texts, tmpdir):
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras

    from gpt1_keras.export import export_saved_model
    from gpt1_keras.models import GPT1Backbone
    from gpt1_keras.models import GPT1Classifier
    from gpt1_keras.models.gpt1_presets import get_preset
    from gpt1_keras.preprocessing import GPT1ClassifierPreprocessor
    from gpt1_keras.tokenizers import GPT1Tokenizer
    from gpt1_keras.tokenizers import gpt1_tokenizer

    keras.utils.set_random_seed(0)
    tokenizer = GPT1Tokenizer()
    model = GPT1Classifier(
        GPT1Backbone.from_architecture(preset), num_classes=2,
        preprocessor=GPT1ClassifierPreprocessor(tokenizer, "classification",
                                                _SEQUENCE_LENGTH.value))
    start = time.perf_counter()
    path = export_saved_model(model, os.path.join(tmpdir, preset))
    export_s = time.perf_counter() - start
    del model
    shared = {"texts": texts, "threads": _THREADS.value,
              "latency_requests": _LATENCY_REQUESTS.value,
              "throughput_batches": _THROUGHPUT_BATCHES.value,
              "sequence_length": _SEQUENCE_LENGTH.value}
    saved = run_worker("savedmodel", {**shared, "path": path}, tmpdir)
    saved["export_s"] = export_s
    saved["cold"] = run_worker("savedmodel_cold", {**shared, "path": path}, tmpdir)
    hf = run_worker("hf", {
        **shared, "preset_args": get_preset(preset),
        "vocab_file": gpt1_tokenizer.DEFAULT_VOCABULARY,
        "merges_file": gpt1_tokenizer.DEFAULT_MERGES,
        "start_token_id": tokenizer.start_token_id,
        "classify_token_id": tokenizer.classify_token_id}, tmpdir)
    return saved, hf


def main(argv):
    del argv
    if _WORKER.value:
        with open(_SPEC.value) as f:
            spec = json.load(f)
        if _WORKER.value == "hf":
            common.print_result(hf_worker(spec))
        else:
            common.print_result(savedmodel_worker(
                spec, replay_warmup=_WORKER.value == "savedmodel"))
        return
    texts = make_texts(_NUM_TEXTS.value)
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        for preset in _PRESETS.value:
            saved, hf = benchmark(preset, texts, tmpdir)
            for side in (saved, hf):
                print(json.dumps({"preset": preset, **side}), flush=True)
            rows.append((preset, saved, hf))
    print()
    print("| preset | side | latency p50 (ms) | latency p99 (ms) | throughput, batch 32 (texts/s) "
          "| load avg before |")
    print("| --- | --- | --- | --- | --- | --- |")
    for preset, saved, hf in rows:
        for name, side in (("SavedModel (TF, in-graph tokenizer)", saved),
                           ("HF PyTorch + OpenAIGPTTokenizerFast", hf)):
            print(f"| `{preset}` | {name} | {side['latency_p50_ms']:.1f} | "
                  f"{side['latency_p99_ms']:.1f} | {side['throughput_texts_per_s']:.1f} | "
                  f"{side['load_average_before'][0]:.2f} |")
        print(f"| `{preset}` | ratio SavedModel / HF | "
              f"{saved['latency_p50_ms'] / hf['latency_p50_ms']:.2f} | "
              f"{saved['latency_p99_ms'] / hf['latency_p99_ms']:.2f} | "
              f"{saved['throughput_texts_per_s'] / hf['throughput_texts_per_s']:.2f} | |")
    print()
    print("| preset | first request, warm-up replayed (ms) | steady p50 (ms) | first / p50 "
          "(target <= 2) | replay (s) | first request, no replay (ms) | load avg before |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for preset, saved, _ in rows:
        cold = saved["cold"]
        print(f"| `{preset}` | {saved['first_request_s'] * 1e3:.1f} | "
              f"{saved['latency_p50_ms']:.1f} | {saved['first_request_over_p50']:.2f} | "
              f"{saved['warmup_replay_s']:.1f} | {cold['first_request_s'] * 1e3:.0f} | "
              f"{saved['load_average_before'][0]:.2f} / {cold['load_average_before'][0]:.2f} |")


if __name__ == "__main__":
    app.run(main)
