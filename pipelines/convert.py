r"""Converts released GPT-1 weights into a `.keras` language model.

Usage:
  bazel run //pipelines:convert -- --source_format=hf \
      --input=/path/to/openai-gpt --output=/tmp/gpt1.keras
  bazel run //pipelines:convert -- --source_format=openai \
      --input=/path/to/finetune-transformer-lm/model --output=/tmp/gpt1.keras
"""

import dataclasses
import os

from absl import flags
from absl import logging

from gpt1_keras import cli
from gpt1_keras.errors import ConfigError

_SOURCE_FORMAT = flags.DEFINE_enum(
    "source_format", "hf", ["hf", "openai"],
    "hf: a Hugging Face OpenAIGPT* checkpoint (.safetensors/.bin file or directory); "
    "openai: the original release (params_shapes.json + params_0..9.npy).",
)
_INPUT = flags.DEFINE_string("input", None, "Checkpoint file or directory.")
_OUTPUT = flags.DEFINE_string("output", None, "Where to write the .keras model.")
_PRESET = flags.DEFINE_string(
    "preset", None,
    "Architecture preset (default: config.json for hf, gpt1 for openai).",
)
_NUM_SPECIAL_TOKENS = flags.DEFINE_integer(
    "num_special_tokens", 3,
    "Vocabulary rows added for _start_, _delimiter_, _classify_.",
)


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
    source_format: str
    input: str
    output: str
    preset: str | None
    num_special_tokens: int


def parse_flags():
    """Validates the flags into a `ConvertConfig`, naming the flag at fault."""
    if not _INPUT.value:
        raise ConfigError("--input is required: the checkpoint file or directory.")
    if not os.path.exists(_INPUT.value):
        raise ConfigError(f"--input={_INPUT.value} does not exist.")
    if not _OUTPUT.value or not _OUTPUT.value.endswith(".keras"):
        raise ConfigError(f"--output must be a path ending in .keras. Received: {_OUTPUT.value!r}")
    if os.path.isdir(_OUTPUT.value):
        raise ConfigError(f"--output={_OUTPUT.value} is a directory; pass a file path.")
    if _NUM_SPECIAL_TOKENS.value < 0:
        raise ConfigError(f"--num_special_tokens must be >= 0. Received: {_NUM_SPECIAL_TOKENS.value}")
    if _PRESET.value is not None:
        from gpt1_keras.models import backbone_presets

        if _PRESET.value not in backbone_presets:
            raise ConfigError(f"--preset must be one of {sorted(backbone_presets)}. "
                              f"Received: {_PRESET.value!r}")
    return ConvertConfig(
        source_format=_SOURCE_FORMAT.value,
        input=_INPUT.value,
        output=_OUTPUT.value,
        preset=_PRESET.value,
        num_special_tokens=_NUM_SPECIAL_TOKENS.value,
    )


def main(argv):
    del argv
    config = parse_flags()
    from gpt1_keras.checkpoint_conversion import load_pretrained_lm
    from gpt1_keras.saving import atomic_save_model

    lm = load_pretrained_lm(
        config.source_format, config.input, config.num_special_tokens, config.preset
    )
    # Written beside the target, then renamed: an interrupted run leaves no torn file.
    atomic_save_model(lm, config.output)
    logging.info(
        "Wrote %s (%d parameters, vocabulary %d).",
        config.output, lm.count_params(), lm.backbone.vocabulary_size,
    )


def console_main():
    """The `gpt1-convert` console script."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
