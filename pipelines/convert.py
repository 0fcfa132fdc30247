r"""Converts released GPT-1 weights into a `.keras` language model.

Usage:
  bazel run //pipelines:convert -- --source_format=hf \
      --input=/path/to/openai-gpt --output=/tmp/gpt1.keras
  bazel run //pipelines:convert -- --source_format=openai \
      --input=/path/to/finetune-transformer-lm/model --output=/tmp/gpt1.keras
"""

import dataclasses
import os

from absl import app
from absl import flags
from absl import logging

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
        raise app.UsageError("--input is required: the checkpoint file or directory.")
    if not os.path.exists(_INPUT.value):
        raise app.UsageError(f"--input={_INPUT.value} does not exist.")
    if not _OUTPUT.value or not _OUTPUT.value.endswith(".keras"):
        raise app.UsageError(f"--output must be a path ending in .keras. Received: {_OUTPUT.value!r}")
    if _NUM_SPECIAL_TOKENS.value < 0:
        raise app.UsageError(f"--num_special_tokens must be >= 0. Received: {_NUM_SPECIAL_TOKENS.value}")
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

    lm = load_pretrained_lm(
        config.source_format, config.input, config.num_special_tokens, config.preset
    )
    os.makedirs(os.path.dirname(os.path.abspath(config.output)), exist_ok=True)
    # Write beside the target, then rename: an interrupted run leaves no torn file.
    partial = config.output + ".partial.keras"
    lm.save(partial)
    os.replace(partial, config.output)
    logging.info(
        "Wrote %s (%d parameters, vocabulary %d).",
        config.output, lm.count_params(), lm.backbone.vocabulary_size,
    )


if __name__ == "__main__":
    app.run(main)
