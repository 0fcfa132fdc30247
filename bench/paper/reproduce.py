r"""GPT-1's Table 5 and Figure 2 at small scale, from the raw files, resumable; writes
docs/reproduction.md.

One command, through the library that the binaries wrap
(`gpt1_keras.training.pretraining.pretrain`, `gpt1_keras.tasks.finetuning.finetune` /
`evaluate_run`, `gpt1_keras.evaluation.zero_shot`), in one process:

1. Data: each GLUE training file (`glue/CoLA`, `sst2`, `glue/MRPC`, `glue/STS-B`,
   `glue/RTE` under `--data_dir`) is first read by the task's own reader (a
   malformed line fails here, naming the original file and line), then split by a
   seeded shuffle of its lines into `<work_dir>/data/<task>/dev.tsv`
   (`--validation_examples`, our validation set: no GLUE dev split is given) and
   `train.tsv` (the rest); identical inputs stay on the same side. Story Cloze: its
   reader splits the 2016 validation file into `train` (four fifths) and `dev`;
   the test file (labelled, so the library would score it) is not given, so
   fine-tuning holds a seeded fifth of `train` out (`validation_fraction=0.2`) as
   its validation set, and the zero-shot heuristic is scored on `dev`.
2. Pretraining (unless `--transformer_lm` is given): the `--pretrain_recipe`
   (`mini`: a BPE of its own learned on the training books, then GPT-1's
   architecture at 4 x 256) on `--corpus` in `<work_dir>/pretrain/transformer`,
   then the equal-size LSTM on the same BPE, recipe and tokens in
   `<work_dir>/pretrain/lstm`. Both score the four zero-shot heuristics at each
   validation pass (`ZeroShotProbes`), into their history.
3. Table 5: for every task, fine-tunes four rows with the same recipe: the
   transformer LM ("full"), `no_pretraining` (same architecture, random weights),
   `lm_coef=0` ("w/o aux LM"), and the LSTM LM. Each run reads text with the
   tokenizer saved with its LM. Per-task scores, the average, the difference to
   "full", and McNemar's exact paired test on the validation predictions
   (`predictions/dev.tsv`) for every classification task.
4. Figure 2 left: SST-2 and `--pair_task` fine-tuned with `layers_to_transfer`
   0..L; validation score and training score (the finished run scored on the exact
   training subset it saw, with `evaluate_run`, i.e. `finetune --eval_only`).
   With `--score_on=DIR` (laid out like `--data_dir`, e.g. GLUE's official
   `dev.tsv` files), every Table-5 run is also scored there without retraining.
5. Figure 2 right: the four zero-shot heuristics (SST-2, CoLA, Story Cloze multiple
   choice, the Winograd-style set in `bench/paper/data/winograd/dev.jsonl`, written
   for this project) along pretraining: from the runs' history, or (an LM given
   without probes) on every checkpoint kept in `<pretrain run>/checkpoints`;
   normalised as `(score - chance) / (best fine-tuned score - chance)` (chance: 0.5
   accuracy, 0 Matthews; the Winograd set has no fine-tuned run: divided by
   `1 - chance`).

A run is finished when its `metrics.json` exists; finished runs are read back,
never retrained, and an interrupted pretraining resumes from its last checkpoint, so
an interrupted driver continues where it stopped. A finished run whose recorded
config differs from the one asked for is an error (use a new `--work_dir`). Every
number in the document is read from these artifacts; `<work_dir>/stages.json`
records each stage's wall time and the machine (its fp32 matmul peak).

Run (from the repository root):

    ./bazelw run //bench/paper:reproduce -- --data_dir=$PWD/../shared/data \
        --work_dir=/runs/paper

Recipe: the paper's (linear decay, `lm_coef` 0.5, batch 32, 3 epochs, classifier
dropout 0.1, weight decay 0.01, clipping 1) except learning rate 2.5e-4 and
warm-up 10% instead of 6.25e-5 and 0.2%: with ~140 updates per run, 6.25e-5 barely
moves a 6-layer model (bench/finetune measured this on SST-2), and sequences of 96
tokens instead of 512 (budget). The same setting for every row and task.
"""

import dataclasses
import hashlib
import json
import os
import random
import sys
import time

from absl import flags

from bench import common
from gpt1_keras import cli
from tests import shared_data

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Under `bazel run`: the checkout the report goes to, and the directory relative paths
# in the flags are relative to (the caller's, not the runfiles').
_CHECKOUT = os.environ.get("BUILD_WORKSPACE_DIRECTORY", _REPO)
_CALLER_DIR = os.environ.get("BUILD_WORKING_DIRECTORY")

_TRANSFORMER_LM = flags.DEFINE_string(
    "transformer_lm", None, "A pretrained transformer to use instead of pretraining one: a "
    "pretrain run directory (its model.keras, history and checkpoints/) or a .keras "
    "GPT1CausalLM.")
