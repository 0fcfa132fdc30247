"""Presets of the GPT-1 family, as keras-hub's `from_preset` resolves them.

A preset is weights included. `from_preset(cls, preset)` accepts:

1. a keras-hub preset directory (`config.json` with a `registered_name`,
   `model.weights.h5`, `tokenizer.json` + `assets/`, ...), e.g. one written by
   `save_to_preset()`; loaded by keras-hub's own `KerasPresetLoader`;
2. `"hf://owner/name"`, a Hugging Face repository holding a `transformers`
   OpenAI GPT checkpoint (`config.json` with `"model_type": "openai-gpt"`,
   `model.safetensors` (or its sharded index) or `pytorch_model.bin`, and
   `vocab.json` + `merges.txt`), e.g. `"hf://openai-community/openai-gpt"`.
   Files come through keras-hub's `get_file`, i.e. `huggingface_hub`'s
   `hf_hub_download` (its cache, `HF_HOME` / `HF_HUB_CACHE`, `HF_HUB_OFFLINE`),
   and the weights are converted on load by `gpt1_keras.checkpoint_conversion`;
3. a local directory holding such a Hugging Face checkpoint (what
   `save_pretrained` writes);
4. `"kaggle://owner/model/keras/variant[/version]"` and the other handles
   keras-hub resolves (`gs://`, `modelscope://`), holding either format.

keras-hub 0.32 has no OpenAI GPT converter, so `"model_type": "openai-gpt"`
configs are read by `OpenAIGPTPresetLoader` here; everything else is keras-hub's
code. The architecture configurations (`gpt1`, `gpt1_small`, `gpt1_tiny`,
`lstm_small`, `lstm_tiny`) are not presets: they name untrained models, built
with `from_architecture()`, and `from_preset` rejects them with an error saying
so.

For task and preprocessor classes, `from_preset(cls, preset, ...)` is the body of
keras-hub's `Task.from_preset` / `Preprocessor.from_preset` with this module's
loader: call it from the class's own `from_preset` classmethod.

Example:
```python
class GPT1CausalLM(keras_hub.models.CausalLM):
    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        return preset_loading.from_preset(
            cls, preset, load_weights=load_weights, **kwargs
        )
```
"""

import json
import os
import shutil

import keras
import keras_hub
from keras_hub.src.utils import preset_utils

from gpt1_keras.checkpoint_conversion import backbone_config_from_hf
from gpt1_keras.checkpoint_conversion import convert_hf_weights
from gpt1_keras.checkpoint_conversion import load_hf_state_dict
from gpt1_keras.errors import ConfigError
from gpt1_keras.errors import UserError
from gpt1_keras.errors import write_error
from gpt1_keras.models.gpt1_presets import get_preset
from gpt1_keras.models.gpt1_presets import presets_by_architecture

# `model_type` of `transformers`' `OpenAIGPTConfig`.
HF_MODEL_TYPE = "openai-gpt"
# The weights of a Hugging Face checkpoint, in the order they are looked for.
HF_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
)
# The tokenizer files of `transformers`' `OpenAIGPTTokenizer`.
HF_VOCABULARY_FILE = "vocab.json"
HF_MERGES_FILE = "merges.txt"
# `_start_`, `_delimiter_`, `_classify_`: the rows GPT-1 adds to the released
# vocabulary (40,478 tokens), as `GPT1Tokenizer` does.
NUM_SPECIAL_TOKENS = 3


class PresetError(UserError, ValueError):
    """A preset that cannot be loaded: an architecture name, a corrupt file, ..."""


class PresetNotFoundError(UserError, FileNotFoundError):
    """A preset directory or file that does not exist."""


def architecture_names():
    """All architecture configurations (untrained models), sorted."""
    return sorted(n for presets in presets_by_architecture.values() for n in presets)


def _scheme(preset):
    return preset.split("://")[0].lower() if "://" in preset else None


