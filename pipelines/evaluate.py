r"""Evaluates a pretrained GPT-1 language model with the paper's zero-shot heuristics.

Usage:
  bazel run //pipelines:evaluate -- --zero_shot=sst2 --data_dir=/data/glue_data/SST-2 \
      --checkpoint=/models/gpt1.keras --output_dir=/runs/zero_shot
  bazel run //pipelines:evaluate -- --zero_shot=race --data_dir=/data/RACE --split=test_high ...
  bazel run //pipelines:evaluate -- --zero_shot=winograd --data_dir=/data/wsc --split=dev ...

Heuristics (paper section 5): cola (average log-probability, threshold chosen on
the training split), sst2 (`very` + `positive` vs `negative`), race and
story_cloze (average log-probability of each answer), winograd (candidate
substituted for the `_` blank; average log-probability of the rest).

Writes `metrics.json` and `predictions_<heuristic>_<split>.tsv` to --output_dir.
"""

import dataclasses
import os

from absl import app
from absl import flags

_HEURISTICS = ("cola", "sst2", "race", "story_cloze", "winograd")
_ZERO_SHOT = flags.DEFINE_enum("zero_shot", None, _HEURISTICS, "The heuristic.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "The task's files.")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, ".keras GPT1CausalLM (e.g. from //pipelines:convert).")
_PRESET = flags.DEFINE_string(
    "preset", None, "Evaluate a randomly initialised LM of this preset (a baseline).")
_SPLIT = flags.DEFINE_string("split", "dev", "The labelled split to evaluate.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where metrics.json goes.")
_MAX_EXAMPLES = flags.DEFINE_integer("max_examples", 0, "First N examples only (0: all).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Sequences per forward pass.")


@dataclasses.dataclass(frozen=True)
class EvaluateConfig:
    zero_shot: str
    data_dir: str
    checkpoint: str | None
    preset: str | None
    split: str
    output_dir: str
    max_examples: int
    batch_size: int


def parse_flags():
    for flag in (_ZERO_SHOT, _DATA_DIR, _OUTPUT_DIR):
        if not flag.value:
            raise app.UsageError(f"--{flag.name} is required.")
    if bool(_CHECKPOINT.value) == bool(_PRESET.value):
        raise app.UsageError("Give exactly one of --checkpoint (a .keras LM) or --preset.")
    if _CHECKPOINT.value and not os.path.exists(_CHECKPOINT.value):
        raise app.UsageError(f"--checkpoint={_CHECKPOINT.value} does not exist.")
    return EvaluateConfig(_ZERO_SHOT.value, _DATA_DIR.value, _CHECKPOINT.value,
                          _PRESET.value, _SPLIT.value, _OUTPUT_DIR.value,
                          _MAX_EXAMPLES.value, _BATCH_SIZE.value)


def run(config, tokenizer=None):
    """Loads the LM, runs the heuristic, writes the outputs; returns the metrics."""
    import keras

    from gpt1_keras.evaluation.zero_shot import evaluate_zero_shot
    from gpt1_keras.models import GPT1CausalLM
    from gpt1_keras.tasks.predictions import write_metrics
    from gpt1_keras.tasks.predictions import write_predictions

    if tokenizer is None:
        from gpt1_keras.tokenizers import GPT1Tokenizer
        tokenizer = GPT1Tokenizer()
    if config.checkpoint:
        lm = keras.saving.load_model(config.checkpoint, compile=False)
    else:
        lm = GPT1CausalLM.from_preset(config.preset)
    result = evaluate_zero_shot(lm, tokenizer, config.zero_shot, config.data_dir,
                                config.split, config.max_examples, config.batch_size)
    ids, predictions = result.pop("ids"), result.pop("predictions")
    write_predictions(
        os.path.join(config.output_dir,
                     f"predictions_{config.zero_shot}_{config.split}.tsv"),
        ids, predictions)
    write_metrics(os.path.join(config.output_dir, "metrics.json"),
                  {**result, "config": dataclasses.asdict(config)})
    return result


def main(argv):
    del argv
    result = run(parse_flags())
    print(", ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    app.run(main)
