r"""Validation curve, tokens/s and MFU of the real pretraining binary on the default corpus.

Runs `pipelines/pretrain.py` (the default `small` configuration: gpt1_small, 8 x 128
tokens, tinyshakespeare with its last 5% of lines held out) once per `--train_steps`
value, each in its own process and model directory, and reads back its `metrics.json`:
the validation loss every `--steps_per_epoch` updates, the add-one unigram baseline on
the same validation tokens, and the training tokens/s. MFU = tokens/s x training FLOPs
per token (`bench/common.py`) / the fp32 2048^3 TensorFlow matmul rate measured in this
process right before and right after the runs (the larger of the two).

Run (from the repository root; ~7 minutes per 300 updates on an idle 2-core machine):

    PYTHONPATH=. .venv/bin/python bench/pretrain/pretrain_curve.py --train_steps=300,900

or `./bazelw run //bench/pretrain:pretrain_curve -- --train_steps=300,900`. Writes
`--output` (default: RESULTS.md beside this file); text under "## Notes" is kept.
"""

import datetime
import json
import math
import os
import tempfile

from absl import app
from absl import flags

from bench import common

_TRAIN_STEPS = flags.DEFINE_list("train_steps", ["300"], "One run per value.")
_STEPS_PER_EPOCH = flags.DEFINE_integer("steps_per_epoch", 50, "Updates between validations.")
_EXTRA = flags.DEFINE_list("pretrain_flags", [], "More pretrain flags, e.g. --seed=1.")
_WORK_DIR = flags.DEFINE_string(
    "work_dir", None, "Model directories go here (default: a new temporary directory); a "
    "run whose metrics.json already reached its --train_steps is read back, not rerun.")
_OUTPUT = flags.DEFINE_string(
    "output", os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"),
    "Markdown results file.",
)
_NOTES_MARKER = "## Notes"
_SEQUENCE_LENGTH = 128  # The `small` configuration's.


def _pretrain(steps, model_dir):
    done = os.path.join(model_dir, "metrics.json")
    if os.path.exists(done):
        with open(done) as f:
            metrics = json.load(f)
        if metrics["final_step"] == steps and metrics.get("tokens_per_second"):
            metrics.setdefault("load", (["?"] * 3, ["?"] * 3))
            return metrics
    load_before = common.load_average()
    common.run_pipeline("pretrain", f"--model_dir={model_dir}", f"--train_steps={steps}",
                        f"--steps_per_epoch={_STEPS_PER_EPOCH.value}",
                        f"--checkpoint_every={_STEPS_PER_EPOCH.value}", *_EXTRA.value)
    with open(done) as f:
        metrics = json.load(f)
    metrics["load"] = (load_before, common.load_average())
    with open(done, "w") as f:
        json.dump(metrics, f, indent=2)
    return metrics


def _table(metrics, flops_per_token, peak):
    rows = ["| step | learning rate | train loss (epoch mean) | val loss | val perplexity |",
            "| ---: | ---: | ---: | ---: | ---: |"]
    for e in metrics["history"]:
        val = e.get("val_loss")
        rows.append(f"| {e['step']} | {e['learning_rate']:.2e} | {e['loss']:.3f} | "
                    f"{val:.3f} | {math.exp(val):.0f} |" if val is not None else
                    f"| {e['step']} | {e['learning_rate']:.2e} | {e['loss']:.3f} | - | - |")
    tps = metrics["tokens_per_second"]
    mfu = tps * flops_per_token / (peak * 1e9)
    return "\n".join(rows), (
        f"Final validation perplexity **{metrics['val_perplexity']:.0f}** vs the add-one "
        f"unigram baseline **{metrics['unigram_val_perplexity']:.0f}** on the same "
        f"{metrics['validation_tokens']:,} validation tokens "
        f"({metrics['unigram_val_perplexity'] / metrics['val_perplexity']:.2f}x lower). "
        f"Training **{tps:.0f} tokens/s** = {tps * flops_per_token / 1e9:.0f} GFLOP/s = "
        f"**{mfu:.0%} MFU**; whole run {metrics['wall_seconds'] / 60:.1f} minutes "
        f"(load average before/after {'/'.join(metrics['load'][0])}, "
        f"{'/'.join(metrics['load'][1])})."
    )


def main(argv):
    del argv
    peaks = [common.tf_matmul_gflops()]
    flops_per_token, _ = common.model_flops_per_token("gpt1_small", _SEQUENCE_LENGTH)
    root = _WORK_DIR.value or tempfile.mkdtemp(prefix="gpt1_pretrain_bench_")
    runs = []
    for steps in _TRAIN_STEPS.value:
        runs.append(_pretrain(int(steps), os.path.join(root, f"steps{steps}")))
        print(f"--train_steps={steps}: val perplexity {runs[-1]['val_perplexity']:.1f}, "
              f"{runs[-1]['tokens_per_second']:.0f} tokens/s", flush=True)
    peaks.append(common.tf_matmul_gflops())
    peak = max(peaks)

    sections = []
    for steps, metrics in zip(_TRAIN_STEPS.value, runs):
        table, summary = _table(metrics, flops_per_token, peak)
        sections.append(f"## `--train_steps={steps}`\n\n{summary}\n\n{table}\n")
    notes = common.notes_section(_OUTPUT.value, _NOTES_MARKER)
    text = f"""# Pretraining on the default corpus: validation curve, tokens/s, MFU

`pipelines/pretrain.py` with its defaults (gpt1_small, 8 x 128 tokens, peak lr 1e-3 after
250 warm-up updates then cosine, Adam with GPT-1's decoupled weight decay 0.01, clipping 1,
dropout 0.1, XLA, TensorFlow backend, float32) on tinyshakespeare, the last 5% of its lines
held out for validation; extra flags: {' '.join(_EXTRA.value) or 'none'}. The cosine decay
spans each run's own `--train_steps`. Training FLOPs/token {flops_per_token / 1e6:.1f}M;
fp32 matmul peak {peak:.0f} GFLOP/s (TensorFlow 2048^3, best of before/after:
{', '.join(f'{p:.0f}' for p in peaks)}).

Command: `PYTHONPATH=. .venv/bin/python bench/pretrain/pretrain_curve.py
--train_steps={','.join(_TRAIN_STEPS.value)}`. Date {datetime.datetime.now():%Y-%m-%d};
{common.machine_info()}.

{chr(10).join(sections)}
{notes}"""
    with open(_OUTPUT.value, "w") as f:
        f.write(text.rstrip() + "\n")
    print(f"Wrote {_OUTPUT.value}")


if __name__ == "__main__":
    app.run(main)