def check_preset(preset, cls=None):
    """Raises a one-line error if `preset` cannot name a preset.

    Args:
        preset: the argument given to `from_preset`.
        cls: the class whose `from_preset` was called, for the message
            (default `GPT1Backbone`).

    Raises:
        PresetError: `preset` is not a string, or is an architecture name.
        PresetNotFoundError: `preset` is neither a handle (`scheme://...`) nor an
            existing directory.
    """
    cls_name = cls.__name__ if cls is not None else "GPT1Backbone"
    if not isinstance(preset, (str, os.PathLike)):
        raise PresetError(
            f"`preset` must be a preset directory or a handle like "
            f"'hf://openai-community/openai-gpt'. Received: preset={preset!r}"
        )
    preset = os.fspath(preset)
    if preset in architecture_names():
        if cls is None or hasattr(cls, "from_architecture"):
            fix = f"use {cls_name}.from_architecture({preset!r})"
        else:
            fix = (f"{cls_name}.from_preset needs a preset; GPT-1's own tokenizer "
                   "is GPT1Tokenizer()")
        raise PresetError(
            f"{preset!r} is an architecture configuration (an untrained model), not "
            f"a preset: {fix}; from_preset loads weights (a preset directory, "
            "'hf://...' or 'kaggle://...')."
        )
    if preset in preset_utils.BUILTIN_PRESETS:
        return
    if _scheme(preset) is None:
        if not os.path.isdir(preset):
            raise PresetNotFoundError(
                f"Preset directory not found: {preset!r} (`preset` is a directory "
                "written by save_to_preset, a Hugging Face checkpoint directory, or "
                f"a handle like 'hf://openai-community/openai-gpt'; for an untrained "
                f"model use {cls_name}.from_architecture with one of: "
                f"{', '.join(architecture_names())})."
            )
        if not os.path.exists(os.path.join(preset, preset_utils.CONFIG_FILE)):
            raise PresetNotFoundError(
                f"{os.path.join(preset, preset_utils.CONFIG_FILE)} not found: "
                f"{preset!r} is not a preset directory (written by save_to_preset) "
                "or a Hugging Face checkpoint directory."
            )


def load_preset_json(preset, filename=preset_utils.CONFIG_FILE):
    """Reads a JSON file of `preset` (downloading it if needed) into a dict.

    Raises:
        PresetNotFoundError: the preset has no such file.
        PresetError: the file is not a JSON object.
    """
    try:
        path = preset_utils.get_file(preset, filename)
    except FileNotFoundError as e:
        raise PresetNotFoundError(
            f"Preset {preset!r} has no {filename} ({e})."
        ) from None
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise PresetError(
            f"{path} is not valid JSON ({e}): the preset {preset!r} is corrupt; "
            "save or download it again."
        ) from None
    if not isinstance(config, dict):
        raise PresetError(
            f"{path} holds a JSON {type(config).__name__}, not an object: the "
            f"preset {preset!r} is corrupt."
        )
    return config


def get_preset_loader(preset, cls=None):
    """keras-hub's preset loader for `preset`, knowing Hugging Face OpenAI GPT.

    Args:
        preset: a preset directory or handle (see the module docstring).
        cls: the class whose `from_preset` was called, for error messages.

    Returns:
        keras-hub's `KerasPresetLoader` for a keras-hub preset, or an
        `OpenAIGPTPresetLoader` for a `transformers` OpenAI GPT checkpoint.
    """
    check_preset(preset, cls)
    preset = os.fspath(preset)
    cls_name = cls.__name__ if cls is not None else "GPT1Backbone"
    config = load_preset_json(preset)
    if "registered_name" in config:
        return preset_utils.KerasPresetLoader(preset, config)
    model_type = config.get("model_type")
    if model_type == HF_MODEL_TYPE:
        return OpenAIGPTPresetLoader(preset, config)
    if model_type is not None:
        raise PresetError(
            f"Preset {preset!r} is a Hugging Face {model_type!r} checkpoint; "
            f"{cls_name} loads OpenAI GPT ones (config.json with "
            f"\"model_type\": {HF_MODEL_TYPE!r})."
        )
    raise PresetError(
        f"The config.json of preset {preset!r} is neither a keras-hub preset "
        "(no 'registered_name') nor a Hugging Face config (no 'model_type')."
    )


