r"""Exports a fine-tuned classifier or a language model as a TF Serving SavedModel.

Usage:
  bazel run //pipelines:export -- --model_dir=/runs/rte --export_dir=/models/rte
  bazel run //pipelines:export -- --model_dir=/tmp/gpt1_keras/pretrain \
      --export_dir=/models/gpt1_lm --max_new_tokens_limit=128
  bazel run //pipelines:export -- --model_dir=/runs/reviews --export_dir=/models/reviews \
      --label_names=negative,positive        # --task=csv runs record no label names

--model_dir is a directory from //pipelines:finetune or //pipelines:pretrain (or a
`.keras` file). Writes `<export_dir>/<version>/` (the next free version unless
--version is given) with signatures that take raw strings: `serving_default` for a
classifier; `score`, `score_continuation` and `generate` for a language model. See
docs/serving.md for running it under TF Serving.

The export always runs on the Keras TensorFlow backend (a SavedModel is a TensorFlow
graph); the model file itself may come from any backend.
"""

import dataclasses
import os

from absl import flags

from gpt1_keras import cli
from gpt1_keras.errors import ConfigError

_MODEL_DIR = flags.DEFINE_string(
    "model_dir", None, "A finetune/pretrain output directory (holding model.keras) "
    "or a .keras file.")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "The model base path; the SavedModel goes to <export_dir>/<version>.")
_VERSION = flags.DEFINE_integer(
    "version", None, "The version number (default: one more than the highest present).")
_SEQUENCE_LENGTH = flags.DEFINE_integer(
    "sequence_length", None, "Classifiers: tokens per sequence (default: as fine-tuned).")
_LABEL_NAMES = flags.DEFINE_list(
    "label_names", None, "Classifiers: class names (default: the fine-tuning task's).")
_MAX_NEW_TOKENS_LIMIT = flags.DEFINE_integer(
    "max_new_tokens_limit", None,
    "Language models: the most tokens one generate call adds (default: the context).")
_UTF8_ERRORS = flags.DEFINE_enum(
    "utf8_errors", None, ["strict", "replace"],
    "Invalid UTF-8 in requests: an error (strict) or U+FFFD (replace); default: the "
    "tokenizer's setting (strict).")
_WARMUP_REQUESTS = flags.DEFINE_boolean(
    "warmup_requests", None,
    "Write TF Serving's warm-up records (assets.extra/tf_serving_warmup_requests); they "
    "need the 'serving' extra. Default: when it is installed (else a warning line).")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """The flags of one export (arguments of `export_saved_model`)."""

    model_dir: str
    export_dir: str
    version: int | None = None
    sequence_length: int | None = None
    label_names: tuple | None = None
    max_new_tokens_limit: int | None = None
    utf8_errors: str | None = None
    warmup_requests: bool | None = None


def parse_flags():
    """The flags as an `ExportConfig`, naming the flag at fault."""
    for holder in (_MODEL_DIR, _EXPORT_DIR):
        if not holder.value:
            raise ConfigError(f"--{holder.name} is required.")
    if not os.path.exists(_MODEL_DIR.value):
        raise ConfigError(f"--model_dir={_MODEL_DIR.value} does not exist: pass a "
                          "finetune/pretrain output directory or a .keras file.")
    if os.path.exists(_EXPORT_DIR.value) and not os.path.isdir(_EXPORT_DIR.value):
        raise ConfigError(f"--export_dir={_EXPORT_DIR.value} exists and is not a directory.")
    for holder in (_VERSION, _SEQUENCE_LENGTH, _MAX_NEW_TOKENS_LIMIT):
        if holder.value is not None and holder.value < 1:
            raise ConfigError(f"--{holder.name} must be >= 1. Received: {holder.value}")
    return ExportConfig(
        model_dir=_MODEL_DIR.value,
        export_dir=_EXPORT_DIR.value,
        version=_VERSION.value,
        sequence_length=_SEQUENCE_LENGTH.value,
        label_names=tuple(_LABEL_NAMES.value) if _LABEL_NAMES.value else None,
        max_new_tokens_limit=_MAX_NEW_TOKENS_LIMIT.value,
        utf8_errors=_UTF8_ERRORS.value,
        warmup_requests=_WARMUP_REQUESTS.value,
    )


def main(argv):
    del argv
    config = parse_flags()
    # Before Keras is imported: the SavedModel is a TensorFlow graph.
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import json

    from gpt1_keras.export import export_saved_model
    from gpt1_keras.export.saved_model_export import EXPORT_INFO_FILE

    kwargs = dataclasses.asdict(config)
    model_dir = kwargs.pop("model_dir")
    try:
        path = export_saved_model(model_dir, **kwargs)
    except (ValueError, FileNotFoundError) as e:
        # The export library checks its arguments (a classifier flag for a language
        # model, ...) with ValueErrors of its own: those are the user's to fix.
        if not _raised_by_export_library(e):
            raise
        raise ConfigError(str(e)) from e
    with open(os.path.join(path, "assets.extra", EXPORT_INFO_FILE), encoding="utf-8") as f:
        info = json.load(f)
    print(f"Exported {info['model_class']} to {path}")
    for name, signature in sorted(info["signatures"].items()):
        inputs = ", ".join(f"{k}: {v['dtype']}{v['shape']}"
                           for k, v in sorted(signature["inputs"].items()))
        outputs = ", ".join(sorted(signature["outputs"]))
        print(f"  {name}({inputs}) -> {outputs}")


def _raised_by_export_library(e):
    tb = e.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "")
    return module.startswith("gpt1_keras.export")


def console_main():
    """The `gpt1-export` console script."""
    cli.run(main)


if __name__ == "__main__":
    console_main()
