r"""The learning-rate warm-up sweep behind the `small` pretraining defaults.

Trains `gpt1_small` with GPT-1's optimizer (`build_optimizer`: Adam 0.9/0.999/1e-8,
decoupled weight decay 0.01 on rank > 1 weights, global clip 1) and a warm-up + cosine
schedule (`make_schedule`) on pre-tokenized tinyshakespeare, one run per `--runs` entry,
and prints the validation loss `--evals` times per run (JSON lines; also written to
`--output`). Plain NumPy batches of non-overlapping (T + 1)-token windows in a seeded
random order, `train_on_batch`; validation = the first 96 windows of 128 tokens of the
held-out text, dropout off. Backend-independent, so it also runs where TensorFlow is not
installed (the sweep in BENCHMARKS.md ran on a GPU machine with the JAX backend).

Step 1, with TensorFlow (tokenizes the same train/validation split as `pretrain`):

    PYTHONPATH=. .venv/bin/python bench/pretrain/warmup_sweep.py --prepare=/tmp/sweep

Step 2, any backend:

    KERAS_BACKEND=jax PYTHONPATH=. .venv/bin/python bench/pretrain/warmup_sweep.py \
        --data=/tmp/sweep --runs=8:128:1e-3:300:250,8:128:1e-3:300:30

Each run is `B:T:peak_lr:steps:warmup[:dropout[:seed[:schedule]]]` (schedule: cosine,
linear or constant, as `pretrain --schedule`).
"""

import json
import math
import os
import time

from absl import app
from absl import flags

_PREPARE = flags.DEFINE_string("prepare", None, "Write train.npy/valid.npy here and exit.")
_DATA = flags.DEFINE_string("data", None, "Directory with train.npy and valid.npy.")
_RUNS = flags.DEFINE_list("runs", ["8:128:1e-3:300:250", "8:128:1e-3:300:30"],
                          "Runs: B:T:peak_lr:steps:warmup[:dropout[:seed[:schedule]]].")
_EVALS = flags.DEFINE_integer("evals", 6, "Validation passes per run, evenly spaced.")
_OUTPUT = flags.DEFINE_string("output", None, "Also write all results to this JSON file.")


def _prepare(directory):
    import numpy as np

    from gpt1_keras.data import corpus
    from gpt1_keras.data.lm_dataset import default_corpus_path
    from gpt1_keras.data.lm_dataset import make_token_stream
    from gpt1_keras.tokenizers import GPT1Tokenizer

    tokenizer = GPT1Tokenizer()
    # The `small` recipe's split: the last 5% of the lines held out.
    splits = corpus.split_lines([default_corpus_path()], 0.05, directory)
    for name, files in zip(("train", "valid"), splits):
        ids = np.concatenate(list(make_token_stream(list(files), tokenizer).as_numpy_iterator()))
        np.save(os.path.join(directory, f"{name}.npy"), ids.astype("int32"))
        print(f"{name}: {ids.size} tokens")


def _windows(ids, length):
    import numpy as np

    count = (len(ids) - 1) // length
    return np.stack([ids[i * length:i * length + length + 1] for i in range(count)])


def _inputs(windows):
    import numpy as np

    x = windows[:, :-1].astype("int32")
    return {"token_ids": x, "padding_mask": np.ones_like(x)}, windows[:, 1:].astype("int32")


def run_one(train, valid, batch, length, peak_lr, steps, warmup, dropout=0.1, seed=0,
            schedule="cosine", evals=6):
    """Trains one configuration; returns its settings and `[(step, train, val loss)]`."""
    import keras
    import numpy as np

    from gpt1_keras.models import GPT1CausalLM
    from gpt1_keras.training import build_optimizer
    from gpt1_keras.training.schedules import make_schedule

    keras.utils.set_random_seed(seed)
    lm = GPT1CausalLM.from_architecture("gpt1_small", dropout=dropout)
    lm.compile(
        optimizer=build_optimizer(make_schedule(schedule, peak_lr, warmup, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    train_windows = _windows(train, length)
    val_x, val_y = _inputs(_windows(valid, 128)[:96])
    rng = np.random.default_rng(seed)
    order, position = rng.permutation(len(train_windows)), 0
    eval_steps = {round(steps * k / evals) for k in range(1, evals + 1)}
    curve, start = [], time.time()
    for step in range(1, steps + 1):
        if position + batch > len(order):
            order, position = rng.permutation(len(train_windows)), 0
        x, y = _inputs(train_windows[order[position:position + batch]])
        position += batch
        loss = lm.train_on_batch(x, y)
        if step in eval_steps:
            val = lm.evaluate(val_x, val_y, batch_size=32, verbose=0)
            curve.append((step, float(np.ravel(loss)[0]), float(np.ravel(val)[0])))
    return dict(batch=batch, length=length, peak_lr=peak_lr, steps=steps, warmup=warmup,
                dropout=dropout, seed=seed, schedule=schedule, curve=curve,
                val_perplexity=math.exp(curve[-1][2]), seconds=time.time() - start)


def main(argv):
    del argv
    if _PREPARE.value:
        os.makedirs(_PREPARE.value, exist_ok=True)
        _prepare(_PREPARE.value)
        return
    if not _DATA.value:
        raise app.UsageError("Pass --data (made by --prepare) or --prepare.")
    import numpy as np

    train = np.load(os.path.join(_DATA.value, "train.npy"))
    valid = np.load(os.path.join(_DATA.value, "valid.npy"))
    results = []
    for spec in _RUNS.value:
        fields = spec.split(":")
        if not 5 <= len(fields) <= 8:
            raise app.UsageError("--runs entries are "
                                 "B:T:lr:steps:warmup[:dropout[:seed[:schedule]]]. "
                                 f"Received: {spec!r}")
        batch, length, lr, steps, warmup = (int(fields[0]), int(fields[1]), float(fields[2]),
                                            int(fields[3]), int(fields[4]))
        dropout = float(fields[5]) if len(fields) > 5 else 0.1
        seed = int(fields[6]) if len(fields) > 6 else 0
        schedule = fields[7] if len(fields) > 7 else "cosine"
        results.append(run_one(train, valid, batch, length, lr, steps, warmup, dropout, seed,
                               schedule, _EVALS.value))
        print(json.dumps(results[-1]), flush=True)
        if _OUTPUT.value:
            with open(_OUTPUT.value, "w") as f:
                json.dump(results, f, indent=1)


if __name__ == "__main__":
    app.run(main)
