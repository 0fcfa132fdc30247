"""Tokenizer throughput: GPT1Tokenizer in a batched tf.data map vs HF Rust vs keras-hub.

All three tokenize the same lines in the same process; each is timed over the whole text,
several repeats, after one warm-up pass; the table reports medians.

- `gpt1_keras` (both modes): `tf.data.Dataset.from_tensor_slices(lines).batch(B)
  .map(tokenizer, num_parallel_calls=AUTOTUNE)`, iterated to the end.
- `hf_rust`: `OpenAIGPTTokenizerFast(...)(batch)` (Rust `encode_batch`, parallel) over the
  same batches, built from the same two vocabulary files.
- `keras_hub`: `keras_hub.tokenizers.BytePairTokenizer` (GPT-2 byte-level BPE written with
  TF ops) in the same tf.data map. It cannot load GPT-1's `</w>` files, so it gets a
  byte-level vocabulary learned on this text with the same number of merges (40,000) by HF
  `tokenizers`: a like-for-like cost of an in-graph BPE tokenizer, not equal ids.

Run: `python bench/tokenizer/tokenizer_benchmark.py` (or
`./bazelw run //bench/tokenizer:tokenizer_benchmark -- --repeats=5`).
"""

import os
import statistics
import tempfile
import time

from absl import app
from absl import flags

from bench import common

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from gpt1_keras.tokenizers import GPT1Tokenizer  # noqa: E402
from gpt1_keras.tokenizers import gpt1_tokenizer  # noqa: E402
from tests import shared_data  # noqa: E402

_TEXT = flags.DEFINE_string(
    "text", None, "Text file to tokenize (default: tinyshakespeare shipped in shared/)."
)
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repeats per tokenizer.")
_BATCH = flags.DEFINE_integer("batch_size", 1024, "Lines per batch.")
_COPIES = flags.DEFINE_integer("copies", 2, "Concatenate the text this many times.")
_SKIP_KERAS_HUB = flags.DEFINE_bool("skip_keras_hub", False, "Skip keras-hub.")
_SLOW_REPEATS = flags.DEFINE_integer(
    "slow_repeats", 1,
    "Timed passes of HF's Python OpenAIGPTTokenizer (ftfy + spaCy, the same work as the "
    "'openai' mode; slow, so no warm-up pass). 0 skips it.",
)


def _default_text():
    return shared_data.path("tinyshakespeare.txt")


def _time(fn, repeats, warmup=True):
    if warmup:
        fn()  # Warm-up: tracing, caches, thread pools.
    times, tokens = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        tokens = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), tokens


