"""Helpers shared by the benchmarks: model FLOPs, the fp32 matmul peak, machine facts."""

import json
import os
import platform
import statistics
import subprocess
import sys
import time

RESULT_TAG = "BENCH_RESULT "


def model_flops_per_token(preset, length):
    """Training FLOPs per token of a GPT-1 preset: `6 * N_matmul + 12 * L * T * d`.

    N_matmul = L * (4 d^2 + 2 d d_ff) + V * d counts every matmul weight, including the
    tied LM-head projection; `12 L T d` is the attention score and value matmuls
    (forward + backward = 3 x forward). Embedding lookups, biases, LayerNorm, softmax and
    the optimizer are not counted. The LSTM baseline (`lstm_units` in the arguments):
    N_matmul = 4 U (d + U) (input and recurrent kernels of the four gates) + U d (the
    output projection) + V d, no length term.

    Args:
        preset: a preset name (`"gpt1_small"`, `"lstm_small"`) or a dict of backbone
            arguments.
        length: the sequence length T.

    Returns:
        `(flops_per_token, n_matmul)`.
    """
    if isinstance(preset, str):
        from gpt1_keras.models.gpt1_presets import get_preset, preset_architecture

        preset = get_preset(preset, architecture=preset_architecture(preset))
    if "lstm_units" in preset:
        d, units, vocab = preset["hidden_dim"], preset["lstm_units"], preset["vocabulary_size"]
        n_matmul = 4 * units * (d + units) + units * d + vocab * d
        return 6 * n_matmul, n_matmul
    layers, d, d_ff, vocab = (
        preset["num_layers"],
        preset["hidden_dim"],
        preset["intermediate_dim"],
        preset["vocabulary_size"],
    )
    n_matmul = layers * (4 * d * d + 2 * d * d_ff) + vocab * d
    return 6 * n_matmul + 12 * layers * length * d, n_matmul


def tf_matmul_gflops(repeats=20, threads=2, n=2048):
    """Median fp32 `n x n @ n x n` matmul rate of TensorFlow in this process (GFLOP/s)."""
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    a = tf.constant(np.random.RandomState(0).standard_normal((n, n)).astype("float32"))
    b = tf.constant(np.random.RandomState(1).standard_normal((n, n)).astype("float32"))
    for _ in range(2):
        tf.linalg.matmul(a, b).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def load_average():
    """The 1, 5 and 15 minute load averages, as strings."""
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def notes_section(path, marker="## Notes"):
    """The hand-written part of a results file (from `marker` on), kept across reruns."""
    if not os.path.exists(path):
        return ""
    with open(path) as f:
        text = f.read()
    return text[text.index(marker):] if marker in text else ""


def machine_info(packages=("tensorflow", "keras", "jax", "torch", "transformers")):
    """CPU model, CPU count, Python and the given package versions, on one line."""
    import importlib.metadata as md

    def version(name):
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "-"

    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = ", ".join(f"{name} {version(name)}" for name in packages)
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}; {versions}"


def print_result(result):
    """Worker side of `run_worker`: prints the result as one tagged JSON line."""
    print(RESULT_TAG + json.dumps(result), flush=True)


def run_worker(argv, label, backend=None, env=None, rss_limit_mib=None):
    """Runs a benchmark worker in a fresh interpreter; returns its `print_result` dict.

    Args:
        argv: the worker's command line (e.g. `[sys.executable, script, "--worker=..."]`).
        label: names the worker in the failure message.
        backend: the worker's `KERAS_BACKEND`, if set.
        env: more environment variables for the worker (a dict), if any.
        rss_limit_mib: if set, the worker's resident memory (`VmRSS`) is polled every
            20 ms and the worker is killed once it exceeds this many MiB. An address-space
            cap (`RLIMIT_AS`) would be simpler but fails TF, XLA and JAX long before
            their resident memory is near it: they reserve far more virtual memory than
            they touch.

    Returns:
        The worker's result plus `wall_s`; `{"error": "rss_limit", "rss_mib": N}` when the
        watchdog killed it; `{"error": "rc=N"}` (its output's tail is printed to stderr)
        when it printed no result.
    """
    import threading

    env = dict(os.environ, **(env or {}))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend:
        env["KERAS_BACKEND"] = backend
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = []
    if rss_limit_mib:

        def watch():
            while proc.poll() is None:
                rss = process_rss_mib(proc.pid)
                if rss > rss_limit_mib:
                    killed.append(rss)
                    proc.kill()
                    return
                time.sleep(0.02)

        threading.Thread(target=watch, daemon=True).start()
    stdout, stderr = proc.communicate()
    if killed:
        print(f"[{label}] killed: resident memory {killed[0]:.0f} MiB > "
              f"{rss_limit_mib:.0f} MiB", file=sys.stderr)
        return {"error": "rss_limit", "rss_mib": killed[0]}
    for line in stdout.splitlines():
        if line.startswith(RESULT_TAG):
            result = json.loads(line[len(RESULT_TAG):])
            result["wall_s"] = time.perf_counter() - start
            return result
    tail = (stdout + stderr)[-3000:]
    print(f"[{label}] failed (rc={proc.returncode}):\n{tail}", file=sys.stderr)
    return {"error": f"rc={proc.returncode}"}


def process_rss_mib(pid="self", field="VmRSS"):
    """A memory figure of process `pid` from `/proc/<pid>/status` in MiB (`VmHWM`: peak).

    0 when the process has gone (or, as a zombie, has no such line).
    """
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def available_memory_mib():
    """`MemAvailable` of `/proc/meminfo` in MiB: what can be allocated without swapping."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("/proc/meminfo has no MemAvailable line.")


def mcnemar(right_a, right_b):
    """McNemar's exact test of two models' per-example correctness on the same examples.

    Args:
        right_a, right_b: booleans, one per example (in the same order): right or not.

    Returns:
        `(right only in a, right only in b, two-sided exact p)`: the binomial test of
        the discordant pairs against 1/2 (1.0 when there are none).
    """
    from scipy import stats

    if len(right_a) != len(right_b):
        raise ValueError(f"{len(right_a)} vs {len(right_b)} examples: not paired.")
    only_a = sum(a and not b for a, b in zip(right_a, right_b))
    only_b = sum(b and not a for a, b in zip(right_a, right_b))
    p_value = stats.binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return only_a, only_b, p_value


def run_pipeline(name, *args):
    """Runs `pipelines/<name>.py` with `args` in a fresh interpreter; returns its seconds.

    Raises:
        RuntimeError: the binary failed; the message holds its command and output tail.
    """
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    argv = [sys.executable, os.path.join(repo, "pipelines", f"{name}.py"), *args]
    start = time.time()
    proc = subprocess.run(argv, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                          capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{name} {' '.join(args)} failed (rc={proc.returncode}):\n"
                           + (proc.stdout + proc.stderr)[-3000:])
    return time.time() - start
