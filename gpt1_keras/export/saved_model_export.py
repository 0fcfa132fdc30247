"""`export_saved_model`: a fine-tuned classifier or a language model as a TF Serving
SavedModel whose signatures take raw strings.

TensorFlow-only module; the export runs on the Keras TensorFlow backend (the
`.keras` model files themselves are backend-independent). Writes
`export_dir/<version>/`, the layout TF Serving's `--model_base_path` expects:
the new version appears in one rename, so a server polling `export_dir` never
sees half a model. The SavedModel is built under a hidden name; the version number
is then picked and the rename done holding `RunLock(export_dir, "export")` (waiting
for another export's turn), so concurrent exports never pick the same version.

| model | signatures |
| --- | --- |
| `GPT1Classifier` | `serving_default` (+ `with_question` for multiple choice), see `ClassifierServingModule` |
| `GPT1CausalLM` | `score` (also `serving_default`), `score_continuation`, `generate`, see `CausalLMServingModule` |

Besides the SavedModel, `assets.extra/` holds `gpt1_keras_export.json`, what was
exported (model class, task, label names, sequence length, signatures), and
`tf_serving_warmup_requests`, TF Serving's warm-up records: a realistic request
for every signature (`warmup_requests()` of the serving module), replayed by the
server when it loads the version so that its first client request is not the one
that pays for the graph optimisation (`serving_utils.write_warmup_requests`; they need
the `serving` extra, `pip install 'gpt1-keras[serving]'`). `docs/serving.md` shows
requests and responses.
"""

import json
import os
import re
import shutil

import keras
import tensorflow as tf
from absl import logging

from gpt1_keras import extras
from gpt1_keras.errors import ConfigError
from gpt1_keras.export.serving_utils import WARMUP_FILE
from gpt1_keras.export.serving_utils import write_warmup_requests
from gpt1_keras.run_lock import RunLock

MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
EXPORT_INFO_FILE = "gpt1_keras_export.json"


