"""Greedy generation speed: GPT-1 against keras-hub GPT-2 of the same size, and the served loop.

Every row generates `--new_tokens` tokens after a `--prompt_length`-token prompt (random ids,
the same for every method), greedily, at batch 1 and 8. The peer is `keras_hub`, which
runs in every row whatever `--methods` says; every other method's tokens/s is shown with
its ratio to it. Methods (`--methods`, default `after,served_after`):

- `before`: `GPT1CausalLM.generate(prompts, new_tokens)` of the code before issue #12 (our
  own loop, key/value cache), imported from `--before_tree`, a `git worktree` of that commit
  (`git worktree add /tmp/gen_before <commit>`). Not run by default.
- `after`: today's keras-hub interface, `lm.compile(sampler="greedy")` then
  `lm.generate({"token_ids", "padding_mask"})` on a right-padded `(batch, prompt + new)`
  buffer: keras-hub's `generate` driving our cached loop (`GPT1CausalLM.generate_step`).
- `keras_hub`: `keras_hub.models.GPT2CausalLM` on a `GPT2Backbone` with the same layers,
  width, heads, MLP width, context and vocabulary (random weights, no preset download),
  `compile(sampler="greedy")`, `generate(...)` on the same buffer: keras-hub's own loop.
- `served_before` / `served_after`: the SavedModel `generate` signature
  (`CausalLMServingModule`, saved with `tf.saved_model.save` and loaded back), on raw-string
  prompts of `--prompt_length` single-token words, `temperature=0`: before issue #12 a
  TF-only loop recomputing the whole window every step (no cache), after it the model's
  cached loop (`GPT1CausalLM.decode`). TensorFlow only (backend `tensorflow`);
  `served_after` is also shown as a ratio to Keras `generate` (`after`).

Backends: `tensorflow` (tf.function graph: Keras' and keras-hub's default on a CPU-only
machine), `tensorflow_xla` (`jit_compile=True` for both libraries) and `jax` (jit). Every
(backend, size, method) runs in its own subprocess; within it, each batch size is generated
once to compile, then timed `--repeats` times (`--slow_repeats` for `served_before`, which
runs only at `--slow_batch_sizes` for the full `gpt1`); tokens/s = batch * new_tokens /
median(seconds per call, prefill included). The load average is read before and after each
worker (the machine may be shared).

Decode roofline: a generation step at batch 1 or 8 does little arithmetic per weight, so
its floor is reading every weight once (one read for the prefill, one per new token). A
`read` worker per size (before and after that size's workers; the faster is kept) counts
the weight bytes each model must read per step (every weight but the position table, of
which a step reads one row; the tied token embedding is read whole by the LM head) and
times a compiled `jax.jit(jnp.sum)` over a float32 array of exactly that many bytes (the
best median of 10 calls over 3 rounds): the fastest this machine read that many bytes in
the run. From it, per row: the roof, `batch * new / ((new + 1) * bytes / rate)` tokens/s
(cache reads and arithmetic ignored, so an upper bound); each method's share of its roof;
and our roof over the peer's measured tokens/s, the most our model could be ahead of it
at that batch without reading fewer bytes per step.

Run (from the repository root):

    PYTHONPATH=. .venv/bin/python bench/generation/generation_bench.py \
        --sizes=gpt1_small,gpt1 --backends=tensorflow,jax

or `./bazelw run //bench/generation:generation_bench`. Against the code before issue #12:
`git worktree add /tmp/gen_before 3f4b47c`, then add
`--methods=before,after,served_before,served_after --before_tree=/tmp/gen_before`.
Results go to `--output` (default: RESULTS.md next to this file; text under "## Notes" kept).
"""

import datetime
import json
import math
import os
import statistics
import sys
import time

from absl import app
from absl import flags

from bench import common

_SIZES = flags.DEFINE_list("sizes", ["gpt1_small", "gpt1"], "GPT-1 presets to measure.")
_BACKENDS = flags.DEFINE_list(
    "backends", ["tensorflow", "jax"], "Any of tensorflow, tensorflow_xla, jax."
)
_METHODS = flags.DEFINE_list(
    "methods", ["after", "served_after"],
    "Methods to time besides the peer keras_hub (always run): after, served_after, "
    "before, served_before.")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["1", "8"], "Batch sizes.")
