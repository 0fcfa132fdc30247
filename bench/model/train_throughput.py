"""Training-step throughput of GPT-1 (Keras on TF-XLA and JAX) vs HF PyTorch, plus MFU.

One training step is the real training configuration on every side: dropout 0.1 active,
sparse softmax cross-entropy from logits over the full 40,481-token vocabulary at every
position, Adam (eps 1e-8) with global-norm clipping at 1, float32, the same token batches.

- `tf_xla`: `GPT1CausalLM` on the TensorFlow backend, `compile(jit_compile=True)`,
  `train_on_batch`.
- `tf`: the same without XLA (TF graph + oneDNN), for reference.
- `jax`: `GPT1CausalLM` on the JAX backend (`jit` is the Keras default), `train_on_batch`.
- `tf_xla_chunked`, `tf_chunked`, `jax_chunked`: the same compiled with
  `loss_chunk_size=--loss_chunk_size`: the same loss and gradients without the full
  `(batch * length, vocabulary)` logits (tied head and cross-entropy a chunk of positions
  at a time, gradients formed in the same pass; `gpt1_keras.layers.chunked_cross_entropy`).
- `tf_chunked_remat`, `tf_xla_chunked_remat`, `jax_chunked_remat`: the chunked loss and
  `GPT1Backbone(remat=True)`: every block rematerialized (gradient checkpointing, the
  same gradients: `tests/models/remat_test.py`), for the largest-batch search.
- `jax_rbg`, `jax_unsafe_rbg`: the same with `jax_default_prng_impl` set to `rbg` /
  `unsafe_rbg` (XLA's `RngBitGenerator`) instead of threefry2x32 for the dropout masks.
  The flag alone does not reach Keras: its `SeedGenerator` state is a raw `uint32[2]`
  (seed, counter) that `keras.random.dropout` hands to `jax.random.bernoulli` as key
  data, which JAX rejects for the 4-word rbg keys. The worker therefore wraps Keras'
  JAX seed drawing (`keras.src.backend.jax.random.jax_draw_seed`, private) so each
  drawn (seed, counter) becomes `fold_in(key(seed, impl), counter)`: the same
  per-layer, per-step distinct masks, drawn by the other generator.
- `hf_torch`: `transformers.OpenAIGPTLMHeadModel` of the same configuration in train mode,
  `F.cross_entropy` over every position, `torch.optim.Adam(eps=1e-8)` and
  `clip_grad_norm_(1.0)`, `torch.set_num_threads(2)`.
- `hf_torch_compile`: the same, with the forward pass and the loss under
  `torch.compile` (inductor, default mode; backward through AOTAutograd; the optimizer
  step stays eager), what a PyTorch user would run.

The first step of each worker (compilation for XLA, JAX and inductor) is never timed;
its seconds are reported beside the rate ("first step s").

Each (framework, size) measurement runs in its own subprocess, so it gets clean thread pools
and its own peak resident memory (`VmHWM` from `/proc/self/status`, reported by the child).
A step is timed from the call to the returned loss value (a host sync); the reported rate is
`batch * length / median(step time)` over `--steps` steps after `--warmup` steps.

Peak fp32 matmul rate: `2 * 2048^3 / median(time)` of a 2048x2048 @ 2048x2048 float32
matmul in TF and in torch, each in its own subprocess at the start and at the end of the
run, and in each training worker right after its steps; MFU uses the largest of these.

Model FLOPs per token (training, forward + backward = 3x forward; PaLM appendix B style):
    6 * N_matmul + 12 * L * T * d
where N_matmul = L * (4 d^2 + 2 d d_ff) + V * d counts every matmul weight, including the
tied LM-head projection (V x d), and excludes embedding lookups, biases, LayerNorm,
softmax and the optimizer; `12 L T d` is the attention score and value matmuls
(2 x 2 x T x d per token per layer forward, x3 for training). MFU = tokens/s x FLOPs/token
/ peak.

Largest batch that fits (`--fit_frameworks=tf_xla,hf_torch`, `--fit_memory_gib=24`): for
each framework, at `--fit_size` (default `gpt1`, T = 512), a search over the batch size
(doubling from `--fit_start_batch` until a batch does not fit, then bisection), each probe
a fresh subprocess running two training steps (the first creates the optimizer slots). A
batch fits when the probe finishes with a peak resident memory (`VmHWM`) within the
budget. The driver polls the probe's resident memory and kills it past the budget, so a
probe never takes more of the machine than that (an address-space limit, `RLIMIT_AS`,
would be simpler but stops TF, XLA and JAX far below their resident use: they reserve
much more virtual memory than they touch). The machine must have the budget available
(`MemAvailable`) or the run stops before it starts.

Run (from the repository root):

    PYTHONPATH=. .venv/bin/python bench/model/train_throughput.py \
        --sizes=gpt1_small,gpt1 --frameworks=tf_xla,jax,hf_torch

or `./bazelw run //bench/model:train_throughput -- --sizes=gpt1_small,gpt1`.
Results go to `--output` (default: bench/model/RESULTS.md next to this file).
"""