def export_saved_model(
    model_or_path,
    export_dir,
    version=None,
    tokenizer=None,
    sequence_length=None,
    label_names=None,
    max_new_tokens_limit=None,
    utf8_errors=None,
    warmup_requests=None,
):
    """Writes a versioned SavedModel with raw-string signatures for TF Serving.

    Args:
        model_or_path: a `GPT1Classifier` or `GPT1CausalLM`, a `.keras` file
            holding one, or a model directory holding `model.keras` (from
            `//pipelines:finetune` or `//pipelines:pretrain`). A directory's
            `metrics.json` (written by fine-tuning) supplies the task name (and
            the sequence length of a classifier without a preprocessor).
        export_dir: the model base path; the SavedModel goes to
            `export_dir/<version>/`.
        version: a positive int; default: one more than the highest version
            already in `export_dir` (1 for a new one). An existing version is
            never overwritten.
        tokenizer: default: the model's preprocessor's tokenizer (fine-tuning and
            pretraining save the model with it), else `GPT1Tokenizer()`. Its id
            count must be the model's `vocabulary_size`.
        sequence_length: classifiers only: tokens per sequence; default: the
            preprocessor's, else `metrics.json`'s, else the backbone's
            `max_sequence_length`.
        label_names: classifiers only: class names for the `label_name` output;
            default: the classifier's preprocessor's `label_names` (fine-tuning
            stores the task's, `--task=csv` included).
        max_new_tokens_limit: language models only: the most tokens one
            `generate` call adds per prompt (default: `max_sequence_length`).
        utf8_errors: `None` (the tokenizer's own setting; `GPT1Tokenizer`
            defaults to `"strict"`: invalid UTF-8 is an `InvalidArgument`
            error), `"strict"` or `"replace"` (invalid bytes become U+FFFD).
        warmup_requests: write TF Serving's warm-up records. `None` (default):
            when the `serving` extra is installed, else one warning line naming
            it; `True`: required (`MissingExtraError` without the extra);
            `False`: never.

    Returns:
        The version directory written, `export_dir/<version>`.

    Raises:
        ValueError: not on the TensorFlow backend, an unsupported model, bad
            arguments, or an existing `version` (each message names the value).
        FileNotFoundError: `model_or_path` holds no model.

    Example:
    >>> export_saved_model("/runs/sst2", "/models/sst2")
    '/models/sst2/1'
    """
    from gpt1_keras.export.causal_lm_serving import CausalLMServingModule
    from gpt1_keras.export.classifier_serving import ClassifierServingModule
    from gpt1_keras.models import GPT1CausalLM
    from gpt1_keras.models import GPT1Classifier

    if keras.backend.backend() != "tensorflow":
        raise ValueError(
            "SavedModel export builds a TensorFlow graph: run it with "
            f"KERAS_BACKEND=tensorflow. Received: backend={keras.backend.backend()!r}")
    if warmup_requests is None:
        warmup_requests = extras.available("tensorflow_serving")
        if not warmup_requests:
            logging.warning("No TF Serving warm-up records in this export: they need the "
                            "'serving' extra (%s).", extras.install_hint("tensorflow_serving"))
    elif warmup_requests:
        extras.require("tensorflow_serving", "Writing TF Serving warm-up records")
    model, source, metadata = load_model(model_or_path)
    if utf8_errors not in (None, "strict", "replace"):
        raise ValueError(
            "`utf8_errors` must be None, 'strict' or 'replace'. Received: "
            f"utf8_errors={utf8_errors!r}")

    info = {"source": source, "model_class": type(model).__name__}
    if isinstance(model, GPT1Classifier):
        if max_new_tokens_limit is not None:
            raise ValueError("`max_new_tokens_limit` is for language models; "
                             f"{source} holds a GPT1Classifier.")
        preprocessor = _classifier_preprocessor(model, tokenizer, sequence_length,
                                                utf8_errors, metadata)
        tokenizer = preprocessor.tokenizer
        model.backbone.check_tokenizer(tokenizer)
        sequence_length = preprocessor.sequence_length
        module = ClassifierServingModule(model, preprocessor, label_names)
        info.update(head=model.head, fine_tuning_task=metadata.get("task"),
                    num_classes=model.num_classes, sequence_length=sequence_length,
                    label_names=module.label_names)
    elif isinstance(model, GPT1CausalLM):
        for name, value in (("sequence_length", sequence_length),
                            ("label_names", label_names)):
            if value is not None:
                raise ValueError(
                    f"`{name}` is for classifiers; {source} holds a GPT1CausalLM "
                    f"(it reads up to max_sequence_length tokens). Received: {name}={value!r}")
        if tokenizer is None and model.preprocessor is not None:
            tokenizer = model.preprocessor.tokenizer  # Saved with it by pretraining.
        tokenizer = _tokenizer(tokenizer, utf8_errors)
        model.backbone.check_tokenizer(tokenizer)
        module = CausalLMServingModule(model, tokenizer, max_new_tokens_limit)
        info.update(context=module.context, max_new_tokens_limit=module.max_new_tokens_limit)
    else:
        raise ValueError(
            f"{source} holds a {type(model).__name__}; export takes a GPT1Classifier "
            "or a GPT1CausalLM.")

    signatures = module.signatures()
    info["signatures"] = {name: _describe(fn) for name, fn in signatures.items()}
    info["utf8_errors"] = getattr(tokenizer, "errors", None)
    info["warmup_requests"] = bool(warmup_requests)
    return _write_version(module, signatures, info, export_dir, version)


def load_model(model_or_path):
    """The model to export, where it came from, and what its directory says.

    Returns:
        `(model, source, metadata)`; `metadata` may hold `task` and
        `sequence_length` (from a fine-tuning `metrics.json`).
    """
    import gpt1_keras.models  # noqa: F401  (registers the classes with Keras)

    if not isinstance(model_or_path, (str, os.PathLike)):
        return model_or_path, f"<{type(model_or_path).__name__} object>", {}
    path = os.fspath(model_or_path)
    if os.path.isdir(path):
        directory, file = path, os.path.join(path, MODEL_FILE)
        if not os.path.isfile(file):
            raise FileNotFoundError(
                f"{path} is a directory without {MODEL_FILE} (expected a model "
                f"directory from //pipelines:finetune or :pretrain). It holds: "
                f"{sorted(os.listdir(path))[:20]}")
    elif os.path.isfile(path):
        directory, file = os.path.dirname(path), path
    else:
        raise FileNotFoundError(f"No model at {path}: neither a .keras file nor a directory.")
    from gpt1_keras.saving import load_model_file

    model = load_model_file(file, what="model file")
    return model, file, _read_metadata(os.path.join(directory, METRICS_FILE))


def _read_metadata(path):
    """Task and sequence length from a fine-tuning `metrics.json`."""
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        try:
            metrics = json.load(f)
        except ValueError as e:
            raise ValueError(f"{path}: not valid JSON ({e}).") from None
    metadata = {}
    config = metrics.get("config") if isinstance(metrics, dict) else None
    if isinstance(config, dict) and isinstance(config.get("sequence_length"), int):
        metadata["sequence_length"] = config["sequence_length"]
    task = metrics.get("task") if isinstance(metrics, dict) else None
    if isinstance(task, str):
        metadata["task"] = task
    return metadata


