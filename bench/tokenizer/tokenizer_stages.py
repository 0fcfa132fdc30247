"""Where `GPT1Tokenizer`'s time goes: the cost of each stage of `tokenize`, per mode.

Each stage is timed as the difference between two `tf.function`s over the same batches:
the pipeline up to and including the stage, and the pipeline up to the stage before (so a
stage is measured on the real output of the previous ones, and the per-call overhead of a
`tf.function` is its own row, `call`). Times are CPU seconds of the process with one
thread for TF ops: they add up, and other jobs on the machine change them much less than
wall time. All prefixes are timed in turn within each repeat, and each one's fastest
repeat is kept. The table gives each stage's share of the in-graph work (`tokenize` less
`call`). Under load the shares are meaningful, the absolute times are not.

Stages (see `GPT1Tokenizer._tokenize`):

- `utf8 check`: the valid-UTF-8 check of the input batch.
- `normalize + split at spaces`: `normalization.chunks` (ftfy's character rules and
  `text_standardize`, or BERT's normaliser; then the split into space-free chunks).
- `unique chunks`: `tf.unique` over the batch's chunks.
- `split chunks into words`: spaCy's rules ("openai") or BERT's punctuation split, lower-case.
- `BPE`: words -> ids (the whole-word table, the merge loop for the rest).
- `gather rows`: the ids of the unique chunks back into the batch's rows.

Run: `python bench/tokenizer/tokenizer_stages.py --repeats=5`.
"""

import os
import time

from absl import app
from absl import flags

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from gpt1_keras.tokenizers import GPT1Tokenizer  # noqa: E402
from tests import shared_data  # noqa: E402

_TEXT = flags.DEFINE_string(
    "text", None, "Text file to tokenize (default: tinyshakespeare shipped in shared/)."
)
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timed repeats of every prefix.")
_BATCH = flags.DEFINE_integer("batch_size", 1024, "Lines per batch.")
_LINES = flags.DEFINE_integer("lines", 40000, "Lines of the text to use (0: all).")
_MODES = flags.DEFINE_list("modes", ["openai", "bert"], "Normalisation modes.")


def _prefixes(tok):
    """`(stage name, fn)`: `fn` runs `tokenize` up to and including that stage."""

    def unique(x):
        chunks = tok._chunks(tok._check_utf8(x))
        return tf.unique(chunks.flat_values)[0]

    return [
        ("call", tf.identity),
        ("utf8 check", tok._check_utf8),
        ("normalize + split at spaces", lambda x: tok._chunks(tok._check_utf8(x)).flat_values),
        ("unique chunks", unique),
        (
            "split chunks into words",
            lambda x: tok._split_unique_chunks(unique(x)).flat_values,
        ),
        (
            "BPE",
            lambda x: tok._bpe.encode_words(
                tok._split_unique_chunks(unique(x)).flat_values
            ).flat_values,
        ),
        ("gather rows", lambda x: tok._tokenize(x).flat_values),
    ]


def _profile(tok, batches, repeats):
    spec = tf.TensorSpec([None], tf.string)
    stages = [(name, tf.function(fn, input_signature=[spec])) for name, fn in _prefixes(tok)]
    for _, fn in stages:  # Trace and warm up.
        for batch in batches[:2]:
            fn(batch)
    times = {name: [] for name, _ in stages}
    for _ in range(repeats):
        for name, fn in stages:
            start = time.process_time()
            for batch in batches:
                fn(batch)
            times[name].append(time.process_time() - start)
    cumulative = [min(times[name]) for name, _ in stages]
    costs = [cumulative[0]] + [b - a for a, b in zip(cumulative, cumulative[1:])]
    return [(name, cost) for (name, _), cost in zip(stages, costs)], cumulative[-1]


def main(argv):
    del argv
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    path = _TEXT.value or shared_data.path("tinyshakespeare.txt")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if _LINES.value:
        lines = lines[: _LINES.value]
    megabytes = sum(len(line.encode("utf-8")) + 1 for line in lines) / 1e6
    size = _BATCH.value
    batches = [tf.constant(lines[i : i + size]) for i in range(0, len(lines), size)]
    print(
        f"text: {path}: {len(lines)} lines, {megabytes:.2f} MB; batch {size}; one TF "
        f"thread; fastest of {_REPEATS.value} repeats; load average "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
    )
    for mode in _MODES.value:
        costs, total = _profile(GPT1Tokenizer(normalization=mode), batches, _REPEATS.value)
        work = total - costs[0][1]
        print(f"\n{mode}: tokenize {total:.3f} CPU s, in-graph {work:.3f} CPU s")
        print("| stage | CPU s | share of in-graph work |")
        print("| --- | --- | --- |")
        for name, cost in costs:
            share = "" if name == "call" else f"{100 * cost / work:.0f}%"
            print(f"| {name} | {cost:.3f} | {share} |")
    print("\nload average after: " + " ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    app.run(main)
