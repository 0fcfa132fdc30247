r"""The paper's central claim at small scale: pretraining helps SST-2 fine-tuning.

1. Splits `../shared/data/sst2/train.tsv` (GLUE's SST-2 training split) with a seeded
   shuffle into a held-out validation set (`--validation_examples`, written as the task's
   `dev.tsv`) and the rest (`train.tsv`).
2. Pretrains `gpt1_small` with `pipelines/pretrain.py` (its defaults plus
   `--pretrain_flags`), unless `--pretrained=model.keras` is given.
3. For every `--runs` entry `EXAMPLES:EPOCHS:SEED`, fine-tunes with
   `pipelines/finetune.py --task=sst2 --max_train_examples=EXAMPLES --epochs=EPOCHS
   --seed=SEED` plus `--finetune_flags` twice: from the pretrained LM, and
   `--no_pretraining --preset=gpt1_small` (Table 5's ablation), and reports both
   validation accuracies and the gain.
4. Scores the pretrained LM zero-shot (`pipelines/evaluate.py --zero_shot=sst2`: does
   "very positive" or "very negative" follow the review more likely).

Run (from the repository root):

    PYTHONPATH=. .venv/bin/python bench/finetune/sst2_transfer.py \
        --pretrained=/tmp/gpt1_keras/pretrain/model.keras --work_dir=/tmp/sst2_bench

With `--work_dir`, a fine-tuning run that finished with the same flags (its
`bench_run.json`) is read back instead of rerun, so an interrupted benchmark continues.
Writes `--output` (default RESULTS.md beside this file); text under "## Notes" is kept.
"""

import datetime
import json
import os
import random
import statistics
import tempfile

from absl import app
from absl import flags

from bench import common
from tests import shared_data

_SST2 = flags.DEFINE_string("sst2_train", shared_data.path("sst2", "train.tsv", must_exist=False),
                            "SST-2 train.tsv (label<TAB>sentence).")
_PRETRAINED = flags.DEFINE_string("pretrained", None, "A pretrained LM (.keras); else pretrain.")
_PRETRAIN_FLAGS = flags.DEFINE_list("pretrain_flags", [], "Extra pretrain flags.")
_RUNS = flags.DEFINE_list(
    "runs", ["4000:3:42", "1000:6:42", "1000:6:7"],
    "Fine-tuning runs as EXAMPLES:EPOCHS:SEED; each is done from the LM and from scratch.")
_VALIDATION_EXAMPLES = flags.DEFINE_integer("validation_examples", 1000, "Held out.")
_FINETUNE_FLAGS = flags.DEFINE_list(
    "finetune_flags",
    ["--batch_size=32", "--sequence_length=40", "--learning_rate=2.5e-4",
     "--warmup_fraction=0.1"],
    "Flags of every fine-tuning run.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the split.")
_WORK_DIR = flags.DEFINE_string(
    "work_dir", None, "Run directories go here (default: a new temporary directory); a run "
    "finished with the same flags is read back, not rerun.")
_OUTPUT = flags.DEFINE_string(
    "output", os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"),
    "Markdown results file.")
_NOTES_MARKER = "## Notes"
_ARMS = ("pretrained", "scratch")


def _split(source, directory, validation, seed):
    with open(source, encoding="utf-8") as f:
        header, *rows = f.read().splitlines()
    random.Random(seed).shuffle(rows)
    os.makedirs(directory, exist_ok=True)
    for name, part in (("dev.tsv", rows[:validation]), ("train.tsv", rows[validation:])):
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write("\n".join([header, *part]) + "\n")
    return len(rows) - validation


def _metrics(directory):
    with open(os.path.join(directory, "metrics.json")) as f:
        return json.load(f)


def _parse_run(spec):
    try:
        examples, epochs, seed = (int(v) for v in spec.split(":"))
    except ValueError:
        raise app.UsageError(f"--runs: {spec!r} is not EXAMPLES:EPOCHS:SEED") from None
    return examples, epochs, seed


