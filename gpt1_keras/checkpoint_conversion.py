"""Loads released GPT-1 weights into a `GPT1Backbone`, and writes them back.

Two sources are supported:

* a Hugging Face `OpenAIGPTModel` / `OpenAIGPTLMHeadModel` /
  `OpenAIGPTDoubleHeadsModel` state dict: a `.safetensors` or `.bin` file, a
  directory holding one (plus `config.json`), or a mapping of names to arrays;
* the original OpenAI release (`params_shapes.json` + `params_0.npy` ..
  `params_9.npy`, from openai/finetune-transformer-lm).

Both store Conv1D weights as `[in, out]`, the layout of a Keras `Dense` kernel.
If the backbone's vocabulary is larger than the checkpoint's (the `gpt1` preset
keeps 3 rows for `_start_`, `_delimiter_`, `_classify_`), the extra rows keep
their fresh N(0, 0.02) initialisation, as in GPT-1's fine-tuning code.

The other direction, `export_to_hf(model, directory)`, writes a backbone, causal
LM or classifier as a Hugging Face `OpenAIGPT*` checkpoint (see "Export" below).

This module is backend-agnostic: it reads files with numpy/safetensors and
assigns values to Keras variables (and reads them back as NumPy arrays to
export). `torch` is imported only to read `.bin`; `transformers` is never needed.
"""

import json
import os
import pickle
import warnings

import numpy as np

from gpt1_keras import extras
from gpt1_keras.errors import UserError

_HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_OPENAI_NUM_SHARDS = 10

# HF names of one block's tensors -> (sub-layer path in GPT1DecoderBlock, variable).
_HF_BLOCK_TENSORS = {
    "attn.c_attn.weight": ("attn.c_attn", "kernel"),
    "attn.c_attn.bias": ("attn.c_attn", "bias"),
    "attn.c_proj.weight": ("attn.c_proj", "kernel"),
    "attn.c_proj.bias": ("attn.c_proj", "bias"),
    "ln_1.weight": ("ln_1", "gamma"),
    "ln_1.bias": ("ln_1", "beta"),
    "mlp.c_fc.weight": ("c_fc", "kernel"),
    "mlp.c_fc.bias": ("c_fc", "bias"),
    "mlp.c_proj.weight": ("c_proj", "kernel"),
    "mlp.c_proj.bias": ("c_proj", "bias"),
    "ln_2.weight": ("ln_2", "gamma"),
    "ln_2.bias": ("ln_2", "beta"),
}
# The original release stores each block's tensors in this order.
_OPENAI_BLOCK_ORDER = (
    "attn.c_attn.weight",
    "attn.c_attn.bias",
    "attn.c_proj.weight",
    "attn.c_proj.bias",
    "ln_1.weight",
    "ln_1.bias",
    "mlp.c_fc.weight",
    "mlp.c_fc.bias",
    "mlp.c_proj.weight",
    "mlp.c_proj.bias",
    "ln_2.weight",
    "ln_2.bias",
)


class CheckpointMismatchError(UserError, ValueError):
    """A checkpoint does not fit the model it is loaded into."""


class CheckpointFileError(UserError, ValueError):
    """A checkpoint file that exists but cannot be read (corrupt, truncated, wrong format)."""


