"""Backbones by architecture name, for binaries that take `--architecture`.

`"transformer"` is `GPT1Backbone`, `"lstm"` the `LSTMBackbone` baseline. Both
take `{"token_ids", "padding_mask"}` and return `(batch, length, hidden_dim)`
states with a `token_embedding`, so `GPT1CausalLM` and `GPT1Classifier` run on
either.

`build_backbone` takes either kind of `preset`: an architecture name
(`gpt1_small`, `lstm_tiny`, ...: an untrained model) or a real preset (a preset
directory, `hf://...`, `kaggle://...`: weights included).

Example:
```python
backbone = build_backbone("lstm", "lstm_small", dropout=0.0)  # untrained
backbone = build_backbone("transformer", "hf://openai-community/openai-gpt")
lm = GPT1CausalLM(backbone)
```
"""

import inspect

from gpt1_keras.models import preset_loading
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
    """A backbone of `architecture`: untrained from an architecture name, or a preset's.

    Args:
        architecture: `"transformer"` or `"lstm"`.
        preset: either an architecture name of that architecture (`gpt1`,
            `gpt1_small`, `gpt1_tiny`; `lstm_small`, `lstm_tiny`), which builds a
            randomly initialised model (`from_architecture`), or a real preset
            (a directory written by `save_to_preset`, `"hf://owner/name"` or a
            local Hugging Face OpenAI GPT checkpoint, `"kaggle://..."`), which
            loads its configuration and weights (`from_preset`). An architecture
            name or preset of the other architecture is an error.
        **overrides: constructor arguments replacing the configuration's (for a
            preset, only ones that keep the weights' shapes: `dropout`, `dtype`,
            ...); names the class does not take are an error that lists the
            ones it does.
    """
    cls = backbone_class(architecture)
    known = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    unknown = sorted(set(overrides) - known - {"name"})
    if unknown:
        raise ValueError(
            f"{cls.__name__} takes no argument(s) {unknown}; it takes {sorted(known)}. "
            f"Received: overrides={overrides}"
        )
    if not preset_loading.is_architecture_name(preset):
        held = preset_loading.preset_backbone_class(preset)
        if not issubclass(held, cls):
            raise preset_loading.PresetError(
                f"Preset {preset!r} holds a {held.__name__}, not the {cls.__name__} of "
                f"architecture={architecture!r}."
            )
        return cls.from_preset(preset, **overrides)
    return cls(**{**get_preset(preset, architecture=architecture), **overrides})