class OpenAIGPTPresetLoader(preset_utils.PresetLoader):
    """Loads a `transformers` OpenAI GPT checkpoint as a `GPT1Backbone` preset.

    The keras-hub `PresetLoader` interface (`check_backbone_class`,
    `load_backbone`, `load_tokenizer`; the base class builds preprocessors and
    tasks from those) for a `config.json` with `"model_type": "openai-gpt"`.
    The backbone's vocabulary is the checkpoint's plus the 3 special tokens of
    GPT-1 (`_start_`, `_delimiter_`, `_classify_`, freshly initialised rows), the
    ids the tokenizer loaded from the same checkpoint gives.
    """

    def check_backbone_class(self):
        from gpt1_keras.models.gpt1_backbone import GPT1Backbone

        return GPT1Backbone

    def backbone_config(self):
        """The `GPT1Backbone` arguments of the checkpoint's `config.json`."""
        try:
            config = backbone_config_from_hf(self.config)
        except (KeyError, TypeError) as e:
            raise PresetError(
                f"The config.json of preset {self.preset!r} is not an OpenAIGPTConfig "
                f"(missing or bad field {e})."
            ) from None
        config["vocabulary_size"] += NUM_SPECIAL_TOKENS
        return config

    def load_backbone(self, cls, load_weights, **kwargs):
        backbone = cls(**{**self.backbone_config(), **kwargs})
        if load_weights:
            convert_hf_weights(backbone, self.load_state_dict())
        return backbone

    def load_state_dict(self):
        """The checkpoint's tensors, `{name: np.ndarray}`."""
        for filename in HF_WEIGHT_FILES:
            if not preset_utils.check_file_exists(self.preset, filename):
                continue
            path = preset_utils.get_file(self.preset, filename)
            if not filename.endswith(".index.json"):
                return load_hf_state_dict(path)
            state = {}
            index = load_preset_json(self.preset, filename)
            for shard in sorted(set(index.get("weight_map", {}).values())):
                state.update(load_hf_state_dict(preset_utils.get_file(self.preset, shard)))
            return state
        raise PresetNotFoundError(
            f"Preset {self.preset!r} has no weights: looked for "
            f"{', '.join(HF_WEIGHT_FILES)}."
        )

    def load_tokenizer(self, cls, config_file=None, **kwargs):
        files = {}
        for argument, filename in (
            ("vocabulary", HF_VOCABULARY_FILE),
            ("merges", HF_MERGES_FILE),
        ):
            try:
                files[argument] = preset_utils.get_file(self.preset, filename)
            except FileNotFoundError:
                raise PresetNotFoundError(
                    f"Preset {self.preset!r} has no {filename}, which its tokenizer "
                    f"needs ({HF_VOCABULARY_FILE} and {HF_MERGES_FILE})."
                ) from None
        return cls(**{**files, **kwargs})


def from_preset(cls, preset, load_weights=True, **kwargs):
    """keras-hub's `from_preset` for `cls`, with Hugging Face OpenAI GPT checkpoints.

    Args:
        cls: a `keras_hub.models.Backbone`, `keras_hub.tokenizers.Tokenizer`,
            `keras_hub.models.Preprocessor` or `keras_hub.models.Task` subclass.
        preset: a preset directory or handle (see the module docstring); an
            architecture name is an error pointing to `from_architecture`.
        load_weights: bool. Load the preset's weights (for backbones and tasks;
            with `False` they are freshly initialised).
        **kwargs: what keras-hub's `from_preset` of that kind of class takes
            (`dtype`, constructor arguments, `config_file`, ...).

    Returns:
        An instance of the class the preset holds: `cls` or a subclass of it (for
        example `keras_hub.models.Backbone` returns a `GPT1Backbone`).
    """
    Backbone = keras_hub.models.Backbone
    Task = keras_hub.models.Task
    Preprocessor = keras_hub.models.Preprocessor
    Tokenizer = keras_hub.tokenizers.Tokenizer

    if issubclass(cls, Tokenizer) and _is_tokenizer_only(preset):
        # A directory written by the tokenizer's own `save_to_preset`: no backbone
        # config to infer the class from, the tokenizer's config names it.
        config_file = kwargs.pop("config_file", preset_utils.TOKENIZER_CONFIG_FILE)
        loader = preset_utils.KerasPresetLoader(os.fspath(preset), {})
        load_preset_json(loader.preset, config_file)  # a clear error if corrupt
        return loader.load_tokenizer(cls, config_file, **kwargs)
    loader = get_preset_loader(preset, cls)
    preset = loader.preset
    backbone_cls = loader.check_backbone_class()
    if issubclass(cls, Backbone):
        if not issubclass(backbone_cls, cls):
            raise PresetError(
                f"Preset {preset!r} holds a {backbone_cls.__name__}, not a "
                f"{cls.__name__}: call {backbone_cls.__name__}.from_preset instead."
            )
        return loader.load_backbone(backbone_cls, load_weights, **kwargs)
    if issubclass(cls, Tokenizer):
        config_file = kwargs.pop("config_file", preset_utils.TOKENIZER_CONFIG_FILE)
        if not _pairs_with(cls, backbone_cls):
            cls = preset_utils.find_subclass(preset, cls, backbone_cls)
        return loader.load_tokenizer(cls, config_file, **kwargs)
    if issubclass(cls, Preprocessor):
        config_file = kwargs.pop("config_file", preset_utils.PREPROCESSOR_CONFIG_FILE)
        if not _pairs_with(cls, backbone_cls):
            cls = preset_utils.find_subclass(preset, cls, backbone_cls)
        return loader.load_preprocessor(cls, config_file, **kwargs)
    if issubclass(cls, Task):
        if issubclass(backbone_cls, Backbone) and not _pairs_with(cls, backbone_cls):
            cls = preset_utils.find_subclass(preset, cls, backbone_cls)
        # As keras-hub: a classifier given `num_classes` gets a fresh head.
        load_task_weights = "num_classes" not in kwargs
        return loader.load_task(cls, load_weights, load_task_weights, **kwargs)
    raise TypeError(
        f"from_preset loads Backbone, Tokenizer, Preprocessor or Task subclasses. "
        f"Received: cls={cls!r}"
    )