_LSTM_LM = flags.DEFINE_string("lstm_lm", None, "A pretrained LSTM LM, the same way.")
_CORPUS = flags.DEFINE_string(
    "corpus", None, "The pretraining text (default: <data_dir>/books/books.txt).")
_PRETRAIN_RECIPE = flags.DEFINE_string(
    "pretrain_recipe", "mini", "The pretraining recipe of both LMs (pretraining.RECIPES); "
    "the LSTM trains on the transformer's BPE and the same token budget.")
_LSTM_SEQUENCE_LENGTH = flags.DEFINE_integer(
    "lstm_sequence_length", 32, "The LSTM pretrains on the recipe's tokens per update in "
    "sequences of this length (a batch that many times larger): its recurrence runs "
    "2x faster on 2 cores at 32 than at 128 (BENCHMARKS.md); 0: the recipe's.")
_PRETRAIN_OVERRIDES = flags.DEFINE_list(
    "pretrain_overrides", [], "PretrainConfig fields over the recipe, for both LMs, as "
    "key=value (JSON values), e.g. train_steps=400,batch_size=16.")
_DATA_DIR = flags.DEFINE_string("data_dir", shared_data.path(must_exist=False),
                                "The shared data folder (glue/, sst2/, story_cloze/).")
_WINOGRAD = flags.DEFINE_string(
    "winograd_dir", os.path.join(_REPO, "bench", "paper", "data", "winograd"),
    "Folder of the Winograd-style set (dev.jsonl, WinoGrande layout).")
_WORK_DIR = flags.DEFINE_string("work_dir", None, "Runs go here; finished ones are reused.")
_OUTPUT = flags.DEFINE_string("output", os.path.join(_CHECKOUT, "docs", "reproduction.md"),
                              "The Markdown report; its PNGs go beside it.")
_SCORE_ON = flags.DEFINE_string(
    "score_on", None, "A folder laid out like --data_dir (glue/RTE/dev.tsv, sst2/dev.tsv, "
    "story_cloze/<test CSV>, ...) holding other labelled splits, e.g. GLUE's official dev "
    "files: every Table-5 run is also scored on it, without retraining.")
_TASKS = flags.DEFINE_list("tasks", ["cola", "sst2", "mrpc", "stsb", "rte", "story_cloze"],
                           "Table 5's tasks.")
_PAIR_TASK = flags.DEFINE_enum("pair_task", "rte", ["rte", "mrpc"],
                               "Figure 2 left's pair task (with SST-2).")
_TRAIN_EXAMPLES = flags.DEFINE_integer("train_examples", 1500,
                                       "Fine-tuning examples per task (first N of train).")
_VALIDATION_EXAMPLES = flags.DEFINE_integer("validation_examples", 500,
                                            "Held out per GLUE task as the validation set.")
_EVAL_EXAMPLES = flags.DEFINE_integer("eval_examples", 0,
                                      "Score only the first N validation examples (0: all).")
_ZERO_SHOT_EXAMPLES = flags.DEFINE_integer("zero_shot_examples", 400,
                                           "Examples per zero-shot evaluation (0: all).")