import datetime
import os
import statistics
import sys
import time

from absl import app
from absl import flags

from bench import common

_SIZES = flags.DEFINE_list("sizes", ["gpt1_small", "gpt1"], "Presets to measure.")
_FRAMEWORKS = flags.DEFINE_list(
    "frameworks",
    ["tf_xla", "jax", "hf_torch", "hf_torch_compile"],
    "Any of tf_xla, tf, jax, jax_rbg, jax_unsafe_rbg, hf_torch, hf_torch_compile, and "
    "tf_xla_chunked, tf_chunked, jax_chunked (the chunked LM loss), and these with "
    "_remat (rematerialized blocks).",
)
_LOSS_CHUNK_SIZE = flags.DEFINE_integer(
    "loss_chunk_size", 1024, "Positions per chunk of the *_chunked frameworks' LM loss.")
_FULL_FRAMEWORKS = flags.DEFINE_list(
    "full_frameworks",
    ["tf_xla", "jax", "hf_torch", "hf_torch_compile"],
    "Frameworks for the full `gpt1` size (slow steps: skip `tf` there by default).",
)
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps per measurement (median).")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps before timing (compilation).")
_FULL_STEPS = flags.DEFINE_integer(
    "full_steps", 4, "Timed steps for the full `gpt1` size (each takes seconds)."
)
_FULL_WARMUP = flags.DEFINE_integer("full_warmup", 2, "Warm-up steps for `gpt1`.")
_THREADS = flags.DEFINE_integer("threads", 2, "Threads per framework (cores).")
_MATMUL_REPEATS = flags.DEFINE_integer("matmul_repeats", 20, "Repeats of the peak matmul.")
_OUTPUT = flags.DEFINE_string(
    "output",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"),
    "Markdown file to write ('' to skip).",
)
_FIT_FRAMEWORKS = flags.DEFINE_list(
    "fit_frameworks", [], "Frameworks whose largest batch in --fit_memory_gib to find."
)
_FIT_MEMORY_GIB = flags.DEFINE_float(
    "fit_memory_gib", 24.0, "Memory budget (peak resident GiB) of the largest-batch search."
)
_FIT_SIZE = flags.DEFINE_string("fit_size", "gpt1", "Preset of the largest-batch search.")
_FIT_START_BATCH = flags.DEFINE_integer(
    "fit_start_batch", 4, "First batch size probed (doubled until one does not fit)."
)
_FIT_MAX_BATCH = flags.DEFINE_integer(
    "fit_max_batch", 1024, "Largest batch size probed (the search stops there)."
)
_WORKER = flags.DEFINE_string("worker", None, "Internal: run one measurement and print JSON.")

