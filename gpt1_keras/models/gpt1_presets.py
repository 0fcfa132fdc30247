"""GPT-1 presets: plain dicts of `GPT1Backbone` constructor arguments.

Only architectures are named here; no weights are downloaded. Converted weights
(see `gpt1_keras.checkpoint_conversion`) load into a backbone built from `gpt1`.
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


def get_preset(name):
    """Returns a copy of the named preset's constructor arguments."""
    if name not in backbone_presets:
        raise ValueError(
            f"Unknown GPT-1 preset {name!r}. Known presets: "
            f"{', '.join(sorted(backbone_presets))}."
        )
    return dict(backbone_presets[name])
