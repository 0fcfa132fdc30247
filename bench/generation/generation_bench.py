"""Greedy generation speed: GPT-1 with the key/value cache, without it, and keras-hub GPT-2.

Every row of the table generates `--new_tokens` tokens after a `--prompt_length`-token prompt
(random ids, the same for every method), greedily, batch 1 and batch 8:

- `cache`: `GPT1CausalLM.generate(prompts, new_tokens)`: prefill the prompt once, then one
  position per step against the key/value cache.
- `no_cache`: `GPT1CausalLM.generate(..., use_cache=False)`: the same compiled loop, but every
  step runs the backbone over the whole `(batch, prompt + new)` buffer (causal attention
  makes the not-yet-generated slots irrelevant) and projects the one position it needs.
- `keras_hub`: `keras_hub.models.GPT2CausalLM` on a `GPT2Backbone` with the same layers,
  width, heads, MLP width, context and vocabulary (random weights, no preset download),
  `compile(sampler="greedy")`, `generate({"token_ids", "padding_mask"}, stop_token_ids=None)`
  on a right-padded `(batch, prompt + new)` buffer: keras-hub's own cached decoding loop.

Backends: `tensorflow` (tf.function graph: Keras' and keras-hub's default on a CPU-only
machine), `tensorflow_xla` (the same with `jit_compile=True` for both libraries) and `jax`
(jit, both libraries). Every (backend, size, method) runs in its own subprocess; within it,
each batch size is generated once to compile, then timed `--repeats` times
(`--slow_repeats` for `no_cache`, which runs only at batch 1 for the full `gpt1`);
tokens/s = batch * new_tokens / median(seconds per generate call, prefill included).
The load average is read before and after each worker (the machine may be shared).

Run (from the repository root):

    PYTHONPATH=. .venv/bin/python bench/generation/generation_bench.py \
        --sizes=gpt1_small,gpt1 --backends=tensorflow,tensorflow_xla,jax

or `./bazelw run //bench/generation:generation_bench -- --sizes=gpt1_small`.
Results go to `--output` (default: RESULTS.md next to this file; text under "## Notes" kept).
"""

import datetime
import json
import os
import statistics
import sys
import time

from absl import app
from absl import flags

from bench import common

_SIZES = flags.DEFINE_list("sizes", ["gpt1_small", "gpt1"], "GPT-1 presets to measure.")
_BACKENDS = flags.DEFINE_list(
    "backends", ["tensorflow", "tensorflow_xla", "jax"], "Any of tensorflow, tensorflow_xla, jax."
)
_METHODS = flags.DEFINE_list("methods", ["cache", "no_cache", "keras_hub"], "Methods to time.")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["1", "8"], "Batch sizes.")
_PROMPT_LENGTH = flags.DEFINE_integer("prompt_length", 32, "Prompt tokens per row.")
_NEW_TOKENS = flags.DEFINE_integer("new_tokens", 64, "Tokens generated per row.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed generate calls per batch size (median).")
_SLOW_REPEATS = flags.DEFINE_integer(
    "slow_repeats", 2, "Timed calls per batch size for `no_cache` (slow steps)."
)
_FULL_NO_CACHE_BATCH_SIZES = flags.DEFINE_list(
    "full_no_cache_batch_sizes", ["1"], "Batch sizes of `no_cache` at `gpt1` (minutes per call)."
)
_OUTPUT = flags.DEFINE_string(
    "output",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"),
    "Markdown file to write ('' to skip).",
)
_WORKER = flags.DEFINE_string("worker", None, "Internal: backend:size:method, prints JSON.")

_NOTES_MARKER = "## Notes"
_PACKAGES = ("tensorflow", "keras", "keras-hub", "jax")  # The machine line's versions.


def _load():
    return " ".join(common.load_average())


def _prompts(batch, length, vocabulary_size):
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.integers(0, vocabulary_size, size=(batch, length)).astype("int32")


def _gpt1_generate(size, method, xla):
    from gpt1_keras.models import GPT1CausalLM

    lm = GPT1CausalLM.from_architecture(size)
    lm.jit_compile = xla
    use_cache = method == "cache"

    def generate(prompts):
        return lm.generate(prompts, _NEW_TOKENS.value, use_cache=use_cache)

    return generate


def _keras_hub_generate(size, xla):
    import keras_hub
    import numpy as np

    from gpt1_keras.models.gpt1_presets import get_preset

    p = get_preset(size)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=p["vocabulary_size"],
        num_layers=p["num_layers"],
        num_heads=p["num_heads"],
        hidden_dim=p["hidden_dim"],
        intermediate_dim=p["intermediate_dim"],
        dropout=p["dropout"],
        max_sequence_length=p["max_sequence_length"],
    )
    lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    lm.compile(sampler="greedy", jit_compile=xla)

    def generate(prompts):
        batch, length = prompts.shape
        total = length + _NEW_TOKENS.value
        token_ids = np.zeros((batch, total), "int32")
        token_ids[:, :length] = prompts
        padding_mask = np.zeros((batch, total), bool)
        padding_mask[:, :length] = True
        out = lm.generate({"token_ids": token_ids, "padding_mask": padding_mask},
                          stop_token_ids=None)
        return np.asarray(out["token_ids"])

    return generate