_SEQUENCE_LENGTH = flags.DEFINE_integer("sequence_length", 96, "Tokens per sequence.")
_EPOCHS = flags.DEFINE_integer("epochs", 3, "Fine-tuning epochs.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Fine-tuning batch size.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 2.5e-4, "Peak learning rate.")
_WARMUP = flags.DEFINE_float("warmup_fraction", 0.1, "Warm-up fraction of the updates.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the validation splits and of every run.")
_LAYERS = flags.DEFINE_list(
    "layers", None, "Figure 2 left's layer counts besides L, the transformer's own (always "
    "run: the 'full' run); default 0..L-1.")

# task -> (folder under --data_dir, the training file's label column: a header name or,
# without a header, an index). Story Cloze is split by its own reader.
_GLUE = {
    "cola": ("glue/CoLA", 1),
    "sst2": ("sst2", "label"),
    "mrpc": ("glue/MRPC", "Quality"),
    "stsb": ("glue/STS-B", "score"),
    "rte": ("glue/RTE", "label"),
    "wnli": ("glue/WNLI", "label"),
}
_METRIC = {"cola": ("matthews_corrcoef", "Matthews"), "sst2": ("accuracy", "acc"),
           "mrpc": ("f1", "F1"), "stsb": ("pearson", "Pearson"), "rte": ("accuracy", "acc"),
           "story_cloze": ("accuracy", "acc"), "wnli": ("accuracy", "acc")}
_ROWS = (("full", "transformer w/ aux LM (full)"), ("scratch", "w/o pre-training"),
         ("no_aux", "w/o aux LM"), ("lstm", "LSTM w/ aux LM"))
# Zero-shot heuristics: (name, task whose fine-tuned score normalises it, chance).
_ZERO_SHOT = (("sst2", "sst2", 0.5), ("cola", "cola", 0.0),
              ("story_cloze", "story_cloze", 0.5), ("winograd", None, 0.5))


class DriverError(Exception):
    """An expected failure of the driver, printed as one line."""


# -- data ------------------------------------------------------------------------------


def _split_lines(source, label_column, header, validation, seed):
    """`(header, train lines, dev lines)`: seeded, identical inputs kept together."""
    with open(source, encoding="utf-8") as f:
        lines = f.read().splitlines()
    head, rows = (lines[0], lines[1:]) if header else (None, lines)
    rows = [r for r in rows if r.strip()]
    index = label_column if isinstance(label_column, int) else \
        head.lstrip("\ufeff").split("\t").index(label_column)
    groups = {}
    for row in rows:
        fields = row.split("\t")
        key = "\t".join(fields[:index] + fields[index + 1:])
        groups.setdefault(key, []).append(row)
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    dev = []
    for group in order:
        if len(dev) + len(group) <= validation:
            dev.extend(group)
    held = set(map(id, dev))
    return head, [r for r in rows if id(r) not in held], [r for r in rows if id(r) in held]


def prepare_data(data_dir, work_dir, tasks, validation, seed):
    """Checks every task's files with its reader, writes the splits; returns
    `{task: data folder}`."""
    from gpt1_keras.tasks import get_task

    dirs = {}
    for name in tasks:
        task = get_task(name)
        if name == "story_cloze":
            source_dir = os.path.join(data_dir, "story_cloze")
            for split in ("train", "dev"):
                task.read(source_dir, split)  # raises naming the file and line
            dirs[name] = source_dir
            continue
        folder, label_column = _GLUE[name]
        source_dir = os.path.join(data_dir, folder)
        task.read(source_dir, "train")  # raises naming the file and line
        out = os.path.join(work_dir, "data", name)
        if not os.path.exists(os.path.join(out, "dev.tsv")):
            head, train, dev = _split_lines(os.path.join(source_dir, "train.tsv"),
                                            label_column, name != "cola", validation, seed)
            os.makedirs(out, exist_ok=True)
            for split, rows in (("train", train), ("dev", dev)):
                with open(os.path.join(out, f"{split}.tsv"), "w", encoding="utf-8") as f:
                    f.write("\n".join(([head] if head is not None else []) + rows) + "\n")
        dirs[name] = out
    return dirs


def training_subset_dir(task, data, work_dir, examples):
    """A folder whose `dev.tsv` is the first `examples` rows of `train.tsv` (what a
    run with `max_train_examples=examples` trained on), to score training accuracy."""
    out = os.path.join(work_dir, "data", f"{task}_train{examples}")
    path = os.path.join(out, "dev.tsv")
    if not os.path.exists(path):
        with open(os.path.join(data, "train.tsv"), encoding="utf-8") as f:
            lines = f.read().splitlines()
        has_header = task != "cola"
        head = lines[:1] if has_header else []
        rows = lines[len(head):][:examples]
        os.makedirs(out, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(head + rows) + "\n")
    return out


# -- runs ------------------------------------------------------------------------------


def resolve_lm(path, flag):
    """`(model.keras, checkpoints folder or None)` of a pretrain run dir or a .keras."""
    if path is None:
        return None, None
    if os.path.isdir(path):
        run_dir, model = path, os.path.join(path, "model.keras")
    else:
        run_dir, model = os.path.dirname(os.path.abspath(path)), path
    if not os.path.isfile(model):
        raise DriverError(f"--{flag}={path}: {model} does not exist (expected a pretrain "
                          "run directory holding model.keras, or a .keras file).")
    checkpoints = os.path.join(run_dir, "checkpoints")
    return model, checkpoints if os.path.isdir(checkpoints) else None


def _read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def pretraining_rows(lms):
    """One Markdown table row per pretrained LM, read from its run's `metrics.json`
    (written by `pipelines/pretrain.py` beside `model.keras`), or a row saying it is
    missing."""
    rows = []
    for arch, model in lms:
        if model is None:
            continue
        path = os.path.join(os.path.dirname(os.path.abspath(model)), "metrics.json")
        if not os.path.exists(path):
            rows.append(f"| {arch} | `{model}`: no pretraining metrics.json beside it |"
                        + " |" * 6)
            continue
        m = _read_json(path)
        tokens = m["final_step"] * m["tokens_per_step"]
        rows.append(
            f"| {arch} | {m['preset']} ({m['parameters'] / 1e6:.2f}M) | {m['final_step']:,} "
            f"| {tokens / 1e6:.2f}M | {m['val_perplexity']:.1f} | "
            f"{m['unigram_val_perplexity']:.1f} | {m['tokens_per_second']:,.0f} | "
            f"{m['backend']}, {m['precision']} |")
    return rows


class Stages:
    """Wall time per stage of the driver, summed over its invocations (`stages.json`),
    and the machine each invocation ran on (its fp32 matmul peak, CPU, load)."""

    def __init__(self, path):
        self.path = path
        self.data = _read_json(path) if os.path.exists(path) else {"stages": {}, "machines": []}
        self._current = None
        from gpt1_keras.data import corpus

        self._write = corpus.atomic_write_text
        self.data["machines"].append(machine())
        self.save()

    def start(self, name):
        self._current = (name, time.time())
        print(f"stage: {name}", flush=True)

    def stop(self):
        name, start = self._current
        self.data["stages"][name] = self.data["stages"].get(name, 0.0) + time.time() - start
        self._current = None
        self.save()

    def save(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._write(self.path, json.dumps(self.data, indent=2))

    def table(self):
        rows = ["| stage | wall time (summed over invocations) |", "| --- | ---: |"]
        rows += [f"| {name} | {seconds / 60:.1f} min |"
                 for name, seconds in self.data["stages"].items()]
        total = sum(self.data["stages"].values())
        rows.append(f"| all | {total / 60:.1f} min |")
        rows += ["", "| invocation | CPU | cores | fp32 matmul peak (TF, 2 threads) | "
                 "load average at start |", "| --- | --- | ---: | ---: | --- |"]
        rows += [f"| {i + 1} | {m['cpu']} | {m['cores']} | {m['matmul_gflops']:.0f} GFLOP/s "
                 f"| {' '.join(m['load_average'])} |"
                 for i, m in enumerate(self.data["machines"])]
        return "\n".join(rows)


def machine():
    """This machine: CPU model, cores, TensorFlow's fp32 matmul peak, load average."""
    cpu = "unknown"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"cpu": cpu, "cores": os.cpu_count(), "matmul_gflops": common.tf_matmul_gflops(),
            "load_average": common.load_average()}


def _overrides(items):
    fields = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise DriverError(f"--pretrain_overrides: {item!r} must be key=value.")
        try:
            fields[key.strip()] = json.loads(value)
        except ValueError:
            fields[key.strip()] = value
    return fields


def pretrain_lm(architecture, work, dirs, stages, tokenizer=None):
    """Pretrains (or resumes, or reads back) the `architecture` LM of the recipe in
    `<work>/pretrain/<architecture>`, with the zero-shot probes scored at every
    validation pass; returns the run directory."""
    from gpt1_keras.training.pretraining import PretrainConfig
    from gpt1_keras.training.pretraining import pretrain

    run_dir = os.path.join(work, "pretrain", architecture)
    corpus = _CORPUS.value or os.path.join(_DATA_DIR.value, "books", "books.txt")
    if not os.path.isfile(corpus):
        raise DriverError(f"--corpus={corpus} does not exist (the pretraining text; "
                          "default: <data_dir>/books/books.txt).")
    probes = [(name, _WINOGRAD.value if name == "winograd" else dirs[task])
              for name, task, _ in _ZERO_SHOT]
    overrides = _overrides(_PRETRAIN_OVERRIDES.value)
    fields = dict(architecture=architecture, train_files=(corpus,), model_dir=run_dir,
                  seed=_SEED.value, zero_shot_probes=tuple(probes),
                  zero_shot_examples=_ZERO_SHOT_EXAMPLES.value, **overrides)
    if "preset" in fields:  # A transformer preset: the LSTM takes its equal-size one.
        from gpt1_keras.models.gpt1_presets import matching_preset

        fields["preset"] = matching_preset(fields["preset"], architecture)
    if tokenizer is not None:  # The transformer's BPE: the same tokens.
        fields.update(tokenizer=tokenizer, bpe_vocabulary_size=0)
    config = PretrainConfig.from_recipe(_PRETRAIN_RECIPE.value, **fields)
    length = _LSTM_SEQUENCE_LENGTH.value
    if architecture == "lstm" and length and not {"sequence_length", "batch_size"} & set(
            overrides):
        tokens = config.batch_size * config.sequence_length
        config = dataclasses.replace(config, sequence_length=length,
                                     batch_size=max(1, tokens // length))
    if not os.path.exists(os.path.join(run_dir, "metrics.json")):
        stages.start(f"pretraining: {architecture} LM" +
                     (" (BPE first)" if config.bpe_vocabulary_size else ""))
        pretrain(config)
        stages.stop()
    return run_dir


def history_curve(model_path):
    """`{heuristic: [(step, score)]}` from the pretraining run's history (the zero-shot
    probes scored at each validation pass), or None when it has none."""
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), "metrics.json")
    if not os.path.exists(path):
        return None
    history = _read_json(path).get("history", [])
    curve = {name: [(e["step"], e[f"zero_shot_{name}"]) for e in history
                    if f"zero_shot_{name}" in e] for name, _, _ in _ZERO_SHOT}
    return curve if all(curve.values()) else None


class Runner:
    """Fine-tunes (or reads back) runs in one process."""

    def __init__(self, work_dir, recipe):
        self.work_dir, self.recipe = work_dir, recipe
        self.commands = []
        self.trained = 0

    def finetune(self, name, **fields):
        """The metrics of run `runs/<name>`, training it when it is not finished (with
        the tokenizer saved with its `init_checkpoint`)."""
        from gpt1_keras.tasks.finetuning import FinetuneConfig
        from gpt1_keras.tasks.finetuning import finetune

        out = os.path.join(self.work_dir, "runs", name)
        config = FinetuneConfig(output_dir=out, verbose=0, **self.recipe, **fields)
        self.commands.append(_command(config))
        metrics_path = os.path.join(out, "metrics.json")
        if os.path.exists(metrics_path):
            metrics = _read_json(metrics_path)
            stored = {k: v for k, v in metrics["config"].items() if k != "verbose"}
            wanted = json.loads(json.dumps(
                {k: v for k, v in vars(config).items() if k != "verbose"}))
            if stored != wanted:
                changed = sorted(k for k in wanted if stored.get(k) != wanted[k])
                raise DriverError(f"{metrics_path} was written with other settings "
                                  f"({', '.join(changed)}); use a new --work_dir.")
            return metrics
        print(f"fine-tuning {name}", flush=True)
        self.trained += 1
        return finetune(config)

    def score_on(self, name, data_dir):
        """The finished run `name` scored on `data_dir`'s labelled split (reused)."""
        from gpt1_keras.tasks.finetuning import evaluate_run

        out = os.path.join(self.work_dir, "runs", name)
        self.commands.append(f"python pipelines/finetune.py --eval_only --output_dir={out} "
                             f"--eval_data_dir={data_dir}")
        # `evaluate_run` writes eval_metrics.json (the latest folder scored); a copy per
        # folder lets a run scored on two folders be read back for both.
        key = hashlib.sha256(os.path.abspath(data_dir).encode()).hexdigest()[:16]
        path = os.path.join(out, "driver_scores", f"{key}.json")
        if os.path.exists(path):
            return _read_json(path)
        result = evaluate_run(out, data_dir)
        from gpt1_keras.tasks.predictions import write_metrics

        write_metrics(path, result)
        return result


def _command(config):
    """The `pipelines/finetune.py` command line of a config (non-default fields)."""
    from gpt1_keras.tasks.finetuning import FinetuneConfig

    args = []
    for field in dataclasses.fields(FinetuneConfig):
        value = getattr(config, field.name)
        if field.name == "verbose" or value == field.default:
            continue
        if isinstance(value, bool):
            args.append(f"--{field.name}" if value else f"--no{field.name}")
        else:
            args.append(f"--{field.name}={value}")
    return "python pipelines/finetune.py " + " ".join(args)


# Story Cloze's labelled test file is not given, so its runs hold a fifth of the
# reader's training part out (`validation_fraction`) instead of reading dev and test.
_STORY_CLOZE_HOLDOUT = 0.2


def _split_name(task):
    return "validation" if task == "story_cloze" else "dev"


def _task_fields(task):
    return {"validation_fraction": _STORY_CLOZE_HOLDOUT} if task == "story_cloze" else {}


def _score(metrics, task, split=None):
    return metrics["splits"][split or _split_name(task)][_METRIC[task][0]]


def mcnemar(task, data, run_a, run_b):
    """`(right only in a, right only in b, exact two-sided p)` on the validation
    predictions (`predictions/dev.tsv`, Story Cloze's `validation.tsv`)."""
    from gpt1_keras.tasks import get_task

    spec = get_task(task)
    if task == "story_cloze":
        from gpt1_keras.tasks.splits import read_train_and_holdout

        examples = read_train_and_holdout(spec, data, _STORY_CLOZE_HOLDOUT, _SEED.value)[1]
    else:
        examples = spec.read(data, "dev")
    gold = [spec.format_prediction(label) for label in examples.labels]
    right = []
    for run in (run_a, run_b):
        with open(os.path.join(run, "predictions", f"{_split_name(task)}.tsv"),
                  encoding="utf-8") as f:
            predicted = [line.split("\t")[1] for line in f.read().splitlines()[1:]]
        right.append([p == str(g) for p, g in zip(predicted, gold, strict=False)])
    if len(right[0]) != len(right[1]):
        raise DriverError(f"{run_a} and {run_b} predicted different numbers of examples.")
    return common.mcnemar(*right)


# -- zero-shot over checkpoints --------------------------------------------------------


def checkpoint_steps(checkpoints):
    from gpt1_keras.training.checkpointing import CheckpointManager

    return CheckpointManager(checkpoints, is_chief=False).steps() if checkpoints else []


def zero_shot_curve(runner, arch, model_path, checkpoints, dirs, examples):
    """`{heuristic: [(step, score)]}` over the run's checkpoints (reused per step)."""
    from gpt1_keras.evaluation.zero_shot import evaluate_zero_shot
    from gpt1_keras.models import GPT1CausalLM
    from gpt1_keras.saving import load_model_file
    from gpt1_keras.tasks.predictions import write_metrics
    from gpt1_keras.tokenizers import GPT1Tokenizer
    from gpt1_keras.training.checkpointing import CheckpointManager

    curve = {name: [] for name, _, _ in _ZERO_SHOT}
    lm = None
    for step in checkpoint_steps(checkpoints):
        loaded = False
        for name, task, _ in _ZERO_SHOT:
            out = os.path.join(runner.work_dir, "zero_shot", arch, f"step{step}", name)
            path = os.path.join(out, "metrics.json")
            if not os.path.exists(path):
                if lm is None:
                    lm = load_model_file(model_path, expected=GPT1CausalLM, what=model_path)
                if not loaded:
                    CheckpointManager(checkpoints, is_chief=False).restore_model_weights(step, lm)
                    loaded = True
                print(f"zero-shot {arch} step {step} {name}", flush=True)
                data = _WINOGRAD.value if name == "winograd" else dirs[task]
                tokenizer = lm.preprocessor.tokenizer if lm.preprocessor else GPT1Tokenizer()
                result = evaluate_zero_shot(lm, tokenizer, name, data, "dev",
                                            examples)
                result.pop("ids"), result.pop("predictions")
                write_metrics(path, {**result, "checkpoint": step, "data_dir": data})
            metric = "matthews_corrcoef" if name == "cola" else "accuracy"
            curve[name].append((step, _read_json(path)[metric]))
        for name, task, _ in _ZERO_SHOT:
            data = _WINOGRAD.value if name == "winograd" else dirs[task]
            runner.commands.append(
                f"evaluate_zero_shot(<{model_path} with the weights of "
                f"{checkpoints}/ckpt-{step:09d}.npz>, <its tokenizer>, {name!r}, {data!r}, "
                f"'dev', {examples})")
    return curve


# -- report ----------------------------------------------------------------------------


def _cell(value, digits=1):
    return "-" if value is None else f"{100 * value:.{digits}f}"


def _plot_layers(path, layer_scores):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(layer_scores), figsize=(5 * len(layer_scores), 3.6))
    axes = axes if len(layer_scores) > 1 else [axes]
    for ax, (task, points) in zip(axes, layer_scores.items()):
        layers = [p[0] for p in points]
        ax.plot(layers, [p[1] for p in points], "o-", label="validation")
        ax.plot(layers, [p[2] for p in points], "s--", label="training")
        ax.set_xlabel("layers transferred")
        ax.set_ylabel(_METRIC[task][1])
        ax.set_title(task)
        ax.set_xticks(layers)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_zero_shot(path, curves):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for arch, style in (("transformer", "-"), ("lstm", "--")):
        for i, (name, points) in enumerate(curves.get(arch, {}).items()):
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], style, marker="o",
                        color=f"C{i}", label=f"{name} ({arch})")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("pretraining updates")
    ax.set_ylabel("normalised zero-shot score")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv):
    del argv
    if _CALLER_DIR:
        os.chdir(_CALLER_DIR)
    if not _WORK_DIR.value:
        raise DriverError("--work_dir is required.")
    work = os.path.abspath(_WORK_DIR.value)
    stages = Stages(os.path.join(work, "stages.json"))
    tasks = list(_TASKS.value)
    unknown = [t for t in tasks if t not in _METRIC]
    if unknown:
        raise DriverError(f"--tasks: unknown {unknown}; known: {sorted(_METRIC)}.")
    fig_tasks = ["sst2", _PAIR_TASK.value]
    stages.start("data")
    dirs = prepare_data(_DATA_DIR.value, work, sorted(set(tasks + fig_tasks + ["cola"])),
                        _VALIDATION_EXAMPLES.value, _SEED.value)
    stages.stop()

    # The language models: given, or pretrained here (the transformer learns the BPE
    # first; the LSTM trains on the same BPE and recipe). Interrupted runs resume.
    transformer_run = _TRANSFORMER_LM.value
    if transformer_run is None:
        transformer_run = pretrain_lm("transformer", work, dirs, stages)
    lstm_run = _LSTM_LM.value
    if lstm_run is None and _TRANSFORMER_LM.value is None:
        lstm_run = pretrain_lm("lstm", work, dirs, stages, tokenizer=os.path.join(
            transformer_run, "tokenizer"))
    transformer, transformer_ckpts = resolve_lm(transformer_run, "transformer_lm")
    lstm, lstm_ckpts = resolve_lm(lstm_run, "lstm_lm")
    recipe = dict(sequence_length=_SEQUENCE_LENGTH.value, epochs=_EPOCHS.value,
                  batch_size=_BATCH_SIZE.value, learning_rate=_LEARNING_RATE.value,
                  warmup_fraction=_WARMUP.value, seed=_SEED.value,
                  max_train_examples=_TRAIN_EXAMPLES.value,
                  max_eval_examples=_EVAL_EXAMPLES.value)
    runner = Runner(work, recipe)

    # Table 5.
    stages.start("Table 5 fine-tuning")
    row_fields = {"full": dict(init_checkpoint=transformer),
                  "scratch": dict(init_checkpoint=transformer, no_pretraining=True),
                  "no_aux": dict(init_checkpoint=transformer, lm_coef=0.0),
                  "lstm": dict(init_checkpoint=lstm)}
    scores, not_run, mcnemar_cells = {}, {}, {}
    for row, _ in _ROWS:
        if row == "lstm" and lstm is None:
            not_run[row] = "not run: no LSTM checkpoint given (--lstm_lm)"
            continue
        for task in tasks:
            metrics = runner.finetune(f"{row}/{task}", task=task, data_dir=dirs[task],
                                      **row_fields[row], **_task_fields(task))
            scores.setdefault(row, {})[task] = _score(metrics, task)
        if row != "full":
            for task in tasks:
                if task != "stsb":
                    mcnemar_cells.setdefault(row, {})[task] = mcnemar(
                        task, dirs[task], os.path.join(work, "runs", row, task),
                        os.path.join(work, "runs", "full", task))

    stages.stop()

    # Every Table-5 run on other labelled splits (`finetune --eval_only`).
    other = {}
    if _SCORE_ON.value:
        for row in scores:
            for task in tasks:
                folder = "story_cloze" if task == "story_cloze" else _GLUE[task][0]
                result = runner.score_on(f"{row}/{task}", os.path.join(_SCORE_ON.value, folder))
                split, values = next(iter(result["splits"].items()))
                other.setdefault(row, {})[task] = (split, values[_METRIC[task][0]])

    # Figure 2 left.
    from gpt1_keras.saving import load_model_file

    total_layers = len(load_model_file(transformer, what="--transformer_lm")
                       .backbone.transformer_layers)
    layer_counts = sorted({int(v) for v in _LAYERS.value or range(total_layers)}
                          | {total_layers})
    layer_scores = {}
    stages.start("Figure 2 left fine-tuning")
    for task in fig_tasks:
        subset = training_subset_dir(task, dirs[task], work, _TRAIN_EXAMPLES.value)
        for n in layer_counts:
            name = f"full/{task}" if n == total_layers else f"layers{n}/{task}"
            fields = dict(init_checkpoint=transformer, task=task, data_dir=dirs[task])
            if n != total_layers:
                fields["layers_to_transfer"] = n
            validation = _score(runner.finetune(name, **fields), task)
            training = _score(runner.score_on(name, subset), task)
            layer_scores.setdefault(task, []).append((n, validation, training))
    stages.stop()

    # Figure 2 right.
    best = {task: max(scores[row][task] for row in scores if task in scores[row])
            for task in set(t for _, t, _ in _ZERO_SHOT if t) if any(
                task in scores[row] for row in scores)}
    raw_curves, curves = {}, {}
    for arch, model, ckpts in (("transformer", transformer, transformer_ckpts),
                               ("lstm", lstm, lstm_ckpts)):
        history = history_curve(model) if model is not None else None
        if model is None or (ckpts is None and not history):
            continue
        stages.start(f"Figure 2 right ({arch})")
        raw_curves[arch] = (history or
                            zero_shot_curve(runner, arch, model, ckpts, dirs,
                                            _ZERO_SHOT_EXAMPLES.value))
        stages.stop()
        curves[arch] = {}
        for name, task, chance in _ZERO_SHOT:
            top = best.get(task, 1.0) if task else 1.0
            curves[arch][name] = [(s, (v - chance) / (top - chance) if top != chance else 0.0)
                                  for s, v in raw_curves[arch][name]]

    stages.save()
    write_report(_OUTPUT.value, tasks, scores, not_run, mcnemar_cells, layer_scores,
                 raw_curves, curves, best, runner, recipe, other,
                 pretraining_rows((("transformer", transformer), ("lstm", lstm))), stages)
    print(f"Wrote {_OUTPUT.value} ({runner.trained} runs trained now, the rest reused)")


