r"""Sizes the `mini` pretraining recipe: training tokens/s of candidate GPT-1 shapes.

Each candidate (layers x width, heads, vocabulary, sequence length, batch) is the
pretraining step of the recipe (`GPT1CausalLM` with the chunked LM loss, GPT-1's
Adam, XLA on the TensorFlow backend) timed in a fresh process on random token
batches: the median of `--steps` `train_on_batch` calls after `--warmup`. Printed per
candidate: parameters, tokens/s, MFU against TensorFlow's fp32 matmul peak measured in
the same run, the tokens one hour gives, and tokens per parameter in an hour. The LSTM
candidates (`lstm:<units>`) are the equal-vocabulary baseline.

    PYTHONPATH=. .venv/bin/python bench/pretrain/mini_sizing.py \
        --candidates=6x256,4x256,4x192,6x192,8x256,lstm:640 --vocabulary_sizes=8192
"""

import itertools
import json
import statistics
import sys
import time

from absl import app
from absl import flags

from bench import common

_CANDIDATES = flags.DEFINE_list(
    "candidates", ["6x256", "4x256", "4x192", "6x192", "8x192", "lstm:640"],
    "LAYERSxWIDTH transformers (heads = width / 64, MLP 4 x width), or lstm:UNITS "
    "(embedding width 256).")
_VOCABULARY_SIZES = flags.DEFINE_list("vocabulary_sizes", ["8192"],
                                      "BPE sizes (3 special tokens are added).")
_SEQUENCE_LENGTHS = flags.DEFINE_list("sequence_lengths", ["128"], "Tokens per sequence.")
_BATCH_TOKENS = flags.DEFINE_integer("batch_tokens", 4096, "Tokens per update.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps (compilation).")
_STEPS = flags.DEFINE_integer("steps", 8, "Timed steps (median).")
_LSTM_WIDTH = flags.DEFINE_integer("lstm_width", 256, "The LSTM's embedding width.")
_WORKER = flags.DEFINE_string("worker", None, "Internal: one candidate as JSON.")


def backbone_arguments(candidate, vocabulary_size, sequence_length):
    """The backbone arguments of one candidate name."""
    if candidate.startswith("lstm:"):
        return {"vocabulary_size": vocabulary_size, "hidden_dim": _LSTM_WIDTH.value,
                "lstm_units": int(candidate.split(":")[1]),
                "max_sequence_length": sequence_length, "dropout": 0.1}
    layers, width = (int(v) for v in candidate.split("x"))
    return {"vocabulary_size": vocabulary_size, "num_layers": layers,
            "num_heads": max(1, width // 64), "hidden_dim": width,
            "intermediate_dim": 4 * width, "max_sequence_length": sequence_length,
            "dropout": 0.1, "layer_norm_epsilon": 1e-5}


def _worker(spec):
    import keras
    import numpy as np

    from gpt1_keras.models import GPT1CausalLM
    from gpt1_keras.models.architectures import ARCHITECTURES
    from gpt1_keras.training.optimizers import build_optimizer

    arguments, batch, length = spec["arguments"], spec["batch"], spec["length"]
    architecture = "lstm" if "lstm_units" in arguments else "transformer"
    keras.utils.set_random_seed(0)
    lm = GPT1CausalLM(ARCHITECTURES[architecture](**arguments))
    lm.compile(optimizer=build_optimizer(6e-4, weight_decay=0.01, clip_norm=1.0),
               loss="auto", weighted_metrics=None, loss_chunk_size=1024, jit_compile=True)
    rng = np.random.default_rng(0)
    vocabulary = arguments["vocabulary_size"]
    batches = []
    for _ in range(3):
        ids = rng.integers(0, vocabulary, (batch, length + 1)).astype("int32")
        batches.append(({"token_ids": ids[:, :-1], "padding_mask": np.ones((batch, length),
                                                                           "int32")},
                        ids[:, 1:], np.ones((batch, length), "float32")))
    times = []
    for step in range(spec["warmup"] + spec["steps"]):
        start = time.perf_counter()
        float(lm.train_on_batch(*batches[step % 3]))
        if step >= spec["warmup"]:
            times.append(time.perf_counter() - start)
    common.print_result({"step_s": statistics.median(times),
                         "parameters": int(lm.backbone.count_params())})


def main(argv):
    del argv
    if _WORKER.value:
        _worker(json.loads(_WORKER.value))
        return
    peak = common.tf_matmul_gflops()
    print(f"fp32 matmul peak (TensorFlow, 2 threads): {peak:.0f} GFLOP/s; "
          f"load average {common.load_average()}", flush=True)
    print("| candidate | vocabulary | T | params | tokens/s | MFU | tokens/hour | "
          "tokens/param/hour |\n| --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for candidate, vocab, length in itertools.product(
            _CANDIDATES.value, _VOCABULARY_SIZES.value, _SEQUENCE_LENGTHS.value):
        vocabulary, length = int(vocab) + 3, int(length)
        arguments = backbone_arguments(candidate, vocabulary, length)
        spec = {"arguments": arguments, "batch": max(1, _BATCH_TOKENS.value // length),
                "length": length, "warmup": _WARMUP.value, "steps": _STEPS.value}
        result = common.run_worker(
            [sys.executable, __file__, f"--worker={json.dumps(spec)}"], candidate,
            backend="tensorflow")
        if "error" in result:
            print(f"| {candidate} | {vocab} | {length} | failed: {result['error']} |")
            continue
        tokens_per_s = spec["batch"] * length / result["step_s"]
        flops, _ = common.model_flops_per_token(arguments, length)
        params = result["parameters"]
        print(f"| {candidate} | {vocab} | {length} | {params / 1e6:.2f}M | {tokens_per_s:.0f} | "
              f"{flops * tokens_per_s / 1e9 / peak:.0%} | {tokens_per_s * 3600 / 1e6:.2f}M | "
              f"{tokens_per_s * 3600 / params:.2f} |", flush=True)


if __name__ == "__main__":
    app.run(main)