# Batch shape per preset: (batch, length).
_SHAPES = {"gpt1_small": (8, 256), "gpt1": (4, 512), "gpt1_tiny": (8, 64)}
_BACKENDS = {
    "tf_xla": "tensorflow",
    "tf": "tensorflow",
    "jax": "jax",
    "jax_rbg": "jax",
    "jax_unsafe_rbg": "jax",
    "tf_xla_chunked": "tensorflow",
    "tf_chunked": "tensorflow",
    "jax_chunked": "jax",
    "tf_xla_chunked_remat": "tensorflow",
    "tf_chunked_remat": "tensorflow",
    "jax_chunked_remat": "jax",
    "hf_torch": None,
    "hf_torch_compile": None,
}
# `jax_default_prng_impl` of the JAX frameworks (None: JAX's default, threefry2x32).
_JAX_PRNG = {"jax": None, "jax_chunked": None, "jax_chunked_remat": None, "jax_rbg": "rbg",
             "jax_unsafe_rbg": "unsafe_rbg"}
_HF = ("hf_torch", "hf_torch_compile")
_NOTES_MARKER = "## Notes"


# --------------------------------------------------------------------------- helpers


def _preset(size):
    from gpt1_keras.models.gpt1_presets import get_preset

    return get_preset(size)


def model_flops_per_token(size, length):
    """Training FLOPs per token and N_matmul of preset `size` (see `bench/common.py`)."""
    return common.model_flops_per_token(_preset(size), length)


def _token_batches(size, batch=None, count=4, seed=0):
    """`count` fixed (x, y) int32 batches of next-token pairs, shared by every framework.

    `batch` overrides the preset's batch size in `_SHAPES` (the largest-batch search).
    """
    import numpy as np

    batch, length = batch or _SHAPES[size][0], _SHAPES[size][1]
    vocab = _preset(size)["vocabulary_size"]
    rng = np.random.RandomState(seed)
    windows = rng.randint(0, vocab, size=(count, batch, length + 1)).astype("int32")
    return [(w[:, :-1], w[:, 1:]) for w in windows]


def _time_steps(step, batches, warmup, steps):
    """Runs `warmup + steps` steps cycling over `batches`.

    Returns:
        `(timed step seconds, first step seconds)`; the first step (compilation) is
        always a warm-up step, whatever `warmup` says.
    """
    times = []
    warmup = max(warmup, 1)
    for i in range(warmup + steps):
        x, y = batches[i % len(batches)]
        start = time.perf_counter()
        step(x, y)
        seconds = time.perf_counter() - start
        if i == 0:
            first = seconds
        if i >= warmup:
            times.append(seconds)
    return times, first


# --------------------------------------------------------------------------- workers


def _inline_matmul_gflops(framework, repeats=5, n=2048):
    """The worker's own framework's 2048^3 fp32 matmul rate, measured around the steps.

    Not the run's peak (that comes from the dedicated matmul workers); it shows how much
    of the machine this process actually got while it was timing (the machine is shared).
    """
    import numpy as np

    a = np.random.RandomState(0).standard_normal((n, n)).astype("float32")
    if framework in _HF:
        import torch

        t = torch.from_numpy(a)
        run = lambda: torch.mm(t, t)  # noqa: E731
    elif framework in _JAX_PRNG:
        import jax

        t = jax.numpy.asarray(a)
        f = jax.jit(lambda u: u @ u)
        run = lambda: f(t).block_until_ready()  # noqa: E731
    else:
        import tensorflow as tf

        t = tf.constant(a)
        run = lambda: tf.linalg.matmul(t, t).numpy()  # noqa: E731
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def _set_tf_threads(threads):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def _use_jax_prng(impl):
    """Makes JAX, and Keras' dropout on JAX, draw with PRNG implementation `impl`."""
    import jax
    from keras.src.backend.jax import random as keras_jax_random

    jax.config.update("jax_default_prng_impl", impl)
    draw = keras_jax_random.jax_draw_seed

    def draw_key(seed):
        words = draw(seed)  # Keras' uint32 (seed, counter)
        return jax.random.fold_in(jax.random.key(words[0], impl=impl), words[1])

    keras_jax_random.jax_draw_seed = draw_key