def _run_worker(spec):
    import keras
    import numpy as np

    backend, size, method = spec.split(":")
    keras.utils.set_random_seed(0)
    xla = backend == "tensorflow_xla" or backend == "jax"
    if method == "keras_hub":
        generate = _keras_hub_generate(size, xla)
    else:
        generate = _gpt1_generate(size, method, xla)
    from gpt1_keras.models.gpt1_presets import get_preset

    vocabulary_size = get_preset(size)["vocabulary_size"]
    repeats = _SLOW_REPEATS.value if method == "no_cache" else _REPEATS.value
    batch_sizes = _BATCH_SIZES.value
    if method == "no_cache" and size == "gpt1":
        batch_sizes = _FULL_NO_CACHE_BATCH_SIZES.value
    result = {"load_before": _load(), "batches": {}}
    for batch in (int(b) for b in batch_sizes):
        prompts = _prompts(batch, _PROMPT_LENGTH.value, vocabulary_size)
        start = time.perf_counter()
        out = np.asarray(generate(prompts))  # compiles
        first_call = time.perf_counter() - start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            np.asarray(generate(prompts))
            times.append(time.perf_counter() - start)
        assert out.shape == (batch, _PROMPT_LENGTH.value + _NEW_TOKENS.value), out.shape
        result["batches"][str(batch)] = {
            "times": times,
            "first_call_s": first_call,
            "tokens_per_s": batch * _NEW_TOKENS.value / statistics.median(times),
            "first_row": np.asarray(out[0, _PROMPT_LENGTH.value:]).tolist(),
        }
    result["load_after"] = _load()
    common.print_result(result)


def _spawn(spec):
    backend = spec.split(":")[0]
    argv = [sys.executable, os.path.abspath(__file__), f"--worker={spec}"] + [
        f"--{flag.name}={flag.value if not isinstance(flag.value, list) else ','.join(flag.value)}"
        for flag in (_BATCH_SIZES, _PROMPT_LENGTH, _NEW_TOKENS, _REPEATS, _SLOW_REPEATS,
                     _FULL_NO_CACHE_BATCH_SIZES)
    ]
    return common.run_worker(
        argv, spec, "tensorflow" if backend.startswith("tensorflow") else backend
    )


def _table(results):
    lines = [
        "| size | backend | batch | cache tok/s | no cache tok/s | keras-hub GPT-2 tok/s "
        "| cache / no cache | cache / keras-hub | same tokens as no cache | load avg (cache run) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for size in _SIZES.value:
        for backend in _BACKENDS.value:
            for batch in _BATCH_SIZES.value:
                row = {}
                for method in _METHODS.value:
                    r = results.get((backend, size, method), {})
                    row[method] = r.get("batches", {}).get(batch)
                rate = {m: (row[m] or {}).get("tokens_per_s") for m in row}
                fmt = lambda v: "-" if v is None else f"{v:.1f}"
                ratio = lambda a, b: "-" if not (a and b) else f"{a / b:.1f}x"
                same = "-"
                if row.get("cache") and row.get("no_cache"):
                    same = "yes" if row["cache"]["first_row"] == row["no_cache"]["first_row"] \
                        else "NO"
                cache_run = results.get((backend, size, "cache"), {})
                load = f"{cache_run.get('load_before', '?')} / {cache_run.get('load_after', '?')}"
                lines.append(
                    f"| {size} | {backend} | {batch} | {fmt(rate.get('cache'))} "
                    f"| {fmt(rate.get('no_cache'))} | {fmt(rate.get('keras_hub'))} "
                    f"| {ratio(rate.get('cache'), rate.get('no_cache'))} "
                    f"| {ratio(rate.get('cache'), rate.get('keras_hub'))} | {same} | {load} |"
                )
    return lines


def _write(results, started, load_start):
    notes = common.notes_section(_OUTPUT.value, _NOTES_MARKER)
    raw = {f"{b}:{s}:{m}": r for (b, s, m), r in results.items()}
    lines = [
        "# Generation speed: KV cache vs recomputation vs keras-hub GPT-2",
        "",
        f"Greedy, {_PROMPT_LENGTH.value}-token prompt + {_NEW_TOKENS.value} new tokens, "
        f"random weights; tokens/s = new tokens / median seconds per `generate` call "
        f"({_REPEATS.value} timed calls after a compiling one; {_SLOW_REPEATS.value} for "
        f"`no_cache`, run at `gpt1` only for batch {','.join(_FULL_NO_CACHE_BATCH_SIZES.value)}). "
        "See the docstring of `generation_bench.py` for the methods.",
        "",
        f"Machine: {common.machine_info(_PACKAGES)}. Started {started}, "
        f"load average (1/5/15 min) at start {load_start}, at end {_load()}.",
        "",
        "Command: `PYTHONPATH=. .venv/bin/python bench/generation/generation_bench.py "
        f"--sizes={','.join(_SIZES.value)} --backends={','.join(_BACKENDS.value)}`",
        "",
    ]
    lines += _table(results)
    lines += ["", "<details><summary>Raw results (seconds per call, first-call seconds, "
              "wall seconds per worker)</summary>", "", "```json",
              json.dumps(raw, indent=1),
              "```", "", "</details>", ""]
    with open(_OUTPUT.value, "w") as f:
        f.write("\n".join(lines) + ("\n" + notes if notes else ""))


def main(argv):
    del argv
    if _WORKER.value:
        _run_worker(_WORKER.value)
        return
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    results = {}
    load_start = _load()
    for size in _SIZES.value:
        for backend in _BACKENDS.value:
            for method in _METHODS.value:
                spec = f"{backend}:{size}:{method}"
                result = _spawn(spec)
                results[(backend, size, method)] = result
                rates = {b: round(r["tokens_per_s"], 1)
                         for b, r in result.get("batches", {}).items()}
                print(f"{spec}: tokens/s by batch {rates}, load {result.get('load_before')} -> "
                      f"{result.get('load_after')}, {result.get('wall_s', 0):.0f} s", flush=True)
    for line in _table(results):
        print(line)
    if _OUTPUT.value:
        _write(results, started, load_start)


if __name__ == "__main__":
    app.run(main)