def _read_json(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointFileError(f"{path} ({what}) is not valid JSON: {e}.") from None


def backbone_config_from_hf(hf_config):
    """Maps a Hugging Face `OpenAIGPTConfig` (dict or object) to backbone arguments.

    Args:
        hf_config: the parsed `config.json`, or a `transformers` config object.

    Returns:
        A dict of `GPT1Backbone` constructor arguments.
    """
    if not isinstance(hf_config, dict):
        hf_config = hf_config.to_dict()
    afn = hf_config.get("afn", "gelu")
    if afn != "gelu":
        raise CheckpointMismatchError(
            f"GPT1Backbone implements the tanh-GELU of GPT-1 only. Received: afn={afn!r}"
        )
    hidden_dim = hf_config["n_embd"]
    return {
        "vocabulary_size": hf_config["vocab_size"],
        "num_layers": hf_config["n_layer"],
        "num_heads": hf_config["n_head"],
        "hidden_dim": hidden_dim,
        "intermediate_dim": 4 * hidden_dim,
        "max_sequence_length": hf_config["n_positions"],
        "dropout": hf_config.get("resid_pdrop", 0.1),
        "layer_norm_epsilon": hf_config.get("layer_norm_epsilon", 1e-5),
    }


def load_hf_state_dict(path):
    """Reads a Hugging Face GPT-1 state dict into `{name: np.ndarray}`.

    Args:
        path: a `.safetensors` or `.bin` file, or a directory containing
            `model.safetensors` or `pytorch_model.bin`.
    """
    if os.path.isdir(path):
        for name in _HF_WEIGHT_FILES:
            candidate = os.path.join(path, name)
            if os.path.exists(candidate):
                return load_hf_state_dict(candidate)
        found = ("; it holds params_shapes.json, the original release: use "
                 "source_format='openai'"
                 if os.path.exists(os.path.join(path, "params_shapes.json")) else "")
        raise FileNotFoundError(
            f"No weights in {path}: looked for {', '.join(_HF_WEIGHT_FILES)}{found}."
        )
    if not os.path.exists(path):
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    corrupt = (f"{path} exists but is not a readable {os.path.splitext(path)[1]} "
               "checkpoint (corrupt, truncated or another format)")
    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            return dict(load_file(path))
        except (SafetensorError, ValueError) as e:
            raise CheckpointFileError(f"{corrupt}: {e}; re-download it.") from None
    if path.endswith((".bin", ".pt", ".pth")):
        torch = extras.require("torch", f"Reading the PyTorch checkpoint {path}")

        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
            # torch's own message (e.g. "Weights only load failed ...") is long and,
            # for a damaged file, misleading: name the error only.
            raise CheckpointFileError(
                f"{corrupt}: torch.load raised {type(e).__name__}; re-download it.") from None
        if not isinstance(state, dict) or not all(
                isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointFileError(
                f"{path} holds a {type(state).__name__}, not a state dict of tensors.")
        return {k: v.detach().float().numpy() for k, v in state.items()}
    raise CheckpointFileError(
        f"Unsupported checkpoint file {path}: expected .safetensors or .bin."
    )


def _assign(variable, value, name):
    value = np.asarray(value)
    if tuple(variable.shape) != value.shape:
        raise CheckpointMismatchError(
            f"Shape mismatch for checkpoint tensor {name!r}: the checkpoint has "
            f"{value.shape}, the model's {variable.path!r} has {tuple(variable.shape)}."
        )
    variable.assign(value.astype(variable.dtype))


def _assign_embedding_rows(variable, value, name, what):
    """Assigns the first rows of an embedding table; extra model rows are kept."""
    value = np.asarray(value)
    rows, width = variable.shape
    if value.ndim != 2 or value.shape[1] != width or value.shape[0] > rows:
        raise CheckpointMismatchError(
            f"Shape mismatch for checkpoint tensor {name!r}: the checkpoint has "
            f"{value.shape}, the model's {what} {variable.path!r} has {(rows, width)}; "
            f"it can hold at most {rows} rows of width {width}."
        )
    table = np.array(variable.numpy())
    table[: value.shape[0]] = value
    variable.assign(table.astype(variable.dtype))


def _block_variable(backbone, layer_index, sublayer_path, attribute):
    layer = backbone.get_layer(f"transformer_layer_{layer_index}")
    for part in sublayer_path.split("."):
        layer = getattr(layer, part)
    return getattr(layer, attribute)


def convert_hf_weights(backbone, state_dict):
    """Copies a Hugging Face GPT-1 state dict into `backbone`.

    Args:
        backbone: a built `GPT1Backbone` with the checkpoint's architecture; its
            vocabulary may be larger than the checkpoint's (extra rows kept).
        state_dict: `{name: array}` (see `load_hf_state_dict`), with or without
            the `transformer.` prefix of the LM-head models.

    Raises:
        CheckpointMismatchError: a tensor is missing or has the wrong shape.
    """
    state = {}
    for name, value in state_dict.items():
        name = name[len("transformer.") :] if name.startswith("transformer.") else name
        state[name] = np.asarray(value)

    def take(name):
        if name not in state:
            raise CheckpointMismatchError(
                f"Checkpoint tensor {name!r} is missing "
                f"(the checkpoint has {len(state)} tensors)."
            )
        return state[name]

    # The LM head is tied to the token embedding: nothing separate to load.
    _assign_embedding_rows(
        backbone.token_embedding.embeddings,
        take("tokens_embed.weight"),
        "tokens_embed.weight",
        "token embedding",
    )
    _assign_embedding_rows(
        backbone.position_embedding.embeddings,
        take("positions_embed.weight")[: backbone.max_sequence_length],
        "positions_embed.weight",
        "position embedding",
    )
    for i in range(backbone.num_layers):
        for hf_name, (path, attribute) in _HF_BLOCK_TENSORS.items():
            name = f"h.{i}.{hf_name}"
            _assign(_block_variable(backbone, i, path, attribute), take(name), name)
    extra = sorted(
        n for n in state if n.startswith("h.") and int(n.split(".")[1]) >= backbone.num_layers
    )
    if extra:
        raise CheckpointMismatchError(
            f"The checkpoint has more layers than the model ({backbone.num_layers}); "
            f"first unused tensor: {extra[0]!r}."
        )


def load_openai_params(directory):
    """Reads the original release into a list of arrays, in file order.

    `params_shapes.json` lists every tensor's shape; `params_0.npy` ..
    `params_9.npy` hold the flattened, concatenated values split in 10 shards.

    Args:
        directory: the folder holding `params_shapes.json` and the shards.

    Returns:
        The tensors in the order of `params_shapes.json`: positions `[512, 768]`
        first, then tokens `[40478, 768]`, then 12 tensors per layer.
    """
    shapes_path = os.path.join(directory, "params_shapes.json")
    if not os.path.exists(shapes_path):
        raise FileNotFoundError(f"Missing {shapes_path} (the list of tensor shapes).")
    shapes = _read_json(shapes_path, "the list of tensor shapes")
    if not isinstance(shapes, list) or not all(
            isinstance(shape, list) and all(isinstance(d, int) for d in shape)
            for shape in shapes):
        raise CheckpointFileError(
            f"{shapes_path} must hold a list of shapes (lists of ints).")
    shards = []
    for i in range(_OPENAI_NUM_SHARDS):
        shard_path = os.path.join(directory, f"params_{i}.npy")
        if not os.path.exists(shard_path):
            raise FileNotFoundError(
                f"Missing shard {shard_path}: the release has params_0.npy .. "
                f"params_{_OPENAI_NUM_SHARDS - 1}.npy."
            )
        try:
            shard = np.load(shard_path)
        except (ValueError, EOFError, OSError) as e:
            raise CheckpointFileError(
                f"{shard_path} exists but is not a readable .npy array: {e}.") from None
        if not isinstance(shard, np.ndarray):
            raise CheckpointFileError(f"{shard_path} is not a .npy array.")
        shards.append(shard.reshape(-1))
    flat = np.concatenate(shards)
    sizes = [int(np.prod(shape)) for shape in shapes]
    if sum(sizes) != flat.size:
        raise CheckpointMismatchError(
            f"{shapes_path} lists {sum(sizes)} values but the shards in {directory} "
            f"hold {flat.size}."
        )
    offsets = np.cumsum([0] + sizes)
    return [
        flat[offsets[i] : offsets[i + 1]].reshape(shape) for i, shape in enumerate(shapes)
    ]


def openai_params_to_hf_state_dict(params):
    """Names the original release's arrays as a Hugging Face state dict.

    Positions come **first** in the release and tokens second (a common
    reimplementation trap); Conv1D weights carry a leading axis of 1.
    """
    if (len(params) - 2) % len(_OPENAI_BLOCK_ORDER):
        raise CheckpointMismatchError(
            f"The release holds {len(params)} tensors; expected 2 + "
            f"{len(_OPENAI_BLOCK_ORDER)} per layer."
        )
    state = {"positions_embed.weight": params[0], "tokens_embed.weight": params[1]}
    num_layers = (len(params) - 2) // len(_OPENAI_BLOCK_ORDER)
    block_params = iter(params[2:])
    for i in range(num_layers):
        for name in _OPENAI_BLOCK_ORDER:
            value = next(block_params)
            if name.endswith("weight") and value.ndim == 3:
                value = value[0]  # Conv1D [1, in, out] -> [in, out]
            state[f"h.{i}.{name}"] = value
    return state


def convert_openai_weights(backbone, directory):
    """Loads the original OpenAI release from `directory` into `backbone`."""
    convert_hf_weights(backbone, openai_params_to_hf_state_dict(load_openai_params(directory)))


def load_pretrained_lm(source_format, path, num_special_tokens=3, preset=None):
    """Builds a `GPT1CausalLM` holding released GPT-1 weights.

    Args:
        source_format: `"hf"` (a Hugging Face file or directory) or `"openai"`
            (the original `params_*.npy` release).
        path: the checkpoint file or directory.
        num_special_tokens: rows added to the checkpoint's vocabulary for
            `_start_`, `_delimiter_`, `_classify_` (fresh N(0, 0.02) values).
        preset: backbone preset giving the architecture. For `"hf"` the default
            reads `config.json` beside the weights; for `"openai"` it is `gpt1`.

    Returns:
        A `GPT1CausalLM` whose vocabulary is the checkpoint's plus
        `num_special_tokens`.
    """
    from gpt1_keras.models.gpt1_backbone import GPT1Backbone
    from gpt1_keras.models.gpt1_causal_lm import GPT1CausalLM
    from gpt1_keras.models.gpt1_presets import get_preset

    if source_format == "hf":
        state = load_hf_state_dict(path)
        if preset is not None:
            config = get_preset(preset)
        else:
            directory = path if os.path.isdir(path) else os.path.dirname(path)
            config_path = os.path.join(directory, "config.json")
            if not os.path.exists(config_path):
                raise FileNotFoundError(
                    f"No config.json beside {path}: name the architecture with a preset."
                )
            hf_config = _read_json(config_path, "the Hugging Face config")
            try:
                config = backbone_config_from_hf(hf_config)
            except (KeyError, TypeError, AttributeError) as e:
                raise CheckpointFileError(
                    f"{config_path} is not an OpenAIGPTConfig (missing or bad {e}).") from None
        tokens = state.get("tokens_embed.weight", state.get("transformer.tokens_embed.weight"))
        if tokens is None:
            raise CheckpointMismatchError(
                f"{path} has no 'tokens_embed.weight': not a GPT-1 checkpoint."
            )
    elif source_format == "openai":
        params = load_openai_params(path)
        state = openai_params_to_hf_state_dict(params)
        config = get_preset(preset or "gpt1")
        tokens = state["tokens_embed.weight"]
    else:
        raise ValueError(
            f"Unknown checkpoint format. Received: source_format={source_format!r}; "
            "expected 'hf' or 'openai'."
        )
    config["vocabulary_size"] = tokens.shape[0] + num_special_tokens
    backbone = GPT1Backbone(**config)
    convert_hf_weights(backbone, state)
    return GPT1CausalLM(backbone)


# === Export: a Keras model -> a Hugging Face OpenAIGPT* checkpoint ===

# Classifier heads that `OpenAIGPTDoubleHeadsModel`'s multiple-choice head represents.
_DOUBLE_HEADS = ("multiple_choice",)
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json")


class ExportError(UserError, ValueError):
    """A model that cannot be written as a Hugging Face `OpenAIGPT*` checkpoint."""


def _numpy(value):
    import keras

    return np.ascontiguousarray(keras.ops.convert_to_numpy(value), dtype=np.float32)


def _split_model(model):
    """`(backbone, classifier or None)` of a backbone, causal LM or classifier."""
    from gpt1_keras.models.gpt1_backbone import GPT1Backbone
    from gpt1_keras.models.gpt1_causal_lm import GPT1CausalLM
    from gpt1_keras.models.gpt1_classifier import GPT1Classifier

    if isinstance(model, GPT1Backbone):
        backbone, classifier = model, None
    elif isinstance(model, (GPT1CausalLM, GPT1Classifier)):
        backbone = model.backbone
        classifier = model if isinstance(model, GPT1Classifier) else None
    else:
        raise ExportError(
            "Only a GPT1Backbone, GPT1CausalLM or GPT1Classifier can be written as a "
            f"Hugging Face OpenAIGPT checkpoint. Received: {type(model).__name__}"
        )
    if not isinstance(backbone, GPT1Backbone):
        raise ExportError(
            "Hugging Face's OpenAIGPT models are transformers: a model with a "
            f"{type(backbone).__name__} backbone cannot be exported."
        )
    quantized = [(layer.path, layer.quantization_mode)
                 for layer in backbone._flatten_layers() if layer.quantization_mode]
    if quantized:
        raise ExportError(
            f"The model is quantized ({quantized[0][0]!r} is {quantized[0][1]}); "
            "Hugging Face's GPT-1 has no quantized format: export the float model."
        )
    if backbone.intermediate_dim != 4 * backbone.hidden_dim:
        raise ExportError(
            "Hugging Face's OpenAIGPT fixes the MLP width at 4 x n_embd. Received: "
            f"intermediate_dim={backbone.intermediate_dim}, hidden_dim={backbone.hidden_dim}"
        )
    return backbone, classifier


def _check_vocabulary_size(backbone, vocabulary_size):
    rows = backbone.vocabulary_size
    if vocabulary_size is None:
        return rows
    if not isinstance(vocabulary_size, int) or not 1 <= vocabulary_size <= rows:
        raise ExportError(
            f"`vocabulary_size` must be an int in [1, {rows}] (the model's token "
            f"embedding rows). Received: vocabulary_size={vocabulary_size!r}"
        )
    return vocabulary_size


def hf_state_dict(model, vocabulary_size=None):
    """The model's weights named as a Hugging Face `OpenAIGPT*` state dict.

    Args:
        model: a `GPT1Backbone`, `GPT1CausalLM` or `GPT1Classifier`.
        vocabulary_size: rows of the token embedding to write (default: all).

    Returns:
        `{name: float32 np.ndarray}` with the `transformer.` prefix of HF's head
        models; Conv1D weights are `[in, out]` (a Keras `Dense` kernel's layout),
        and a multiple-choice head adds `multiple_choice_head.summary.weight`
        (`[1, hidden]`, an `nn.Linear`'s layout) and `.bias`.
    """
    backbone, classifier = _split_model(model)
    vocabulary_size = _check_vocabulary_size(backbone, vocabulary_size)
    state = {
        "transformer.tokens_embed.weight": _numpy(
            backbone.token_embedding.embeddings)[:vocabulary_size],
        "transformer.positions_embed.weight": _numpy(backbone.position_embedding.embeddings),
    }
    for i in range(backbone.num_layers):
        for hf_name, (path, attribute) in _HF_BLOCK_TENSORS.items():
            # `Dense.kernel` is the merged kernel when LoRA is enabled.
            state[f"transformer.h.{i}.{hf_name}"] = _numpy(
                _block_variable(backbone, i, path, attribute))
    if classifier is not None and classifier.head in _DOUBLE_HEADS:
        head = classifier.get_layer("classifier_head")
        state["multiple_choice_head.summary.weight"] = np.ascontiguousarray(
            _numpy(head.kernel).T)
        state["multiple_choice_head.summary.bias"] = _numpy(head.bias)
    return {name: np.ascontiguousarray(value) for name, value in state.items()}


def hf_config(model, vocabulary_size=None):
    """The `config.json` of `OpenAIGPTConfig` describing `model`, as a dict."""
    backbone, classifier = _split_model(model)
    vocabulary_size = _check_vocabulary_size(backbone, vocabulary_size)
    config = {
        "model_type": "openai-gpt",
        "architectures": ["OpenAIGPTLMHeadModel"],
        "vocab_size": vocabulary_size,
        "n_positions": backbone.max_sequence_length,
        "n_embd": backbone.hidden_dim,
        "n_layer": backbone.num_layers,
        "n_head": backbone.num_heads,
        "afn": "gelu",  # HF's "gelu" for GPT-1 is the tanh approximation, as ours.
        "resid_pdrop": backbone.dropout,
        "embd_pdrop": backbone.dropout,
        "attn_pdrop": backbone.dropout,
        "layer_norm_epsilon": backbone.layer_norm_epsilon,
        "initializer_range": 0.02,
        "summary_type": "cls_index",
        "summary_use_proj": True,
        "summary_activation": None,
        "summary_proj_to_labels": True,
        "summary_first_dropout": 0.1,
        "tie_word_embeddings": True,
    }
    if classifier is not None and classifier.head in _DOUBLE_HEADS:
        config["architectures"] = ["OpenAIGPTDoubleHeadsModel"]
        config["summary_first_dropout"] = classifier.dropout
        config["num_labels"] = 1  # One score per choice.
    return config


def _model_tokenizer(model):
    preprocessor = getattr(model, "preprocessor", None)
    return getattr(preprocessor, "tokenizer", None)


def write_tokenizer_files(tokenizer, directory, vocabulary_size=None,
                          model_max_length=None):
    """Writes `vocab.json`, `merges.txt` and `tokenizer_config.json` of a `GPT1Tokenizer`.

    `transformers.OpenAIGPTTokenizer.from_pretrained(directory)` then gives the ids
    of `GPT1Tokenizer(normalization="bert")` (HF's tokenizer without ftfy/spaCy) or of
    the `"openai"` mode (with them), and knows `_start_`, `_delimiter_` and
    `_classify_` as special tokens with our ids when they are within
    `vocabulary_size`.

    Args:
        tokenizer: a `GPT1Tokenizer`.
        directory: an existing directory.
        vocabulary_size: ids to keep (default: all of the tokenizer's).
        model_max_length: the context written to `tokenizer_config.json`.
    """
    from gpt1_keras.tokenizers.bpe import load_merges
    from gpt1_keras.tokenizers.gpt1_tokenizer import SPECIAL_TOKENS

    tokens = tokenizer.get_vocabulary()
    if vocabulary_size is None:
        vocabulary_size = len(tokens)
    special = {i: t for i, t in enumerate(tokens) if t in SPECIAL_TOKENS and i < vocabulary_size}
    encoder = {t: i for i, t in enumerate(tokens[:vocabulary_size]) if i not in special}
    with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(encoder, f, ensure_ascii=False)
    # HF's reader skips the first line and needs a final newline.
    with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        f.writelines(" ".join(pair) + "\n" for pair in load_merges(tokenizer.merges))
    config = {
        "tokenizer_class": "OpenAIGPTTokenizer",
        "unk_token": "<unk>",
        "do_lower_case": True,
        "added_tokens_decoder": {
            str(i): {"content": t, "special": True, "lstrip": False, "rstrip": False,
                     "normalized": False, "single_word": False}
            for i, t in special.items()
        },
        "additional_special_tokens": list(special.values()),
    }
    if model_max_length is not None:
        config["model_max_length"] = int(model_max_length)
    with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)


def export_to_hf(model, directory, tokenizer="auto", vocabulary_size=None):
    """Writes `model` as a Hugging Face `OpenAIGPT*` checkpoint in `directory`.

    Writes `model.safetensors` and `config.json`, which
    `transformers.OpenAIGPTLMHeadModel.from_pretrained(directory)` (or
    `OpenAIGPTModel` / `OpenAIGPTDoubleHeadsModel`) loads, and the tokenizer files
    `vocab.json`, `merges.txt` and `tokenizer_config.json`, which
    `transformers.OpenAIGPTTokenizer.from_pretrained(directory)` loads.
    `load_pretrained_lm("hf", directory, num_special_tokens=0)` reads it back.

    | model | `architectures` in `config.json` | tensors |
    | --- | --- | --- |
    | `GPT1Backbone`, `GPT1CausalLM` | `OpenAIGPTLMHeadModel` | `transformer.*` (the LM head is tied to the token embedding, as in HF) |
    | `GPT1Classifier`, head `"multiple_choice"` | `OpenAIGPTDoubleHeadsModel` | `transformer.*` and `multiple_choice_head.summary.{weight,bias}` |
    | `GPT1Classifier`, head `"classification"`, `"entailment"` or `"similarity"` | `OpenAIGPTLMHeadModel` | `transformer.*` only, with a warning that the head is not written |

    `OpenAIGPTDoubleHeadsModel`'s multiple-choice head reads the hidden state at
    `mc_token_ids` and applies a linear layer with bias to one output: GPT-1's
    multiple-choice head, given `mc_token_ids` = the `_classify_` token (the last
    real token, `sum(padding_mask) - 1`); its `mc_logits` for `input_ids` of shape
    `(batch, choices, length)` equal ours. HF has no exact home for the other
    heads: `OpenAIGPTDoubleHeadsModel` forces `num_labels=1`,
    `OpenAIGPTForSequenceClassification`'s linear layer has no bias (ours does)
    and finds the last token through a padding id (GPT-1 has none), and no HF
    head adds two sequences' states (`"similarity"`). Their backbone is written.

    Every row of the token embedding is written by default (GPT-1's 40,478 BPE
    tokens and `_start_`, `_delimiter_`, `_classify_`), so HF's logits cover our
    vocabulary; the tokenizer files list the special tokens as added tokens with our
    ids (40478-40480). `vocabulary_size=40478` writes `openai-gpt`'s own vocabulary.
    LoRA-enabled layers are written with their merged kernels (`Dense.kernel`). A
    quantized model cannot be exported (HF's GPT-1 has no int8 format): export the
    float model.

    Args:
        model: a `GPT1Backbone`, `GPT1CausalLM` or `GPT1Classifier` (see the module
            docstring for what each becomes).
        directory: where to write; created if missing. Files of the same names
            there are replaced; other files are left as they are.
        tokenizer: `"auto"` (the model's preprocessor's tokenizer, else GPT-1's own
            `GPT1Tokenizer()` when the model's vocabulary is GPT-1's 40,478 + 3
            tokens, else none), a `GPT1Tokenizer`, or `None` (no tokenizer files).
        vocabulary_size: rows of the token embedding to write (default: all).

    Returns:
        The list of files written.

    Example:
    ```python
    lm = GPT1CausalLM.from_architecture("gpt1_tiny")
    export_to_hf(lm, "/tmp/gpt1_hf")
    hf = transformers.OpenAIGPTLMHeadModel.from_pretrained("/tmp/gpt1_hf")
    ```
    """
    from safetensors.numpy import save_file

    backbone, classifier = _split_model(model)
    vocabulary_size = _check_vocabulary_size(backbone, vocabulary_size)
    if classifier is not None and classifier.head not in _DOUBLE_HEADS:
        warnings.warn(
            f"Hugging Face has no equivalent of GPT1Classifier(head={classifier.head!r}) "
            "(OpenAIGPTForSequenceClassification has no bias and pools at a padding "
            "id; only the multiple-choice head maps, to OpenAIGPTDoubleHeadsModel): "
            "writing the backbone and the tied LM head only (OpenAIGPTLMHeadModel).",
            stacklevel=2,
        )
    if tokenizer == "auto":
        tokenizer = _model_tokenizer(model)
        if tokenizer is None and backbone.vocabulary_size in (40478, 40481):
            from gpt1_keras.tokenizers.gpt1_tokenizer import GPT1Tokenizer

            tokenizer = GPT1Tokenizer()
    if tokenizer is not None and tokenizer.vocabulary_size() < vocabulary_size:
        raise ExportError(
            f"The tokenizer has {tokenizer.vocabulary_size()} ids, fewer than the "
            f"{vocabulary_size} embedding rows written: pass its tokenizer, "
            "tokenizer=None or a smaller vocabulary_size."
        )
    state = hf_state_dict(model, vocabulary_size)
    config = hf_config(model, vocabulary_size)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ExportError(f"The export directory {directory} is a file.")
    os.makedirs(directory, exist_ok=True)
    written = []
    weights_path = os.path.join(directory, WEIGHTS_FILE)
    save_file(state, weights_path + ".tmp", metadata={"format": "pt"})
    os.replace(weights_path + ".tmp", weights_path)
    written.append(weights_path)
    config_path = os.path.join(directory, CONFIG_FILE)
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    written.append(config_path)
    if tokenizer is not None:
        write_tokenizer_files(tokenizer, directory, vocabulary_size,
                              model_max_length=backbone.max_sequence_length)
        written += [os.path.join(directory, name) for name in TOKENIZER_FILES]
    return written