def _tf_data_runner(layer, lines, batch_size):
    """Two runners over the same pipeline: a new iterator per pass, and a steady stream.

    A new iterator instantiates the map function (and its regexes, tables, loops) again:
    what a short dataset pays once per epoch. The stream is one iterator over the text
    repeated, each call taking one pass of batches: what a long pipeline runs at.
    """
    ds = tf.data.Dataset.from_tensor_slices(lines).batch(batch_size)
    ds = ds.map(layer, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(lambda ids: tf.size(ids.flat_values, out_type=tf.int64))
    num_batches = -(-len(lines) // batch_size)

    def run():
        return int(sum(int(n) for n in ds.prefetch(tf.data.AUTOTUNE)))

    stream = iter(ds.repeat().prefetch(tf.data.AUTOTUNE))

    def run_stream():
        return int(sum(int(next(stream)) for _ in range(num_batches)))

    return run, run_stream


def _hf_runner(lines, batch_size):
    from transformers import OpenAIGPTTokenizerFast

    hf = OpenAIGPTTokenizerFast(
        vocab_file=gpt1_tokenizer.DEFAULT_VOCABULARY,
        merges_file=gpt1_tokenizer.DEFAULT_MERGES,
    )
    batches = [lines[i : i + batch_size] for i in range(0, len(lines), batch_size)]

    def run():
        total = 0
        for batch in batches:
            total += sum(len(ids) for ids in hf(batch)["input_ids"])
        return total

    return run


def _hf_slow_runner(lines):
    """HF's Python tokenizer: with ftfy and spaCy importable it runs the original
    encoder's steps (fix_text, text_standardize, spaCy, BPE), one text at a time."""
    from transformers import OpenAIGPTTokenizer

    hf = OpenAIGPTTokenizer(
        vocab_file=gpt1_tokenizer.DEFAULT_VOCABULARY,
        merges_file=gpt1_tokenizer.DEFAULT_MERGES,
    )
    if getattr(hf, "nlp", None) is None or hf.fix_text is None:
        raise RuntimeError("ftfy and spaCy must be importable for the same-work peer.")

    def run():
        return sum(len(hf.encode(line)) for line in lines)

    return run


def _keras_hub_runner(lines, batch_size, tmp):
    import json

    import keras_hub
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(lines, vocab_size=40256 + 40000, show_progress=False)
    bpe.save_model(tmp)
    with open(os.path.join(tmp, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(tmp, "merges.txt"), encoding="utf-8") as f:
        merges = [m for m in f.read().split("\n")[1:] if m]
    layer = keras_hub.tokenizers.BytePairTokenizer(vocabulary=vocab, merges=merges)
    return _tf_data_runner(layer, lines, batch_size), len(merges)


def main(argv):
    del argv
    path = _TEXT.value or _default_text()
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f.read().split("\n")] * _COPIES.value
    megabytes = sum(len(line.encode("utf-8")) + 1 for line in lines) / 1e6
    batch_size = _BATCH.value
    print(
        f"text: {path} x{_COPIES.value}: {len(lines)} lines, {megabytes:.2f} MB; "
        f"batch {batch_size}; median of {_REPEATS.value} repeats; "
        f"{os.cpu_count()} CPU cores; TF {tf.__version__}"
    )
    # name -> (one pass with a new tf.data iterator, one pass of a steady stream); the
    # Python peers have no iterator to start: both are the same pass.
    runners = {
        "gpt1_keras openai (tf.data)": _tf_data_runner(
            GPT1Tokenizer(normalization="openai"), lines, batch_size
        ),
        "gpt1_keras bert (tf.data)": _tf_data_runner(
            GPT1Tokenizer(normalization="bert"), lines, batch_size
        ),
        "HF OpenAIGPTTokenizerFast (Rust, batch)": (_hf_runner(lines, batch_size), None),
    }
    print(f"load average before: {' '.join(common.load_average())}")
    with tempfile.TemporaryDirectory() as tmp:
        if not _SKIP_KERAS_HUB.value:
            runner, num_merges = _keras_hub_runner(lines, batch_size, tmp)
            runners[f"keras-hub BytePairTokenizer ({num_merges} merges, tf.data)"] = runner
        results = {}
        for name, (run, run_stream) in runners.items():
            fresh = _time(run, _REPEATS.value)
            results[name] = (fresh, _time(run_stream, _REPEATS.value) if run_stream else fresh)
    if _SLOW_REPEATS.value:
        slow = _time(_hf_slow_runner(lines), _SLOW_REPEATS.value, warmup=False)
        results["HF OpenAIGPTTokenizer (Python, ftfy + spaCy)"] = (slow, slow)
    print(f"load average after: {' '.join(common.load_average())}")
    hf_seconds = results["HF OpenAIGPTTokenizerFast (Rust, batch)"][0][0]
    print(
        "| tokenizer | s / pass, stream | MB/s | tokens/s | vs HF Rust | "
        "s / pass, new iterator | vs HF Rust |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, ((fresh_s, _), (stream_s, tokens)) in results.items():
        print(
            f"| {name} | {stream_s:.3f} | {megabytes / stream_s:.2f} | "
            f"{tokens / stream_s:,.0f} | {hf_seconds / stream_s:.2f}x | "
            f"{fresh_s:.3f} | {hf_seconds / fresh_s:.2f}x |"
        )


if __name__ == "__main__":
    app.run(main)
