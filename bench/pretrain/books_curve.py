r"""Reports finished (or running) book-corpus pretraining runs: validation curve, tokens/s, MFU.

Reads each `--runs` model directory written by `pipelines/pretrain.py` (for example the
`books` recipe, transformer and `--architecture=lstm`): its `config.json`, its
`history.jsonl` (one entry per validation: loss, validation loss, learning rate and the
training tokens/s of that stretch) and, once the run has finished, its `metrics.json`
(the add-one unigram baseline on the same held-out tokens). Nothing is retrained; every
number comes from those artifacts. MFU = tokens/s x training FLOPs per token
(`bench/common.py`) / the fp32 2048^3 TensorFlow matmul rate, measured by this script
when it runs (`--peak_gflops` to give the peak of the machine the run used instead).

Run (from the repository root):

    PYTHONPATH=. .venv/bin/python bench/pretrain/books_curve.py \
        --runs=/runs/books_transformer,/runs/books_lstm

Writes `--output` (default: BOOKS.md beside this file) and a perplexity plot
(`books_curve.png` beside it); text under "## Notes" is kept.
"""

import datetime
import json
import math
import os

from absl import app
from absl import flags

from bench import common

_RUNS = flags.DEFINE_list("runs", None, "Pretraining model directories.", required=True)
_PEAK = flags.DEFINE_float("peak_gflops", None, "The fp32 matmul peak to divide by "
                           "(default: measured now, on this machine).")
_OUTPUT = flags.DEFINE_string(
    "output", os.path.join(os.path.dirname(os.path.abspath(__file__)), "BOOKS.md"),
    "Markdown results file; the plot is written beside it.")
_NOTES_MARKER = "## Notes"


def _read_run(model_dir):
    """`(config, history, metrics or None)` of a pretraining model directory."""
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    history = []
    with open(os.path.join(model_dir, "history.jsonl")) as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    history.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{model_dir}/history.jsonl line {number}: {e}") from e
    metrics_path = os.path.join(model_dir, "metrics.json")
    metrics = None
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            metrics = json.load(f)
    return config, history, metrics


def _section(model_dir, config, history, metrics, peak):
    flops, n_matmul = common.model_flops_per_token(config["preset"], config["sequence_length"])
    tokens_per_step = config["batch_size"] * config["sequence_length"]
    rows = ["| update | tokens | learning rate | train loss (stretch mean) | val loss | "
            "val perplexity | tokens/s | MFU |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for e in history:
        tps = e.get("tokens_per_second")
        rows.append(
            f"| {e['step']} | {e['step'] * tokens_per_step / 1e6:.2f}M | "
            f"{e['learning_rate']:.2e} | {e['loss']:.3f} | {e['val_loss']:.3f} | "
            f"{math.exp(e['val_loss']):.1f} | {tps:.0f} | {tps * flops / (peak * 1e9):.0%} |")
    rates = sorted(e["tokens_per_second"] for e in history if e.get("tokens_per_second"))
    median = rates[len(rates) // 2]
    last = history[-1]
    if metrics:
        unigram = metrics["unigram_val_perplexity"]
        status = (f"finished at update {metrics['final_step']}: validation perplexity "
                  f"**{metrics['val_perplexity']:.1f}** vs the add-one unigram baseline "
                  f"**{unigram:.1f}** on the same {metrics['validation_tokens']:,} held-out "
                  f"tokens ({unigram / metrics['val_perplexity']:.2f}x lower)")
    else:
        status = (f"**not finished**: last validation at update {last['step']} of "
                  f"{config['train_steps']}, perplexity {math.exp(last['val_loss']):.1f} "
                  f"(the unigram baseline is written when the run finishes)")
    return f"""## {config['architecture']} `{config['preset']}` (`{os.path.basename(model_dir.rstrip('/'))}`)

{config['batch_size']} x {config['sequence_length']} tokens per update, peak learning rate
{config['learning_rate']:g} ({config['warmup_steps']} warm-up updates, {config['schedule']}),
{config['train_steps']} updates, seed {config['seed']}, {config['precision']}; N_matmul
{n_matmul / 1e6:.1f}M, {flops / 1e6:.1f} MFLOP per training token. Run {status}.
Training tokens/s per stretch between validations: median **{median:.0f}** (range
{rates[0]:.0f}-{rates[-1]:.0f}) = **{median * flops / (peak * 1e9):.0%} MFU**.

{chr(10).join(rows)}
"""


def _plot(runs, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for model_dir, (config, history, metrics) in runs:
        label = f"{config['architecture']} {config['preset']}"
        line, = ax.plot([e["step"] for e in history],
                        [math.exp(e["val_loss"]) for e in history], "o-", label=label)
        if metrics:
            ax.axhline(metrics["unigram_val_perplexity"], color=line.get_color(), ls=":",
                       label=f"unigram baseline ({label}'s held-out tokens)")
    ax.set_xlabel("update")
    ax.set_ylabel("validation perplexity")
    ax.set_yscale("log")
    ax.set_title("Book-corpus pretraining, held-out books")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv):
    del argv
    runs = [(d, _read_run(d)) for d in _RUNS.value]
    peak = _PEAK.value or common.tf_matmul_gflops()
    os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
    plot_path = os.path.join(os.path.dirname(os.path.abspath(_OUTPUT.value)), "books_curve.png")
    _plot(runs, plot_path)
    sections = [_section(d, *run, peak) for d, run in runs]
    notes = common.notes_section(_OUTPUT.value, _NOTES_MARKER)
    peak_source = "given by --peak_gflops" if _PEAK.value else "measured by this report"
    text = f"""# Book-corpus pretraining: validation perplexity, tokens/s, MFU

From the artifacts of the runs below (`config.json`, `history.jsonl`, `metrics.json`).
fp32 matmul peak {peak:.0f} GFLOP/s (TensorFlow 2048^3, {peak_source}). Ran on:
{common.machine_info()} (CPU; no accelerator). Report written {datetime.datetime.now():%Y-%m-%d}.

Command: `PYTHONPATH=. .venv/bin/python bench/pretrain/books_curve.py
--runs={','.join(_RUNS.value)}`.

![validation perplexity]({os.path.basename(plot_path)})

{chr(10).join(sections)}
{notes}"""
    with open(_OUTPUT.value, "w") as f:
        f.write(text.rstrip() + "\n")
    print(f"Wrote {_OUTPUT.value} and {plot_path}")


if __name__ == "__main__":
    app.run(main)