def _keras_worker(framework, size, warmup, steps, threads, batch=None):
    """`GPT1CausalLM.train_on_batch` on the current Keras backend."""
    import keras
    import numpy as np

    if keras.backend.backend() == "tensorflow":
        _set_tf_threads(threads)
    if _JAX_PRNG.get(framework):
        _use_jax_prng(_JAX_PRNG[framework])
    from gpt1_keras.models import GPT1CausalLM

    keras.utils.set_random_seed(0)
    remat = framework.endswith("_remat")
    framework = framework.removesuffix("_remat")
    model = GPT1CausalLM.from_architecture(size, remat=remat)
    if framework.endswith("_chunked"):  # The same loss (loss="auto"), chunked; no metric.
        loss = dict(loss="auto", weighted_metrics=None, loss_chunk_size=_LOSS_CHUNK_SIZE.value)
    else:
        loss = dict(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    weighted_metrics=[])
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=2.5e-4, epsilon=1e-8, global_clipnorm=1.0
        ),
        jit_compile=framework.removesuffix("_chunked") != "tf",
        **loss,
    )
    batches = [
        ({"token_ids": x, "padding_mask": np.ones_like(x)}, y)
        for x, y in _token_batches(size, batch)
    ]

    losses = []

    def step(x, y):
        # Returns a Python float: the step has finished on the host.
        losses.append(float(model.train_on_batch(x, y)))

    times, first = _time_steps(step, batches, warmup, steps)
    return {
        "times": times, "first_step_s": first, "first_loss": losses[0], "last_loss": losses[-1]
    }


def _hf_torch_worker(size, warmup, steps, threads, compile_model, batch=None):
    """HF `OpenAIGPTLMHeadModel` train step with the same loss, optimizer and clipping.

    With `compile_model`, the forward pass and the loss run under `torch.compile`.
    """
    import torch
    import transformers

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    p = _preset(size)
    config = transformers.OpenAIGPTConfig(
        vocab_size=p["vocabulary_size"],
        n_positions=p["max_sequence_length"],
        n_embd=p["hidden_dim"],
        n_layer=p["num_layers"],
        n_head=p["num_heads"],
        resid_pdrop=p["dropout"],
        embd_pdrop=p["dropout"],
        attn_pdrop=p["dropout"],
        layer_norm_epsilon=p["layer_norm_epsilon"],
    )
    assert 4 * config.n_embd == p["intermediate_dim"]
    model = transformers.OpenAIGPTLMHeadModel(config)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=2.5e-4, eps=1e-8)
    batches = [
        (torch.from_numpy(x).long(), torch.from_numpy(y).long())
        for x, y in _token_batches(size, batch)
    ]
    vocab = p["vocabulary_size"]
    losses = []

    def forward_loss(x, y):
        logits = model(input_ids=x).logits  # (B, T, V)
        return torch.nn.functional.cross_entropy(logits.view(-1, vocab), y.view(-1))

    if compile_model:
        forward_loss = torch.compile(forward_loss)

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        loss = forward_loss(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())

    times, first = _time_steps(step, batches, warmup, steps)
    return {
        "times": times, "first_step_s": first, "first_loss": losses[0], "last_loss": losses[-1]
    }


def _matmul_worker(framework, repeats, threads, n=2048):
    """Seconds per float32 `n x n @ n x n` matmul (median of `repeats`, after warm-up)."""
    import numpy as np

    a = np.random.RandomState(0).standard_normal((n, n)).astype("float32")
    b = np.random.RandomState(1).standard_normal((n, n)).astype("float32")
    if framework == "tf":
        _set_tf_threads(threads)
        import tensorflow as tf

        a, b = tf.constant(a), tf.constant(b)

        def run():
            tf.linalg.matmul(a, b).numpy()

    else:
        import torch

        torch.set_num_threads(threads)
        a, b = torch.from_numpy(a), torch.from_numpy(b)

        def run():
            torch.mm(a, b)

    run()
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return {"times": times, "gflops": 2 * n**3 / statistics.median(times) / 1e9}