_PROMPT_LENGTH = flags.DEFINE_integer("prompt_length", 32, "Prompt tokens per row.")
_NEW_TOKENS = flags.DEFINE_integer("new_tokens", 64, "Tokens generated per row.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed generate calls per batch size (median).")
_SLOW_REPEATS = flags.DEFINE_integer(
    "slow_repeats", 2, "Timed calls per batch size for `served_before` (no cache).")
_SLOW_BATCH_SIZES = flags.DEFINE_list(
    "slow_batch_sizes", ["1"], "Batch sizes of `served_before` at `gpt1` (minutes per call).")
_BEFORE_TREE = flags.DEFINE_string(
    "before_tree", "/tmp/gen_before", "Checkout of the code before issue #12 (`before` methods).")
_OUTPUT = flags.DEFINE_string(
    "output",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"),
    "Markdown file to write ('' to skip).",
)
_WORKER = flags.DEFINE_string("worker", None, "Internal: backend:size:method, prints JSON.")

_NOTES_MARKER = "## Notes"
_PACKAGES = ("tensorflow", "keras", "keras-hub", "jax")  # The machine line's versions.
_SERVED = ("served_before", "served_after")
_KNOWN_BACKENDS = ("tensorflow", "tensorflow_xla", "jax")
_METHOD_ORDER = ("keras_hub", "before", "after", "served_before", "served_after")
_READ = "read"  # The per-size weight-read worker (decode roofline), not a method.
_METHOD_NAMES = {
    "keras_hub": "keras-hub GPT-2",
    "before": "before",
    "after": "after",
    "served_before": "served, no cache (before)",
    "served_after": "served, cache (after)",
}
# Single-token words (GPT-1's BPE): a prompt of N of them is N tokens.
_WORDS = ("the", "king", "is", "dead", "long", "live", "and", "a")


def _unique(flag):
    """A list flag's values, each once, in order (a repeated one would repeat rows)."""
    return list(dict.fromkeys(flag.value))


def _load():
    return " ".join(common.load_average())


def _prompts(batch, length, vocabulary_size):
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.integers(0, vocabulary_size, size=(batch, length)).astype("int32")


def _buffer(prompts):
    import numpy as np

    batch, length = prompts.shape
    total = length + _NEW_TOKENS.value
    token_ids = np.zeros((batch, total), "int32")
    token_ids[:, :length] = prompts
    padding_mask = np.zeros((batch, total), bool)
    padding_mask[:, :length] = True
    return {"token_ids": token_ids, "padding_mask": padding_mask}


def _before_generate(size, xla):
    from gpt1_keras.models import GPT1CausalLM

    lm = GPT1CausalLM.from_architecture(size)
    lm.jit_compile = xla

    def generate(prompts):
        return lm.generate(prompts, _NEW_TOKENS.value)

    return generate


def _after_generate(size, xla):
    import numpy as np

    from gpt1_keras.models import GPT1CausalLM

    lm = GPT1CausalLM.from_architecture(size)
    lm.compile(sampler="greedy", jit_compile=xla)

    def generate(prompts):
        return np.asarray(lm.generate(_buffer(prompts))["token_ids"])

    return generate


def _keras_hub_model(size):
    """keras-hub's `GPT2CausalLM` with the layers, widths and vocabulary of a GPT-1 preset."""
    import keras_hub

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
    return keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)


def _keras_hub_generate(size, xla):
    import numpy as np

    lm = _keras_hub_model(size)
    lm.compile(sampler="greedy", jit_compile=xla)

    def generate(prompts):
        out = lm.generate(_buffer(prompts), stop_token_ids=None)
        return np.asarray(out["token_ids"])

    return generate


