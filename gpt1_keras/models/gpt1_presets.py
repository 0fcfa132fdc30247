"""Architecture configurations: plain dicts of backbone constructor arguments.

`backbone_presets` are `GPT1Backbone`'s, `lstm_backbone_presets` `LSTMBackbone`'s.

These name untrained models (`GPT1Backbone.from_architecture("gpt1")`); no
weights are downloaded. Presets with weights, in keras-hub's sense, are loaded
by `from_preset` (`gpt1_keras.models.preset_loading`): a directory written by
`save_to_preset`, `"hf://openai-community/openai-gpt"`, a `kaggle://` handle.
"""

# 40,478 BPE tokens (40,000 merges) + `_start_`, `_delimiter_`, `_classify_`.
GPT1_VOCABULARY_SIZE = 40478 + 3

backbone_presets = {
    # The paper's model: 12 x 768, 12 heads, 512 positions, ~117M parameters.
    "gpt1": {
        "vocabulary_size": GPT1_VOCABULARY_SIZE,
        "num_layers": 12,
        "num_heads": 12,
        "hidden_dim": 768,
        "intermediate_dim": 3072,
        "max_sequence_length": 512,
        "dropout": 0.1,
        "layer_norm_epsilon": 1e-5,
    },
    # Trains usefully in minutes on 2 CPU cores.
    "gpt1_small": {
        "vocabulary_size": GPT1_VOCABULARY_SIZE,
        "num_layers": 6,
        "num_heads": 6,
        "hidden_dim": 384,
        "intermediate_dim": 1536,
        "max_sequence_length": 256,
        "dropout": 0.1,
        "layer_norm_epsilon": 1e-5,
    },
    # The `mini` recipe's model: GPT-1's architecture at 4 x 256 with a BPE of 8,192
    # tokens learned on the corpus (the vocabulary size is the tokenizer's; this is the
    # default). 5.3M parameters; sized by bench/pretrain/mini_sizing.py (BENCHMARKS.md).
    "gpt1_mini": {
        "vocabulary_size": 8192 + 3,
        "num_layers": 4,
        "num_heads": 4,
        "hidden_dim": 256,
        "intermediate_dim": 1024,
        "max_sequence_length": 128,
        "dropout": 0.1,
        "layer_norm_epsilon": 1e-5,
    },
    # For tests: the real vocabulary, everything else tiny.
    "gpt1_tiny": {
        "vocabulary_size": GPT1_VOCABULARY_SIZE,
        "num_layers": 2,
        "num_heads": 2,
        "hidden_dim": 32,
        "intermediate_dim": 128,
        "max_sequence_length": 64,
        "dropout": 0.1,
        "layer_norm_epsilon": 1e-5,
    },
}


# The LSTM baseline (`LSTMBackbone`), same tokenizer and embedding width as the
# transformer it is matched to: one LSTM layer, then a projection back to the
# embedding width for the tied LM head.
lstm_backbone_presets = {
    # Matched to gpt1_small: 384-wide embedding, 1,408 LSTM units; 26.18M
    # parameters against gpt1_small's 26.29M (99.6%).
    "lstm_small": {
        "vocabulary_size": GPT1_VOCABULARY_SIZE,
        "hidden_dim": 384,
        "lstm_units": 1408,
        "max_sequence_length": 256,
        "dropout": 0.1,
    },
    # Matched to gpt1_mini: 256-wide embedding, 748 LSTM units; 5.30M parameters
    # against gpt1_mini's 5.29M (100.1%).
    "lstm_mini": {
        "vocabulary_size": 8192 + 3,
        "hidden_dim": 256,
        "lstm_units": 748,
        "max_sequence_length": 128,
        "dropout": 0.1,
    },
    # For tests: the real vocabulary, everything else tiny.
    "lstm_tiny": {
        "vocabulary_size": GPT1_VOCABULARY_SIZE,
        "hidden_dim": 32,
        "lstm_units": 64,
        "max_sequence_length": 64,
        "dropout": 0.1,
    },
}

# Each architecture's presets (`gpt1_keras.models.backbone_class` names the class).
presets_by_architecture = {
    "transformer": backbone_presets,
    "lstm": lstm_backbone_presets,
}


def preset_architecture(name):
    """The architecture (`"transformer"` or `"lstm"`) whose presets hold `name`."""
    for architecture, presets in presets_by_architecture.items():
        if name in presets:
            return architecture
    known = sorted(n for presets in presets_by_architecture.values() for n in presets)
    raise ValueError(f"Unknown preset {name!r}. Known presets: {', '.join(known)}.")


# Presets of (nearly) equal parameter count across architectures: the paper's LSTM
# baseline is matched to the transformer's size.
EQUAL_SIZE_PRESETS = (("gpt1_small", "lstm_small"), ("gpt1_mini", "lstm_mini"),
                      ("gpt1_tiny", "lstm_tiny"))


def matching_preset(name, architecture):
    """`name` if it is a preset of `architecture`, else its equal-size counterpart."""
    presets = presets_by_architecture.get(architecture, {})
    if name in presets:
        return name
    for group in EQUAL_SIZE_PRESETS:
        if name in group:
            for other in group:
                if other in presets:
                    return other
    raise ValueError(
        f"Preset {name!r} has no counterpart of architecture={architecture!r}; name one "
        f"of its presets: {', '.join(sorted(presets))}."
    )


def get_preset(name, architecture="transformer"):
    """Returns a copy of the named preset's constructor arguments.

    Args:
        name: a preset of `architecture`.
        architecture: `"transformer"` (`GPT1Backbone`, the default) or `"lstm"`
            (`LSTMBackbone`).
    """
    if architecture not in presets_by_architecture:
        raise ValueError(
            f"`architecture` must be one of {tuple(presets_by_architecture)}. "
            f"Received: architecture={architecture!r}"
        )
    presets = presets_by_architecture[architecture]
    if name not in presets:
        other = [a for a, p in presets_by_architecture.items() if name in p]
        hint = f" {name!r} is a preset of architecture={other[0]!r}." if other else ""
        label = "GPT-1" if architecture == "transformer" else architecture.upper()
        raise ValueError(
            f"Unknown {label} preset {name!r}. Known presets: "
            f"{', '.join(sorted(presets))}.{hint}"
        )
    return dict(presets[name])