def _finetune(out, args):
    """Runs (or reads back) one fine-tuning; returns (its metrics.json, seconds)."""
    record_path = os.path.join(out, "bench_run.json")
    if os.path.exists(record_path):
        with open(record_path) as f:
            record = json.load(f)
        if record["args"] == args:
            return _metrics(out), record["seconds"]
    seconds = common.run_pipeline("finetune", "--task=sst2", f"--output_dir={out}", *args)
    with open(record_path, "w") as f:
        json.dump({"args": args, "seconds": seconds}, f)
    return _metrics(out), seconds


def main(argv):
    del argv
    runs = [_parse_run(spec) for spec in _RUNS.value]
    root = _WORK_DIR.value or tempfile.mkdtemp(prefix="gpt1_sst2_bench_")
    data = os.path.join(root, "sst2")
    available = _split(_SST2.value, data, _VALIDATION_EXAMPLES.value, _SEED.value)
    pretrained, pretrain_seconds = _PRETRAINED.value, None
    if not pretrained:
        model_dir = os.path.join(root, "pretrain")
        pretrain_seconds = common.run_pipeline("pretrain", f"--model_dir={model_dir}",
                                               *_PRETRAIN_FLAGS.value)
        pretrained = os.path.join(model_dir, "model.keras")
    pretrain_note = _describe_lm(pretrained, pretrain_seconds)
    rows, gains, accuracies = [], {}, []
    for examples, epochs, seed in runs:
        common_args = [f"--data_dir={data}", f"--max_train_examples={examples}",
                       f"--epochs={epochs}", f"--seed={seed}", *_FINETUNE_FLAGS.value]
        run_dir = os.path.join(root, f"{examples}ex_{epochs}ep_seed{seed}")
        accuracy, minutes = {}, {}
        for arm, extra in zip(_ARMS, ([f"--init_checkpoint={pretrained}"],
                                      ["--no_pretraining", "--preset=gpt1_small"])):
            metrics, seconds = _finetune(os.path.join(run_dir, arm), common_args + extra)
            accuracy[arm], minutes[arm] = metrics["splits"]["dev"]["accuracy"], seconds / 60
            updates = metrics["train_steps"]
            print(f"{examples} examples, {epochs} epochs, seed {seed}, {arm}: dev accuracy "
                  f"{accuracy[arm]:.4f} ({minutes[arm]:.1f} min)", flush=True)
        accuracies += accuracy.values()
        gain = accuracy["pretrained"] - accuracy["scratch"]
        gains.setdefault(examples, []).append(gain)
        only_pretrained, only_scratch, p_value = _mcnemar(
            data, *(os.path.join(run_dir, arm) for arm in _ARMS))
        rows.append(f"| {examples:,} | {epochs} ({updates}) | {seed} | "
                    f"{accuracy['pretrained']:.1%} | {accuracy['scratch']:.1%} | "
                    f"**{gain * 100:+.1f}** | {only_pretrained} / {only_scratch}, "
                    f"p = {p_value:.2g} | {minutes['pretrained']:.0f} + "
                    f"{minutes['scratch']:.0f} |")
    zero_dir = os.path.join(root, "zero_shot")
    if not os.path.exists(os.path.join(zero_dir, "metrics.json")):
        common.run_pipeline("evaluate", "--zero_shot=sst2", f"--data_dir={data}",
                            f"--checkpoint={pretrained}", "--split=dev",
                            f"--output_dir={zero_dir}")
    zero_accuracy = _metrics(zero_dir)["accuracy"]
    print(f"zero-shot: {zero_accuracy:.4f}", flush=True)

    summary = "\n".join(
        f"| {examples:,} | {len(values)} | **{statistics.mean(values) * 100:+.1f}** | "
        f"{min(values) * 100:+.1f} .. {max(values) * 100:+.1f} |"
        for examples, values in gains.items())
    mean, n = statistics.mean(accuracies), _VALIDATION_EXAMPLES.value
    notes = common.notes_section(_OUTPUT.value, _NOTES_MARKER)
    text = f"""# SST-2 at small scale: fine-tuning with and without pretraining, and zero-shot

Data: GLUE SST-2 `train.tsv` ({available + _VALIDATION_EXAMPLES.value:,} sentences), shuffled
with seed {_SEED.value}; {_VALIDATION_EXAMPLES.value:,} held out as the validation set, the
first N of the rest used for fine-tuning. Model: `gpt1_small`.
Pretrained LM: {pretrain_note}. Every fine-tuning run: `pipelines/finetune.py --task=sst2`
with {' '.join(_FINETUNE_FLAGS.value)} and the epochs and seed of its row, and the paper's
recipe for the rest (linear decay, `lm_coef` 0.5, classifier dropout 0.1, weight decay
0.01, clipping 1); the two arms of a row differ only in the initial weights.

| fine-tuning examples | epochs (updates) | seed | from the pretrained LM | from scratch (`--no_pretraining`) | gain (points) | right only with / without pretraining, McNemar p | minutes |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

| fine-tuning examples | runs | mean gain (points) | range |
| ---: | ---: | ---: | ---: |
{summary}

Zero-shot, pretrained LM (`very positive` vs `very negative`): **{zero_accuracy:.1%}**.
Majority class of the validation set: {_majority(data):.1%}. One standard error of an
accuracy of {mean:.0%} on {n:,} sentences: {100 * (mean * (1 - mean) / n) ** 0.5:.1f} points.

Command: `PYTHONPATH=. .venv/bin/python bench/finetune/sst2_transfer.py {_command_flags()}`.
Date {datetime.datetime.now():%Y-%m-%d}; {common.machine_info()}.

{notes}"""
    with open(_OUTPUT.value, "w") as f:
        f.write(text.rstrip() + "\n")
    print(f"Wrote {_OUTPUT.value}")