def _served_generate(size):
    """The SavedModel `generate` signature, saved and loaded back; returns `fn(batch)`."""
    import tempfile

    import numpy as np
    import tensorflow as tf

    from gpt1_keras.export.causal_lm_serving import CausalLMServingModule
    from gpt1_keras.models import GPT1CausalLM
    from gpt1_keras.tokenizers import GPT1Tokenizer

    lm = GPT1CausalLM.from_architecture(size)
    tokenizer = GPT1Tokenizer()
    text = " ".join(_WORDS[i % len(_WORDS)] for i in range(_PROMPT_LENGTH.value))
    assert len(tokenizer([text]).to_list()[0]) == _PROMPT_LENGTH.value
    module = CausalLMServingModule(lm, tokenizer, max_new_tokens_limit=_NEW_TOKENS.value)
    path = os.path.join(tempfile.mkdtemp(prefix="gen_bench_"), "served")
    tf.saved_model.save(module, path, signatures=module.signatures())
    served = tf.saved_model.load(path).signatures["generate"]

    def generate(batch):
        out = served(
            prompt=tf.constant([text] * batch),
            max_new_tokens=tf.constant([_NEW_TOKENS.value], tf.int32),
            temperature=tf.constant([0.0]), top_k=tf.constant([0], tf.int32),
            top_p=tf.constant([1.0]), seed=tf.constant([0], tf.int64))
        new = out["token_ids"].numpy()
        prompt = np.asarray(tokenizer([text] * batch).to_tensor().numpy(), "int32")
        return np.concatenate([prompt, new], axis=1)

    return generate


def _decode_weight_bytes(model):
    """Bytes a decode step reads: every weight but the position table (one row of it)."""
    import numpy as np

    return sum(math.prod(w.shape) * np.dtype(w.dtype).itemsize
               for w in model.weights if "position_embedding" not in w.path)


