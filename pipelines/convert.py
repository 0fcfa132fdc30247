r"""Converts released GPT-1 weights into a `.keras` language model, and back.

`--direction=to_keras` (default) reads a Hugging Face or original-release
checkpoint and writes a `.keras` `GPT1CausalLM`; `--direction=to_hf` reads a
`.keras` `GPT1CausalLM`, `GPT1Classifier` or `GPT1Backbone` and writes a Hugging
Face `OpenAIGPT*` directory (`model.safetensors`, `config.json` and the tokenizer
files) that `transformers` loads (see `gpt1_keras.checkpoint_conversion.export_to_hf`).

Usage:
  bazel run //pipelines:convert -- --source_format=hf \
      --input=/path/to/openai-gpt --output=/tmp/gpt1.keras
  bazel run //pipelines:convert -- --source_format=openai \
      --input=/path/to/finetune-transformer-lm/model --output=/tmp/gpt1.keras
  bazel run //pipelines:convert -- --direction=to_hf \
      --input=/tmp/finetuned/model.keras --output=/tmp/gpt1_hf
"""

import dataclasses
import os

from absl import flags
from absl import logging

from gpt1_keras import cli
from gpt1_keras.errors import ConfigError

_DIRECTION = flags.DEFINE_enum(
    "direction", "to_keras", ["to_keras", "to_hf"],
    "to_keras: a released checkpoint (--source_format) -> a .keras model; "
    "to_hf: a .keras model -> a Hugging Face OpenAIGPT* directory.",
)
_SOURCE_FORMAT = flags.DEFINE_enum(
    "source_format", "hf", ["hf", "openai"],
    "hf: a Hugging Face OpenAIGPT* checkpoint (.safetensors/.bin file or directory); "
    "openai: the original release (params_shapes.json + params_0..9.npy).",
)
_INPUT = flags.DEFINE_string(
    "input", None, "Checkpoint file or directory (to_hf: the .keras model file).")
_OUTPUT = flags.DEFINE_string(
    "output", None, "Where to write the .keras model (to_hf: the Hugging Face directory).")
_PRESET = flags.DEFINE_string(
    "preset", None,
    "Architecture preset (default: config.json for hf, gpt1 for openai).",
)
_NUM_SPECIAL_TOKENS = flags.DEFINE_integer(
    "num_special_tokens", 3,
    "Vocabulary rows added for _start_, _delimiter_, _classify_.",
)
_VOCABULARY_SIZE = flags.DEFINE_integer(
    "vocabulary_size", None,
    "to_hf only: token embedding rows to write (default: all; 40478 drops "
    "_start_, _delimiter_, _classify_ as openai-gpt has them).",
)
# Flags that only one direction reads: passing one to the other is an error.
_TO_KERAS_FLAGS = ("source_format", "preset", "num_special_tokens")
_TO_HF_FLAGS = ("vocabulary_size",)


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
    direction: str
    source_format: str
    input: str
    output: str
    preset: str | None
    num_special_tokens: int
    vocabulary_size: int | None = None


def _check_direction_flags():
    direction = _DIRECTION.value
    unused = _TO_HF_FLAGS if direction == "to_keras" else _TO_KERAS_FLAGS
    for name in unused:
        if flags.FLAGS[name].present:
            raise ConfigError(f"--{name} is not used with --direction={direction}.")


def _parse_to_hf_flags():
    if not _INPUT.value:
        raise ConfigError("--input is required: the .keras model file.")
    if not os.path.exists(_INPUT.value):
        raise ConfigError(f"--input={_INPUT.value} does not exist.")
    if os.path.isdir(_INPUT.value) or not _INPUT.value.endswith(".keras"):
        raise ConfigError(
            f"--input must be a .keras model file with --direction=to_hf. "
            f"Received: {_INPUT.value!r}")
    if not _OUTPUT.value:
        raise ConfigError("--output is required: the Hugging Face directory to write.")
    if os.path.exists(_OUTPUT.value) and not os.path.isdir(_OUTPUT.value):
        raise ConfigError(f"--output={_OUTPUT.value} is a file; pass a directory.")
    if _VOCABULARY_SIZE.value is not None and _VOCABULARY_SIZE.value < 1:
        raise ConfigError(f"--vocabulary_size must be >= 1. Received: {_VOCABULARY_SIZE.value}")
    return ConvertConfig(
        direction="to_hf",
        source_format=None,
        input=_INPUT.value,
        output=_OUTPUT.value,
        preset=None,
        num_special_tokens=0,
        vocabulary_size=_VOCABULARY_SIZE.value,
    )


def parse_flags():
    """Validates the flags into a `ConvertConfig`, naming the flag at fault."""
    _check_direction_flags()
    if _DIRECTION.value == "to_hf":
        return _parse_to_hf_flags()
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
        direction="to_keras",
        source_format=_SOURCE_FORMAT.value,
        input=_INPUT.value,
        output=_OUTPUT.value,
        preset=_PRESET.value,
        num_special_tokens=_NUM_SPECIAL_TOKENS.value,
    )


def _export_to_hf(config):
    from gpt1_keras.checkpoint_conversion import export_to_hf
    from gpt1_keras.models import GPT1Backbone
    from gpt1_keras.models import GPT1CausalLM
    from gpt1_keras.models import GPT1Classifier
    from gpt1_keras.saving import load_model_file

    model = load_model_file(config.input, (GPT1Backbone, GPT1CausalLM, GPT1Classifier),
                            what="--input")
    written = export_to_hf(model, config.output, vocabulary_size=config.vocabulary_size)
    logging.info("Wrote %s.", ", ".join(written))


def main(argv):
    del argv
    config = parse_flags()
    if config.direction == "to_hf":
        _export_to_hf(config)
        return
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
