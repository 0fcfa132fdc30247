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

from absl import flags

from gpt1_keras import cli
from gpt1_keras.errors import ConfigError
from gpt1_keras.evaluation.zero_shot import HEURISTICS

_ZERO_SHOT = flags.DEFINE_enum("zero_shot", None, HEURISTICS, "The heuristic.")
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
    """Validates the flags into an `EvaluateConfig`, naming the flag at fault."""
    for flag in (_ZERO_SHOT, _DATA_DIR, _OUTPUT_DIR):
        if not flag.value:
            raise ConfigError(f"--{flag.name} is required.")
    if bool(_CHECKPOINT.value) == bool(_PRESET.value):
        raise ConfigError("Give exactly one of --checkpoint (a .keras LM) or --preset.")
    if _CHECKPOINT.value and not os.path.exists(_CHECKPOINT.value):
        raise ConfigError(f"--checkpoint={_CHECKPOINT.value} does not exist.")
    if _PRESET.value:
        from gpt1_keras.models import backbone_presets

        if _PRESET.value not in backbone_presets:
            raise ConfigError(f"--preset must be one of {sorted(backbone_presets)}. "
                              f"Received: {_PRESET.value!r}")
    if not os.path.isdir(_DATA_DIR.value):
        raise ConfigError(f"--data_dir={_DATA_DIR.value} is not a directory.")
    if os.path.exists(_OUTPUT_DIR.value) and not os.path.isdir(_OUTPUT_DIR.value):
        raise ConfigError(f"--output_dir={_OUTPUT_DIR.value} exists and is not a directory.")
    for flag, low in ((_MAX_EXAMPLES, 0), (_BATCH_SIZE, 1)):
        if flag.value < low:
            raise ConfigError(f"--{flag.name} must be >= {low}. Received: {flag.value}")
    return EvaluateConfig(_ZERO_SHOT.value, _DATA_DIR.value, _CHECKPOINT.value,
                          _PRESET.value, _SPLIT.value, _OUTPUT_DIR.value,
                          _MAX_EXAMPLES.value, _BATCH_SIZE.value)


def run(config, tokenizer=None):
    """Loads the LM, runs the heuristic, writes the outputs; returns the metrics."""
    from gpt1_keras.evaluation.zero_shot import evaluate_zero_shot
    from gpt1_keras.models import GPT1CausalLM
    from gpt1_keras.saving import load_model_file
    from gpt1_keras.tasks.predictions import write_metrics
    from gpt1_keras.tasks.predictions import write_predictions

    if config.checkpoint:
        lm = load_model_file(config.checkpoint, expected=GPT1CausalLM,
                             what="--checkpoint")
    else:
        lm = GPT1CausalLM.from_architecture(config.preset)
    if tokenizer is None:  # The model's own (saved with it by pretraining), else GPT-1's.
        from gpt1_keras.tokenizers import GPT1Tokenizer
        tokenizer = lm.preprocessor.tokenizer if lm.preprocessor is not None else GPT1Tokenizer()
    lm.backbone.check_tokenizer(tokenizer, f"tokenizer of --checkpoint={config.checkpoint}")
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


def console_main():
    """The `gpt1-evaluate` console script."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