def _describe_lm(path, seconds):
    """One line on the pretrained LM, from the pretrain run's metrics.json beside it."""
    run_dir = os.path.dirname(path)
    if not os.path.exists(os.path.join(run_dir, "metrics.json")):
        return "given with --pretrained"
    with open(os.path.join(run_dir, "metrics.json")) as f:
        lm = json.load(f)
    with open(os.path.join(run_dir, "config.json")) as f:
        corpus = ", ".join(os.path.basename(p) for p in json.load(f)["train_files"])
    how = f"`pretrain` {' '.join(_PRETRAIN_FLAGS.value) or '(defaults)'}" if seconds else \
        "a `pretrain` run given with --pretrained"
    took = f", {seconds / 60:.1f} minutes" if seconds else ""
    return (f"{how}: {lm['preset']}, {lm['final_step']} updates on {corpus}, validation "
            f"perplexity {lm['val_perplexity']:.0f} (unigram "
            f"{lm['unigram_val_perplexity']:.0f}){took}")


def _command_flags():
    """The flags that reproduce this run (a given LM shown as `...`)."""
    flags_used = [f"--runs={','.join(_RUNS.value)}"]
    if _PRETRAINED.value:
        flags_used.append("--pretrained=...")
    for flag in (_PRETRAIN_FLAGS, _FINETUNE_FLAGS):
        if flag.value:
            flags_used.append(f"--{flag.name}={','.join(flag.value)}")
    return " ".join(flags_used)


def _read_column(path, column):
    with open(path, encoding="utf-8") as f:
        header, *rows = f.read().splitlines()
    index = header.split("\t").index(column)
    return [row.split("\t")[index] for row in rows]


def _mcnemar(data, pretrained_dir, scratch_dir):
    """Sentences only one arm gets right (each way) and the exact McNemar p-value: the
    two arms answer the same 1,000 sentences, so this paired test is the sharp one."""
    gold = _read_column(os.path.join(data, "dev.tsv"), "label")
    right = [
        [p == g for p, g in zip(_read_column(os.path.join(d, "predictions", "dev.tsv"),
                                             "prediction"), gold, strict=True)]
        for d in (pretrained_dir, scratch_dir)]
    return common.mcnemar(*right)


def _majority(data):
    labels = _read_column(os.path.join(data, "dev.tsv"), "label")
    return max(labels.count(v) for v in set(labels)) / len(labels)


if __name__ == "__main__":
    app.run(main)