def _pairs_with(cls, backbone_cls):
    """Whether `cls` (a tokenizer, preprocessor or task class) takes `backbone_cls`.

    keras-hub pairs each class with one backbone (`cls.backbone_cls`); the GPT-1
    family's tokenizer, preprocessors and tasks work on every backbone of the
    family (`GPT1Backbone`, `LSTMBackbone`), so a class paired with one of them
    takes all of them.
    """
    paired = cls.backbone_cls
    if paired == backbone_cls:
        return True
    family = GPT1FamilyBackbone
    return (
        isinstance(paired, type)
        and issubclass(paired, family)
        and issubclass(backbone_cls, family)
    )


def _is_tokenizer_only(preset):
    """A local directory with `tokenizer.json` and no `config.json`."""
    if not isinstance(preset, (str, os.PathLike)) or not os.path.isdir(preset):
        return False
    return not os.path.exists(
        os.path.join(preset, preset_utils.CONFIG_FILE)
    ) and os.path.exists(os.path.join(preset, preset_utils.TOKENIZER_CONFIG_FILE))


def is_architecture_name(name):
    """Whether `name` is an architecture configuration (not a preset)."""
    return isinstance(name, str) and name in architecture_names()


class GPT1FamilyBackbone(keras_hub.models.Backbone):
    """Base of `GPT1Backbone` and `LSTMBackbone`: architectures and presets.

    `keras_hub.models.Backbone` provides the dtype policy, `token_embedding`,
    `get_config` / `from_config` of the common arguments, `save_to_preset`,
    LoRA; this class adds `from_architecture` (an untrained model from an
    architecture configuration) and a `from_preset` that also reads Hugging Face
    OpenAI GPT checkpoints.

    Subclasses set `architecture`, the key of their configurations in
    `gpt1_presets.presets_by_architecture`.
    """

    architecture = None

    @classmethod
    def from_architecture(cls, preset, **overrides):
        """Builds a randomly initialised (untrained) backbone from an architecture name.

        Args:
            preset: an architecture name of this class (`gpt1`, `gpt1_small`,
                `gpt1_tiny` for `GPT1Backbone`; `lstm_small`, `lstm_tiny` for
                `LSTMBackbone`).
            **overrides: constructor arguments replacing the configuration's.
        """
        return cls(**{**get_preset(preset, architecture=cls.architecture), **overrides})

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Instantiates a backbone from a preset, weights included.

        Args:
            preset: a preset directory written by `save_to_preset()`, a Hugging
                Face handle (`"hf://openai-community/openai-gpt"` or any
                `"hf://owner/name"` holding a `transformers` OpenAI GPT
                checkpoint), a local Hugging Face checkpoint directory, or a
                `"kaggle://..."` handle. Architecture names (`gpt1_tiny`, ...)
                are for `from_architecture()`.
            load_weights: bool. If `False`, the weights are freshly initialised.
            **kwargs: constructor arguments replacing the preset's (`dtype`, ...).

        Example:
        ```python
        backbone = GPT1Backbone.from_preset("hf://openai-community/openai-gpt")
        ```
        """
        return from_preset(cls, preset, load_weights=load_weights, **kwargs)

    def enable_lora(self, rank, target_layer_names=None):
        """Freezes the backbone and adds rank-`rank` LoRA factors to the target layers.

        As `keras_hub.models.Backbone.enable_lora`, except that the targets' biases
        are frozen too (keras-hub's `Dense.enable_lora` freezes only the kernel), so
        the LoRA factors are the only trainable weights: a `.lora.h5` file written
        by `save_lora_weights` then holds everything fine-tuning changed, and the
        base model plus that file reproduces the fine-tuned model.
        """
        super().enable_lora(rank, target_layer_names=target_layer_names)
        layers = [layer for layer in self._flatten_layers(include_self=False) if layer.weights]
        for i in self._lora_enabled_layers:
            if getattr(layers[i], "bias", None) is not None:
                layers[i].bias.trainable = False

    def check_tokenizer(self, tokenizer, what="tokenizer"):
        """Raises `ConfigError` unless `tokenizer` gives exactly the backbone's ids.

        The ids of a tokenizer (its vocabulary plus `_start_`, `_delimiter_`,
        `_classify_`) index the token embedding: a tokenizer of another size is
        another vocabulary, whose ids would read the wrong rows (or past the end).

        Args:
            tokenizer: anything with `vocabulary_size()` (e.g. `GPT1Tokenizer`).
            what: how the message names it (e.g. "--tokenizer=/runs/bpe").
        """
        size = tokenizer.vocabulary_size()
        if size != self.vocabulary_size:
            raise ConfigError(
                f"The {what} has {size} token ids but the model's vocabulary_size is "
                f"{self.vocabulary_size}: use the tokenizer the model was trained with (its "
                "preset's or model.keras' own), or a model built for this tokenizer.")

    def check_cache_length(self, max_length):
        """Raises `ValueError` when an int `max_length` exceeds the context.

        A tensor (a served request's buffer width in a TensorFlow graph) is the
        caller's to bound. Shared by both backbones' `empty_cache`.
        """
        if not keras.ops.is_tensor(max_length) and max_length > self.max_sequence_length:
            raise ValueError(
                f"The cache cannot hold more than the model's context of "
                f"{self.max_sequence_length} positions. Received: max_length={max_length}"
            )

    def export_to_transformers(self, path):
        """Writes the backbone as a Hugging Face `transformers` checkpoint.

        `gpt1_keras.checkpoint_conversion.export_to_hf` (an `OpenAIGPTLMHeadModel`
        with GPT-1's tokenizer files); keras-hub's exporter knows no GPT-1.
        """
        from gpt1_keras.checkpoint_conversion import export_to_hf

        export_to_hf(self, path)


def save_preset(directory, model, tokenizer=None):
    """Writes a preset directory atomically: `model`'s preset plus a tokenizer.

    Everything is written to a temporary sibling directory first, which then
    replaces `directory` (an existing preset there is removed after the rename),
    so a reader never sees half a preset.

    Args:
        directory: the preset directory to write (e.g. `model_dir/preset`).
        model: a `keras_hub.models.Task` (its `save_to_preset` writes the task,
            the backbone and the preprocessor), or a model with a `backbone`
            attribute, or a backbone.
        tokenizer: a tokenizer saved beside, unless the task's preprocessor
            already holds one.

    Returns:
        `directory`.

    Raises:
        CheckpointWriteError: the directory could not be written; nothing partial
            is left and a previous preset is unchanged.
    """
    directory = os.path.abspath(os.fspath(directory))
    parent, name = os.path.split(directory)
    partial = os.path.join(parent, f".{name}.tmp-{os.getpid()}")
    previous = os.path.join(parent, f".{name}.old-{os.getpid()}")
    try:
        os.makedirs(parent, exist_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
        saved_tokenizer = False
        if isinstance(model, keras_hub.models.Task):
            model.save_to_preset(partial)
            preprocessor = getattr(model, "preprocessor", None)
            saved_tokenizer = getattr(preprocessor, "tokenizer", None) is not None
        else:
            getattr(model, "backbone", model).save_to_preset(partial)
        if tokenizer is not None and not saved_tokenizer:
            tokenizer.save_to_preset(partial)
        if os.path.exists(directory):
            os.replace(directory, previous)
        try:
            os.replace(partial, directory)
        except OSError:
            if os.path.exists(previous):  # put the previous preset back
                os.replace(previous, directory)
            raise
    except OSError as e:
        raise write_error(e, directory, f"the preset {directory}") from e
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(previous, ignore_errors=True)
    return directory


def preset_backbone_class(preset):
    """The backbone class `preset` holds (without building it)."""
    return get_preset_loader(preset).check_backbone_class()


__all__ = [
    "GPT1FamilyBackbone",
    "OpenAIGPTPresetLoader",
    "PresetError",
    "PresetNotFoundError",
    "architecture_names",
    "check_preset",
    "from_preset",
    "get_preset_loader",
    "is_architecture_name",
    "load_preset_json",
    "preset_backbone_class",
    "save_preset",
]