def _classifier_preprocessor(model, tokenizer, sequence_length, utf8_errors, metadata):
    """The classifier's own preprocessor, or one with the overrides given.

    Label names come from the preprocessor's config (fine-tuning stores the
    task's there), never from `metrics.json`.
    """
    from gpt1_keras.preprocessing import GPT1ClassifierPreprocessor

    own = model.preprocessor
    if own is not None and tokenizer is None and sequence_length is None and (
            utf8_errors is None or getattr(own.tokenizer, "errors", None) == utf8_errors):
        return own
    if tokenizer is None and own is not None:
        tokenizer = own.tokenizer
    if sequence_length is None:
        sequence_length = (own.sequence_length if own is not None else
                           metadata.get("sequence_length") or model.backbone.max_sequence_length)
    return GPT1ClassifierPreprocessor(
        _tokenizer(tokenizer, utf8_errors), model.head, sequence_length,
        label_names=own.label_names if own is not None else None)


def _tokenizer(tokenizer, utf8_errors):
    if tokenizer is None:
        from gpt1_keras.tokenizers import GPT1Tokenizer

        tokenizer = GPT1Tokenizer()
    if utf8_errors is not None and getattr(tokenizer, "errors", None) != utf8_errors:
        if not hasattr(tokenizer, "get_config"):
            raise ValueError(
                f"`utf8_errors={utf8_errors!r}` needs a tokenizer with `get_config` "
                f"(like GPT1Tokenizer). Received: {type(tokenizer).__name__}")
        tokenizer = type(tokenizer).from_config(
            {**tokenizer.get_config(), "errors": utf8_errors})
    return tokenizer


def _describe(concrete_function):
    """`{"inputs": {name: {dtype, shape}}, "outputs": ...}` of a signature function."""
    def spec(s):
        return {"dtype": s.dtype.name, "shape": s.shape.as_list()}

    args, kwargs = concrete_function.structured_input_signature
    return {
        "inputs": {s.name: spec(s) for s in list(args) + list(kwargs.values())},
        "outputs": {k: spec(s) for k, s in concrete_function.structured_outputs.items()},
    }


def _existing_versions(export_dir):
    if not os.path.isdir(export_dir):
        return []
    return sorted(int(n) for n in os.listdir(export_dir) if re.fullmatch(r"[0-9]+", n))


def _write_version(module, signatures, info, export_dir, version):
    if version is not None and (
            not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise ConfigError(f"`version` must be a positive int. Received: version={version!r}")
    if version is not None:
        _refuse_existing(export_dir, version)  # before the slow part
    try:
        os.makedirs(export_dir, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as e:
        raise ConfigError(f"`export_dir` {export_dir} cannot be a directory: "
                          f"{e.strerror} ({e.filename}).") from None
    # TF Serving only loads all-digit directory names: build under a hidden name
    # (unique to this process), then pick the version and rename under the lock
    # (waiting while another export does the same).
    partial = os.path.join(export_dir, f".export-{os.getpid()}.partial")
    try:
        if os.path.exists(partial):
            shutil.rmtree(partial)
        tf.saved_model.save(module, partial, signatures=signatures)
        extra = os.path.join(partial, "assets.extra")
        os.makedirs(extra)
        if info["warmup_requests"]:
            write_warmup_requests(os.path.join(extra, WARMUP_FILE), module.warmup_requests(),
                                  signatures)
        with RunLock(export_dir, "export", wait=True):
            _remove_abandoned_partials(export_dir)
            if version is None:
                versions = _existing_versions(export_dir)
                version = (versions[-1] + 1) if versions else 1
            target = _refuse_existing(export_dir, version)
            info = {"version": version, **info}
            with open(os.path.join(extra, EXPORT_INFO_FILE), "w", encoding="utf-8") as f:
                json.dump(info, f, indent=2, sort_keys=True)
                f.write("\n")
            os.rename(partial, target)
    finally:
        if os.path.exists(partial):
            shutil.rmtree(partial, ignore_errors=True)
    return target


def _refuse_existing(export_dir, version):
    target = os.path.join(export_dir, str(version))
    if os.path.exists(target):
        raise ConfigError(
            f"{target} exists; pick another `version` (existing: "
            f"{_existing_versions(export_dir)}) or leave it unset for the next one.")
    return target


def _remove_abandoned_partials(export_dir):
    """Removes hidden builds left by export processes that no longer run."""
    for name in os.listdir(export_dir):
        match = re.fullmatch(r"\.export-([0-9]+)\.partial", name)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(os.path.join(export_dir, name), ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