def write_report(output, tasks, scores, not_run, mcnemar_cells, layer_scores, raw_curves,
                 curves, best, runner, recipe, other, pretrained, stages):
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    stem = os.path.splitext(os.path.basename(output))[0]
    left_png, right_png = f"{stem}_figure2_left.png", f"{stem}_figure2_right.png"
    _plot_layers(os.path.join(folder, left_png), layer_scores)
    _plot_zero_shot(os.path.join(folder, right_png), curves)

    head = "| method | " + " | ".join(f"{t} ({_METRIC[t][1]})" for t in tasks) + \
        " | average | diff. to full |"
    lines = [head, "| --- |" + " ---: |" * (len(tasks) + 2)]
    full_avg = None
    for row, label in _ROWS:
        if row in not_run:
            lines.append(f"| {label} | {not_run[row]} |" + " |" * (len(tasks) + 1))
            continue
        values = [scores[row][t] for t in tasks]
        avg = sum(values) / len(values)
        full_avg = avg if row == "full" else full_avg
        diff = "" if row == "full" else f"{100 * (avg - full_avg):+.1f}"
        lines.append(f"| {label} | " + " | ".join(_cell(v) for v in values) +
                     f" | {_cell(avg)} | {diff} |")
    table5 = "\n".join(lines)

    mc_lines = ["| row vs full | " + " | ".join(t for t in tasks if t != "stsb") + " |",
                "| --- |" + " ---: |" * len([t for t in tasks if t != "stsb"])]
    for row, label in _ROWS:
        if row in mcnemar_cells:
            mc_lines.append(f"| {label} | " + " | ".join(
                f"{a} / {b}, p = {p:.2g}" for a, b, p in
                (mcnemar_cells[row][t] for t in tasks if t != "stsb")) + " |")
    mc_table = "\n".join(mc_lines)

    other_text = ""
    if other:
        other_lines = ["| method | " + " | ".join(tasks) + " |",
                       "| --- |" + " ---: |" * len(tasks)]
        for row, label in _ROWS:
            if row in other:
                other_lines.append(f"| {label} | " + " | ".join(
                    f"{_cell(other[row][t][1])} ({other[row][t][0]})" for t in tasks) + " |")
        other_text = (f"\nThe same runs scored on `--score_on={_SCORE_ON.value}` (split in "
                      "parentheses), without retraining:\n\n" + "\n".join(other_lines) + "\n")
    left_lines = ["| task | layers | validation | training |", "| --- | ---: | ---: | ---: |"]
    for task, points in layer_scores.items():
        left_lines += [f"| {task} ({_METRIC[task][1]}) | {n} | {_cell(v)} | {_cell(t)} |"
                       for n, v, t in points]

    right_lines = ["| LM | updates | " + " | ".join(n for n, _, _ in _ZERO_SHOT) + " |",
                   "| --- | ---: |" + " ---: |" * len(_ZERO_SHOT)]
    for arch, curve in raw_curves.items():
        steps = [s for s, _ in curve["sst2"]]
        for i, step in enumerate(steps):
            right_lines.append(f"| {arch} | {step} | " + " | ".join(
                f"{_cell(curve[n][i][1])} ({curves[arch][n][i][1]:+.2f})"
                for n, _, _ in _ZERO_SHOT) + " |")
    if not raw_curves:
        right_lines.append("| not run: no pretraining checkpoints found |" + " |" * 5)
    missing_lstm = "" if "lstm" in raw_curves else \
        "\nLSTM curve: not run (no LSTM pretrain run with checkpoints given).\n"
    norm = ", ".join(f"{t} {_cell(v)}" for t, v in sorted(best.items()))
    recipe_text = ", ".join(f"`{k}={v}`" for k, v in recipe.items())
    commands = "\n".join(dict.fromkeys(runner.commands))
    text = f"""# Reproducing GPT-1's Table 5 and Figure 2 at small scale

Written by `bench/paper/reproduce.py` from its run artifacts (every number below is
read from a run's `metrics.json`, `eval_metrics.json` or predictions). Validation sets
are held out of each GLUE training file (`--validation_examples` per task, seeded);
Story Cloze's validation set is a seeded fifth held out of its reader's training
part of the 2016 validation file (its zero-shot score: the reader's `dev` fifth).
Every fine-tuning run:
{recipe_text}
and the paper's recipe for the rest (see the driver's docstring for where and why it
differs).

Command: `PYTHONPATH=. .venv/bin/python bench/paper/reproduce.py {' '.join(sys.argv[1:])}`

## Stages and machine

{stages.table()}

## The pretrained language models

From each LM's pretraining run (`metrics.json`; tokens = updates x tokens per
update; perplexities on its held-out validation text, the unigram baseline on the
same tokens):

| LM | preset (parameters) | updates | tokens | val. perplexity | unigram | tokens/s | backend |
| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |
{chr(10).join(pretrained)}

## Table 5 (validation scores, x100)

{table5}

McNemar's exact test on the validation predictions (examples right only in the row /
only in "full", two-sided p):

{mc_table}
{other_text}
## Figure 2 left: layers transferred

![Figure 2 left]({left_png})

{chr(10).join(left_lines)}

## Figure 2 right: zero-shot score along pretraining

Raw score x100 (normalised `(score - chance) / (best fine-tuned - chance)` in
parentheses; best fine-tuned: {norm or '-'}; Winograd: against 1.0).

![Figure 2 right]({right_png})

{chr(10).join(right_lines)}
{missing_lstm}
## Runs

Each fine-tuning run as the equivalent `pipelines/finetune.py` command (the driver
calls the same library functions in one process); the zero-shot scores are those
the pretraining runs' `ZeroShotProbes` wrote to their history at each validation pass
(`pipelines/pretrain.py --zero_shot_probes`), or, for a given LM without them,
`gpt1_keras.evaluation.zero_shot.evaluate_zero_shot` calls (what
`pipelines/evaluate.py --zero_shot` runs) on each pretraining checkpoint's weights.

```
{commands}
```
"""
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)


def _guarded(argv):
    from gpt1_keras.errors import UserError

    try:
        main(argv)
    except (DriverError, UserError, FileNotFoundError, NotADirectoryError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"ERROR: {first}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    cli.run(_guarded)
