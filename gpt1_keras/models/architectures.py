"""Backbones by architecture name, for binaries that take `--architecture`.

`"transformer"` is `GPT1Backbone`, `"lstm"` the `LSTMBackbone` baseline. Both
take `{"token_ids", "padding_mask"}` and return `(batch, length, hidden_dim)`
states with a `token_embedding`, so `GPT1CausalLM` and `GPT1Classifier` run on
either.

Example:
```python
backbone = build_backbone("lstm", "lstm_small", dropout=0.0)
lm = GPT1CausalLM(backbone)
```
"""

import inspect

from gpt1_keras.models.gpt1_backbone import GPT1Backbone
from gpt1_keras.models.gpt1_presets import get_preset
from gpt1_keras.models.lstm_backbone import LSTMBackbone

ARCHITECTURES = {
    "transformer": GPT1Backbone,
    "lstm": LSTMBackbone,
}


def backbone_class(architecture):
    """The backbone class of `architecture` (`"transformer"` or `"lstm"`)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"`architecture` must be one of {tuple(ARCHITECTURES)}. "
            f"Received: architecture={architecture!r}"
        )
    return ARCHITECTURES[architecture]


def build_backbone(architecture, preset, **overrides):
    """A randomly initialised backbone of `architecture` from one of its presets.

    Args:
        architecture: `"transformer"` or `"lstm"`.
        preset: a preset of that architecture (`gpt1`, `gpt1_small`, `gpt1_tiny`;
            `lstm_small`, `lstm_tiny`); a preset of the other one is an error.
        **overrides: constructor arguments replacing the preset's; names the
            class does not take are an error that lists the ones it does.
    """
    cls = backbone_class(architecture)
    arguments = get_preset(preset, architecture=architecture)
    known = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    unknown = sorted(set(overrides) - known - {"name"})
    if unknown:
        raise ValueError(
            f"{cls.__name__} takes no argument(s) {unknown}; it takes {sorted(known)}. "
            f"Received: overrides={overrides}"
        )
    return cls(**{**arguments, **overrides})