def _run_worker(spec):
    kind, *rest = spec.split(":")
    threads = _THREADS.value
    if kind == "matmul":
        result = _matmul_worker(rest[0], _MATMUL_REPEATS.value, threads)
    else:
        # train:FRAMEWORK:SIZE, or fit:FRAMEWORK:SIZE:BATCH (two steps at that batch).
        framework, size, *batch = rest
        batch = int(batch[0]) if batch else None
        full = size == "gpt1"
        steps = _FULL_STEPS.value if full else _STEPS.value
        warmup = _FULL_WARMUP.value if full else _WARMUP.value
        if kind == "fit":
            warmup, steps = 1, 1
        if framework in _HF:
            result = _hf_torch_worker(
                size, warmup, steps, threads, framework == "hf_torch_compile", batch)
        else:
            result = _keras_worker(framework, size, warmup, steps, threads, batch)
        if kind == "train":
            # After the steps, so it does not count in the peak RSS of small models much
            # (two 16 MiB matrices) and sees the same machine state as the last steps.
            result["inline_matmul_gflops"] = _inline_matmul_gflops(framework)
    result["peak_rss_mib"] = common.process_rss_mib("self", "VmHWM")
    common.print_result(result)


# --------------------------------------------------------------------------- driver


def _spawn(spec, backend=None, rss_limit_mib=None):
    """Runs one worker in a fresh interpreter; returns its JSON result (or an error).

    HF workers run with `USE_TF=0`, so that transformers does not import TensorFlow into
    them (its memory would count in their peak RSS).
    """
    argv = [
        sys.executable,
        os.path.abspath(__file__),
        f"--worker={spec}",
        f"--steps={_STEPS.value}",
        f"--full_steps={_FULL_STEPS.value}",
        f"--full_warmup={_FULL_WARMUP.value}",
        f"--warmup={_WARMUP.value}",
        f"--threads={_THREADS.value}",
        f"--matmul_repeats={_MATMUL_REPEATS.value}",
        f"--loss_chunk_size={_LOSS_CHUNK_SIZE.value}",
    ]
    env = {"USE_TF": "0"} if spec.split(":")[1] in _HF else None
    return common.run_worker(argv, spec, backend, env=env, rss_limit_mib=rss_limit_mib)


def _largest_batch(framework, size, budget_mib):
    """The largest batch of `size` whose training steps stay within `budget_mib` peak RSS.

    Returns:
        `(largest fitting batch or 0, {batch: probe result})`; a probe that fails for
        another reason than memory stops the search (its error is in the probes).
    """
    probes = {}

    def fits(batch):
        r = _spawn(f"fit:{framework}:{size}:{batch}", _BACKENDS[framework], budget_mib)
        probes[batch] = r
        print(f"fit {framework} {size} batch {batch}: peak RSS "
              f"{_fmt(r.get('peak_rss_mib', r.get('rss_mib')))} MiB {r.get('error', '')}",
              flush=True)
        # rc=-9: killed by the kernel (out of memory) rather than by the watchdog.
        if r.get("error") not in (None, "rss_limit", "rc=-9"):
            raise RuntimeError(f"{framework} batch {batch}: {r['error']}")
        return "error" not in r and r["peak_rss_mib"] <= budget_mib

    fitting, over, batch = 0, None, _FIT_START_BATCH.value
    try:
        while over is None and fitting < _FIT_MAX_BATCH.value:
            if fits(batch):
                fitting, batch = batch, min(2 * batch, _FIT_MAX_BATCH.value)
            else:
                over = batch
        while over is not None and over - fitting > 1:
            middle = (fitting + over) // 2
            if fits(middle):
                fitting = middle
            else:
                over = middle
    except RuntimeError as e:
        print(f"fit {framework}: search stopped: {e}", file=sys.stderr)
    return fitting, probes