def _run_read_worker(size):
    """Weight bytes of ours and of keras-hub GPT-2, and the rate of reading that many bytes."""
    import jax
    import jax.numpy as jnp

    from gpt1_keras.models import GPT1CausalLM

    models = {"after": GPT1CausalLM.from_architecture(size),
              "keras_hub": _keras_hub_model(size)}
    result = {"load_before": _load(), "weight_bytes": {}, "read_gb_per_s": {}}
    total = jax.jit(jnp.sum)
    arrays = {}
    for name, model in models.items():
        result["weight_bytes"][name] = _decode_weight_bytes(model)
        arrays[name] = jnp.ones((result["weight_bytes"][name] // 4,), jnp.float32)
        total(arrays[name]).block_until_ready()
    for _ in range(3):  # Rounds alternating the models; the best median of each is kept.
        for name, array in arrays.items():
            times = []
            for _ in range(10):
                start = time.perf_counter()
                total(array).block_until_ready()
                times.append(time.perf_counter() - start)
            rate = result["weight_bytes"][name] / statistics.median(times) / 1e9
            result["read_gb_per_s"][name] = max(rate, result["read_gb_per_s"].get(name, 0))
    result["load_after"] = _load()
    common.print_result(result)


def _run_worker(spec):
    import keras
    import numpy as np

    backend, size, method = spec.split(":")
    if method == _READ:
        _run_read_worker(size)
        return
    keras.utils.set_random_seed(0)
    xla = backend == "tensorflow_xla" or backend == "jax"
    if method == "keras_hub":
        generate = _keras_hub_generate(size, xla)
    elif method == "before":
        generate = _before_generate(size, xla)
    elif method == "after":
        generate = _after_generate(size, xla)
    else:
        generate = _served_generate(size)
    from gpt1_keras.models.gpt1_presets import get_preset

    vocabulary_size = get_preset(size)["vocabulary_size"]
    slow = method == "served_before"
    repeats = _SLOW_REPEATS.value if slow else _REPEATS.value
    batch_sizes = _unique(_BATCH_SIZES)
    if slow and size == "gpt1":
        batch_sizes = _SLOW_BATCH_SIZES.value
    result = {"load_before": _load(), "batches": {}}
    for batch in (int(b) for b in batch_sizes):
        prompts = batch if method in _SERVED else _prompts(
            batch, _PROMPT_LENGTH.value, vocabulary_size)
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
    backend, _, method = spec.split(":")
    argv = [sys.executable, os.path.abspath(__file__), f"--worker={spec}"] + [
        f"--{flag.name}={flag.value if not isinstance(flag.value, list) else ','.join(flag.value)}"
        for flag in (_BATCH_SIZES, _PROMPT_LENGTH, _NEW_TOKENS, _REPEATS, _SLOW_REPEATS,
                     _SLOW_BATCH_SIZES)
    ]
    tree = os.path.abspath(_BEFORE_TREE.value) if method.endswith("before") else os.getcwd()
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = tree
    try:
        return common.run_worker(
            argv, spec, "tensorflow" if backend.startswith("tensorflow") else backend)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = saved


def _specs():
    for backend in _unique(_BACKENDS):
        for method in _methods():
            if method in _SERVED and backend != "tensorflow":
                continue  # the SavedModel is a TensorFlow graph
            yield backend, method


def _methods():
    """`--methods` in the table's order, with the peer (`keras_hub`) always among them."""
    methods = set(_METHODS.value) | {"keras_hub"}
    return [m for m in _METHOD_ORDER if m in methods]


def _table(results):
    """One row per (size, backend, batch); a column per method run, each beside its ratio.

    Every method's tokens/s is followed by its ratio to keras-hub GPT-2 of the same size
    in the same run (the peer); `served_after` also by its ratio to Keras `generate`
    (`after`), and `after` / `served_after` by theirs to the matching `before`.
    """
    methods = _methods()
    ratios = [(m, "keras_hub") for m in methods if m != "keras_hub"]
    if "served_after" in methods and "after" in methods:
        ratios.append(("served_after", "after"))
    ratios += [(m, m.replace("after", "before")) for m in ("after", "served_after")
               if m in methods and m.replace("after", "before") in methods]
    header = ["size", "backend", "batch"]
    for method in methods:
        header.append(f"{_METHOD_NAMES[method]} tok/s")
        header += [f"{_METHOD_NAMES[a]} / {_METHOD_NAMES[b]}" for a, b in ratios if a == method]
    header += ["same tokens", "load avg (before / after the `after` worker)"]
    lines = ["| " + " | ".join(header) + " |",
             "| --- | --- | " + "---: | " * (len(header) - 4) + "--- | --- |"]
    fmt = lambda v: "-" if v is None else f"{v:.1f}"
    ratio = lambda a, b: "-" if not (a and b) else f"{a / b:.2f}x"
    for size in _unique(_SIZES):
        for backend in _unique(_BACKENDS):
            for batch in _unique(_BATCH_SIZES):
                row = {}
                for method in methods:
                    r = results.get((backend, size, method), {})
                    row[method] = r.get("batches", {}).get(batch)
                rate = {m: (row[m] or {}).get("tokens_per_s") for m in row}
                cells = [size, backend, batch]
                for method in methods:
                    cells.append(fmt(rate[method]))
                    cells += [ratio(rate[a], rate[b]) for a, b in ratios if a == method]
                firsts = [row[m]["first_row"] for m in ("before", "after") if row.get(m)]
                same = "-" if len(firsts) < 2 else ("yes" if firsts[0] == firsts[1] else "NO")
                served = [row[m]["first_row"] for m in _SERVED if row.get(m)]
                if len(served) == 2:
                    same += ", served " + ("yes" if served[0] == served[1] else "NO")
                run = results.get((backend, size, "after"), {})
                cells += [same, f"{run.get('load_before', '?')} / {run.get('load_after', '?')}"]
                lines.append("| " + " | ".join(cells) + " |")
    return lines


def _best_read(reads):
    """`{model: (weight bytes, best read GB/s)}` over a size's `read` workers."""
    best = {}
    for result in reads:
        for model, count in result.get("weight_bytes", {}).items():
            rate = result["read_gb_per_s"][model]
            best[model] = (count, max(rate, best.get(model, (0, 0))[1]))
    return best


def _roof_table(results, reads):
    """Per row: each model's decode roof, its share of it, and our roof over the peer's rate.

    The roof is `batch * new / ((new + 1) * bytes / rate)` tokens/s: one read of every
    weight for the prefill and one per new token, at the best rate this run read that many
    bytes (`read` workers), nothing else counted.
    """
    new = _NEW_TOKENS.value
    header = ["size", "backend", "batch", "weight MB (ours / keras-hub)",
              "best read GB/s", "roof tok/s", "ours tok/s", "ours % of roof",
              "keras-hub tok/s", "keras-hub % of roof", "ceiling: our roof / keras-hub"]
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + " |"]
    for size in _unique(_SIZES):
        best = _best_read(reads.get(size, []))
        if set(best) != {"after", "keras_hub"}:
            continue
        for backend in _unique(_BACKENDS):
            for batch in _unique(_BATCH_SIZES):
                roof = {m: int(batch) * new / ((new + 1) * count / (rate * 1e9))
                        for m, (count, rate) in best.items()}
                measured = {m: results.get((backend, size, m), {}).get("batches", {})
                            .get(batch, {}).get("tokens_per_s") for m in best}
                if not (measured["after"] and measured["keras_hub"]):
                    continue
                lines.append("| " + " | ".join([
                    size, backend, batch,
                    f"{best['after'][0] / 1e6:.1f} / {best['keras_hub'][0] / 1e6:.1f}",
                    f"{best['after'][1]:.1f}", f"{roof['after']:.1f}",
                    f"{measured['after']:.1f}",
                    f"{100 * measured['after'] / roof['after']:.0f}%",
                    f"{measured['keras_hub']:.1f}",
                    f"{100 * measured['keras_hub'] / roof['keras_hub']:.0f}%",
                    f"{roof['after'] / measured['keras_hub']:.2f}x"]) + " |")
    return lines


def _write(results, reads, started, load_start):
    notes = common.notes_section(_OUTPUT.value, _NOTES_MARKER)
    raw = {f"{b}:{s}:{m}": r for (b, s, m), r in results.items()}
    lines = [
        "# Generation speed: GPT-1 vs keras-hub GPT-2, the served loop",
        "",
        f"Greedy, {_PROMPT_LENGTH.value}-token prompt + {_NEW_TOKENS.value} new tokens, "
        f"random weights; tokens/s = new tokens / median seconds per `generate` call "
        f"({_REPEATS.value} timed calls after a compiling one; {_SLOW_REPEATS.value} for "
        f"`served_before`, run at `gpt1` only for batch {','.join(_SLOW_BATCH_SIZES.value)}). "
        "See the docstring of `generation_bench.py` for the methods.",
        "",
        f"Machine: {common.machine_info(_PACKAGES)}. Started {started}, "
        f"load average (1/5/15 min) at start {load_start}, at end {_load()}.",
        "",
        "Command: `" + " ".join(
            ["PYTHONPATH=. .venv/bin/python bench/generation/generation_bench.py"]
            + sys.argv[1:]) + "`",
        "",
    ]
    lines += _table(results)
    lines += ["", "Decode roofline (see the docstring): the weight bytes each model reads per "
              "step, the fastest read of that many bytes in the run, and what it allows.", ""]
    lines += _roof_table(results, reads)
    raw.update({f"jax:{size}:{_READ}": r for size, r in reads.items()})
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
    unknown = sorted(set(_BACKENDS.value) - set(_KNOWN_BACKENDS))
    unknown += sorted(set(_METHODS.value) - set(_METHOD_ORDER))
    if unknown:
        sys.exit(f"Unknown --backends/--methods value(s): {', '.join(unknown)} (backends: "
                 f"{', '.join(_KNOWN_BACKENDS)}; methods: {', '.join(_METHOD_ORDER)}).")
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    results = {}
    load_start = _load()
    reads = {}
    for size in _unique(_SIZES):
        reads[size] = [_spawn(f"jax:{size}:{_READ}")]
        for backend, method in _specs():
            spec = f"{backend}:{size}:{method}"
            result = _spawn(spec)
            results[(backend, size, method)] = result
            rates = {b: round(r["tokens_per_s"], 1)
                     for b, r in result.get("batches", {}).items()}
            print(f"{spec}: tokens/s by batch {rates}, load {result.get('load_before')} -> "
                  f"{result.get('load_after')}, {result.get('wall_s', 0):.0f} s", flush=True)
        reads[size].append(_spawn(f"jax:{size}:{_READ}"))
        print(f"{size} weight read GB/s (ours, keras-hub), before / after: " + " / ".join(
            str({k: round(v, 1) for k, v in r.get("read_gb_per_s", {}).items()})
            for r in reads[size]), flush=True)
    for line in _table(results) + [""] + _roof_table(results, reads):
        print(line)
    if _OUTPUT.value:
        _write(results, reads, started, load_start)


if __name__ == "__main__":
    app.run(main)
