r"""The paper's central claim at small scale: pretraining helps SST-2 fine-tuning.

1. Splits `../shared/data/sst2/train.tsv` (GLUE's SST-2 training split) with a seeded
   shuffle into a held-out validation set (`--validation_examples`, written as the task's
   `dev.tsv`) and the rest (`train.tsv`, of which the first `--train_examples` are used).
2. Pretrains `gpt1_small` with `pipelines/pretrain.py` (its defaults plus
   `--pretrain_flags`), unless `--pretrained=model.keras` is given.
3. Fine-tunes with `pipelines/finetune.py --task=sst2` twice with the same flags: from the
   pretrained LM, and `--no_pretraining --preset=gpt1_small` (Table 5's ablation).
4. Scores the pretrained LM zero-shot (`pipelines/evaluate.py --zero_shot=sst2`: does
   "very positive" or "very negative" follow the review more likely).

Run (from the repository root):

    PYTHONPATH=. .venv/bin/python bench/finetune/sst2_transfer.py \
        --pretrained=/tmp/gpt1_keras/pretrain/model.keras

Writes `--output` (default RESULTS.md beside this file); text under "## Notes" is kept.
"""

import datetime
import json
import os
import random
import tempfile

from absl import app
from absl import flags

from bench import common

_REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
_SHARED = os.environ.get("GPT1_SHARED_DIR", os.path.join(_REPO, "..", "shared"))
_SST2 = flags.DEFINE_string("sst2_train", os.path.join(_SHARED, "data", "sst2", "train.tsv"),
                            "GLUE SST-2 train.tsv to split.")
_PRETRAINED = flags.DEFINE_string("pretrained", None, "A pretrained LM (.keras); else pretrain.")
_PRETRAIN_FLAGS = flags.DEFINE_list("pretrain_flags", [], "Extra pretrain flags.")
_TRAIN_EXAMPLES = flags.DEFINE_integer("train_examples", 4000, "Fine-tuning examples used.")
_VALIDATION_EXAMPLES = flags.DEFINE_integer("validation_examples", 1000, "Held out.")
_FINETUNE_FLAGS = flags.DEFINE_list(
    "finetune_flags", ["--epochs=3", "--batch_size=32", "--sequence_length=48"],
    "Flags for both fine-tuning runs (the paper's recipe otherwise).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the split.")
_OUTPUT = flags.DEFINE_string(
    "output", os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md"),
    "Markdown results file.")
_NOTES_MARKER = "## Notes"


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


def _accuracy(metrics):
    return metrics["splits"]["dev"]["accuracy"]


def main(argv):
    del argv
    root = tempfile.mkdtemp(prefix="gpt1_sst2_bench_")
    data = os.path.join(root, "sst2")
    available = _split(_SST2.value, data, _VALIDATION_EXAMPLES.value, _SEED.value)
    pretrained, pretrain_note = _PRETRAINED.value, "given with --pretrained"
    if not pretrained:
        model_dir = os.path.join(root, "pretrain")
        seconds = common.run_pipeline("pretrain", f"--model_dir={model_dir}", *_PRETRAIN_FLAGS.value)
        pretrained = os.path.join(model_dir, "model.keras")
        with open(os.path.join(model_dir, "metrics.json")) as f:
            lm = json.load(f)
        pretrain_note = (f"`pretrain` {' '.join(_PRETRAIN_FLAGS.value) or '(defaults)'}: "
                         f"{lm['final_step']} updates, validation perplexity "
                         f"{lm['val_perplexity']:.0f} "
                         f"(unigram {lm['unigram_val_perplexity']:.0f}), "
                         f"{seconds / 60:.1f} minutes")
    common_flags = [f"--data_dir={data}", f"--max_train_examples={_TRAIN_EXAMPLES.value}",
                    *_FINETUNE_FLAGS.value]
    runs = {}
    for name, extra in (("pretrained", [f"--init_checkpoint={pretrained}"]),
                        ("scratch", ["--no_pretraining", "--preset=gpt1_small"])):
        out = os.path.join(root, name)
        seconds = common.run_pipeline("finetune", "--task=sst2", f"--output_dir={out}", *common_flags, *extra)
        runs[name] = (_accuracy(_metrics(out)), seconds)
        print(f"{name}: dev accuracy {runs[name][0]:.4f} ({seconds / 60:.1f} min)", flush=True)
    zero_dir = os.path.join(root, "zero_shot")
    common.run_pipeline("evaluate", "--zero_shot=sst2", f"--data_dir={data}", f"--checkpoint={pretrained}",
            "--split=dev", f"--output_dir={zero_dir}")
    zero = _metrics(zero_dir)
    print(f"zero-shot: {json.dumps(zero)}", flush=True)
    zero_accuracy = zero.get("accuracy", zero.get("splits", {}).get("dev", {}).get("accuracy"))

    notes = common.notes_section(_OUTPUT.value, _NOTES_MARKER)
    gain = runs["pretrained"][0] - runs["scratch"][0]
    text = f"""# SST-2 at small scale: fine-tuning with and without pretraining, and zero-shot

Data: GLUE SST-2 `train.tsv` ({available + _VALIDATION_EXAMPLES.value:,} sentences), shuffled
with seed {_SEED.value}; {_VALIDATION_EXAMPLES.value:,} held out as the validation set, the
first {_TRAIN_EXAMPLES.value:,} of the rest used for fine-tuning. Model: `gpt1_small`.
Pretrained LM: {pretrain_note}. Both fine-tuning runs: `pipelines/finetune.py --task=sst2`
with {' '.join(_FINETUNE_FLAGS.value)} and the paper's recipe otherwise (lr 6.25e-5, linear
decay with 0.2% warm-up, `lm_coef` 0.5, classifier dropout 0.1, seed 42).

| run | validation accuracy | minutes |
| --- | ---: | ---: |
| fine-tuned from the pretrained LM | **{runs['pretrained'][0]:.1%}** | {runs['pretrained'][1] / 60:.1f} |
| fine-tuned from random initialisation (`--no_pretraining`) | **{runs['scratch'][0]:.1%}** | {runs['scratch'][1] / 60:.1f} |
| gain from pretraining | **{gain * 100:+.1f} points** | |
| zero-shot, pretrained LM (`very positive` vs `very negative`) | **{zero_accuracy:.1%}** | |
| majority class of the validation set | {_majority(data):.1%} | |

Command: `PYTHONPATH=. .venv/bin/python bench/finetune/sst2_transfer.py
{'--pretrained=...' if _PRETRAINED.value else ''} --train_examples={_TRAIN_EXAMPLES.value}`.
Date {datetime.datetime.now():%Y-%m-%d}; {common.machine_info()}.

{notes}"""
    with open(_OUTPUT.value, "w") as f:
        f.write(text.rstrip() + "\n")
    print(f"Wrote {_OUTPUT.value}")


def _majority(data):
    with open(os.path.join(data, "dev.tsv"), encoding="utf-8") as f:
        header, *rows = f.read().splitlines()
    column = header.split("\t").index("label")
    labels = [row.split("\t")[column] for row in rows]
    return max(labels.count(v) for v in set(labels)) / len(labels)


if __name__ == "__main__":
    app.run(main)