def _fit_table(fits, budget_mib):
    """Markdown lines of the largest-batch search results."""
    length = _SHAPES[_FIT_SIZE.value][1]
    lines = [
        f"Largest batch of `{_FIT_SIZE.value}` x {length} tokens whose two training steps "
        f"stay within {budget_mib / 1024:.1f} GiB peak RSS:",
        "",
        "| framework | largest batch | its peak RSS MiB | smallest batch over | "
        "its peak RSS MiB | probes (batch: peak RSS MiB) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for fw, (fitting, probes) in fits.items():
        rss = {b: r.get("peak_rss_mib", r.get("rss_mib")) for b, r in probes.items()}
        over = [b for b in probes if b > fitting]
        over = min(over) if over else None
        cap = " (search cap)" if fitting >= _FIT_MAX_BATCH.value else ""
        killed = " (killed)" if probes.get(over, {}).get("error") else ""
        lines.append(
            f"| {fw} | {fitting}{cap} | {_fmt(rss.get(fitting))} | {_fmt(over, 'd')} | "
            f"{_fmt(rss.get(over))}{killed} | "
            + ", ".join(f"{b}: {_fmt(v)}" for b, v in sorted(rss.items())) + " |"
        )
    return lines


def _fmt(value, spec=".0f"):
    return "-" if value is None else format(value, spec)


def main(argv):
    del argv
    if _WORKER.value:
        _run_worker(_WORKER.value)
        return
    budget_mib = _FIT_MEMORY_GIB.value * 1024
    if _FIT_FRAMEWORKS.value and common.available_memory_mib() < budget_mib:
        sys.exit(
            f"--fit_memory_gib={_FIT_MEMORY_GIB.value:g}: this machine has only "
            f"{common.available_memory_mib() / 1024:.1f} GiB available (MemAvailable)."
        )

    loads = [common.load_average()]
    peaks = {"tf": [], "torch": []}

    def measure_peaks():
        for fw in ("tf", "torch"):
            r = _spawn(f"matmul:{fw}", "tensorflow" if fw == "tf" else None)
            if r.get("gflops"):
                peaks[fw].append(r["gflops"])
            print(f"matmul peak {fw}: {_fmt(r.get('gflops'))} GFLOP/s", flush=True)

    measure_peaks()

    per_size = []
    for size in _SIZES.value:
        batch, length = _SHAPES[size]
        flops, n_matmul = model_flops_per_token(size, length)
        results = {}
        frameworks = _FULL_FRAMEWORKS.value if size == "gpt1" else _FRAMEWORKS.value
        for fw in frameworks:
            r = _spawn(f"train:{fw}:{size}", _BACKENDS[fw])
            loads.append(common.load_average())
            if "times" in r:
                r["tokens_per_s"] = batch * length / statistics.median(r["times"])
            results[fw] = r
            print(
                f"{size} {fw}: {_fmt(r.get('tokens_per_s'))} tokens/s, "
                f"peak RSS {_fmt(r.get('peak_rss_mib'))} MiB, "
                f"inline matmul {_fmt(r.get('inline_matmul_gflops'))} GFLOP/s, "
                f"steps {[round(t, 3) for t in r.get('times', [])]}, "
                f"loss {r.get('first_loss')} -> {r.get('last_loss')}",
                flush=True,
            )
        per_size.append((size, batch, length, flops, n_matmul, results))

    fits = {}
    for fw in _FIT_FRAMEWORKS.value:
        fits[fw] = _largest_batch(fw, _FIT_SIZE.value, budget_mib)
        loads.append(common.load_average())

    # Peaks again at the end: the machine is shared, so the run's peak is the best of
    # the start and end measurements (a conservative MFU denominator).
    measure_peaks()
    loads.append(common.load_average())
    # MFU denominator: the best fp32 matmul rate seen anywhere in the run, i.e. the
    # dedicated TF / torch peak workers (start and end) and the matmuls timed inside
    # each training worker. On a shared machine a single peak measurement can catch a
    # busier moment than the training steps did (MFU > 100% otherwise).
    inline = [
        r["inline_matmul_gflops"]
        for *_, results in per_size
        for r in results.values()
        if r.get("inline_matmul_gflops")
    ]
    peak = max([v for values in peaks.values() for v in values] + inline)
    rows = []
    for size, batch, length, flops, n_matmul, results in per_size:
        peer = results.get("hf_torch", {}).get("tokens_per_s")
        compiled = results.get("hf_torch_compile", {}).get("tokens_per_s")
        for fw, r in results.items():
            tps = r.get("tokens_per_s")
            rows.append(
                dict(
                    size=size,
                    shape=f"{batch} x {length}",
                    framework=fw,
                    tokens_per_s=tps,
                    step_s=statistics.median(r["times"]) if "times" in r else None,
                    first_s=r.get("first_step_s"),
                    ratio=tps / peer if tps and peer else None,
                    ratio_compiled=tps / compiled if tps and compiled else None,
                    gflops=tps * flops / 1e9 if tps else None,
                    mfu=tps * flops / 1e9 / peak if tps else None,
                    rss=r.get("peak_rss_mib"),
                    inline=r.get("inline_matmul_gflops"),
                    n_matmul=n_matmul,
                    flops=flops,
                )
            )

    lines = [
        "| size | batch x length | framework | tokens/s | step s | first step s | "
        "vs HF torch | vs HF torch.compile | GFLOP/s | MFU | own matmul GFLOP/s | "
        "peak RSS MiB |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['shape']} | {r['framework']} | {_fmt(r['tokens_per_s'])} | "
            f"{_fmt(r['step_s'], '.3f')} | {_fmt(r['first_s'], '.1f')} | "
            f"{_fmt(r['ratio'], '.2f')}x | {_fmt(r['ratio_compiled'], '.2f')}x | "
            f"{_fmt(r['gflops'])} | {_fmt(r['mfu'] and 100 * r['mfu'], '.0f')}% | "
            f"{_fmt(r['inline'])} | {_fmt(r['rss'])} |"
        )
    if not rows:
        lines = []  # `--sizes=`: the largest-batch search alone
    if fits:
        lines += [""] * bool(lines) + _fit_table(fits, budget_mib)
    table = "\n".join(lines)
    command = " ".join(["python bench/model/train_throughput.py"] + sys.argv[1:])
    flops_lines = "\n".join(
        ["Model FLOPs per token = 6 * N_matmul + 12 * L * T * d:"] * bool(_SIZES.value)
        + [
            f"- `{s}`: N_matmul = {model_flops_per_token(s, _SHAPES[s][1])[1] / 1e6:.1f}M, "
            f"{model_flops_per_token(s, _SHAPES[s][1])[0] / 1e6:.1f} MFLOP/token"
            for s in _SIZES.value
        ]
    )
    report = f"""
Date: {datetime.datetime.now().isoformat(timespec='minutes')}; machine: {common.machine_info()}.
Load average (1/5/15 min) before and after each measurement: {'; '.join('/'.join(l) for l in loads)}.

fp32 2048^3 matmul peak (median of {_MATMUL_REPEATS.value}, start / end of the run):
TF {' / '.join(_fmt(v) for v in peaks['tf'])} GFLOP/s, torch
{' / '.join(_fmt(v) for v in peaks['torch'])} GFLOP/s; MFU uses the best matmul rate seen in
the run (these and the "own matmul" column): {_fmt(peak)} GFLOP/s.
"own matmul" is the same 2048^3 matmul timed inside each worker right after its steps (TF
eager, `jax.jit`, torch): how much of the shared machine that worker got. Steps:
{_STEPS.value} timed after {_WARMUP.value} warm-up (gpt1: {_FULL_STEPS.value} after
{_FULL_WARMUP.value}), median; threads = {_THREADS.value}.

{table}

{flops_lines}

Command: `{command}`
"""
    print(report)
    if _OUTPUT.value:
        # Keep hand-written analysis below the notes marker across reruns.
        notes = common.notes_section(_OUTPUT.value, _NOTES_MARKER)
        with open(_OUTPUT.value, "w") as f:
            f.write("# GPT-1 training-step throughput\n" + report)
            if notes:
                f.write("\n" + notes)


if __name__ == "__main__":
    app.run(main)
