"""Independent reference: Hugging Face `OpenAIGPTLMHeadModel` in PyTorch.

Tests and benchmarks build randomly initialised HF models here (no download).
Every tensor, biases and LayerNorm parameters included, gets random values so
that a mis-mapped or forgotten tensor changes the outputs.
"""

import numpy as np
import torch
import transformers

# The paper's GPT-1 at full size, with HF's 40,478-token vocabulary.
FULL_CONFIG = dict(
    vocab_size=40478, n_positions=512, n_embd=768, n_layer=12, n_head=12
)
SMALL_CONFIG = dict(vocab_size=1000, n_positions=64, n_embd=64, n_layer=2, n_head=4)


def make_hf_lm(seed=0, randomize_all=True, weight_std=0.02, **config):
    """Returns an `OpenAIGPTLMHeadModel` in eval mode with random weights.

    With `randomize_all`, LayerNorm gains are `1 + N(0, 0.1)` and every other
    tensor is `N(0, weight_std)`.
    """
    torch.manual_seed(seed)
    hf_config = transformers.OpenAIGPTConfig(**config)
    model = transformers.OpenAIGPTLMHeadModel(hf_config).eval()
    if randomize_all:
        generator = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for name, param in model.named_parameters():
                noise = torch.randn(param.shape, generator=generator)
                if name.endswith("ln_1.weight") or name.endswith("ln_2.weight"):
                    param.copy_(1.0 + 0.1 * noise)
                else:
                    param.copy_(weight_std * noise)
    return model


def hf_state_dict_numpy(model):
    """The model's state dict as `{name: np.ndarray}`."""
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}


def hf_logits(model, token_ids, padding_mask=None):
    """HF logits as numpy, `(batch, length, vocab)`."""
    with torch.no_grad():
        out = model(
            input_ids=torch.as_tensor(np.asarray(token_ids), dtype=torch.long),
            attention_mask=None
            if padding_mask is None
            else torch.as_tensor(np.asarray(padding_mask), dtype=torch.float32),
        )
    return out.logits.numpy()


def use_erf_gelu(model):
    """Swaps the model's MLP activation for the exact (erf) GELU, in place.

    HF's GPT-1 (`afn="gelu"`) uses the tanh approximation, as GPT-1 did; this
    variant is the wrong reference that a parity test must be able to reject.
    """
    for block in model.transformer.h:
        block.mlp.act = torch.nn.GELU(approximate="none")
    return model
