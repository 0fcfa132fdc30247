"""Hugging Face checkpoints on disk for the preset tests: directories and a Hub cache.

The reference models are `transformers`' own (`tests.models.hf_reference`),
written by `save_pretrained`; nothing is downloaded.
"""

import os
import shutil

import keras
import numpy as np
import torch

from gpt1_keras.tokenizers.bpe import DEFAULT_MERGES
from gpt1_keras.tokenizers.bpe import DEFAULT_VOCABULARY
from tests.models import hf_reference

# GPT-1's real 40,478-token vocabulary (so that the checkpoint's `vocab.json` and
# `merges.txt` are GPT-1's), everything else tiny.
TINY_HF_CONFIG = dict(vocab_size=40478, n_positions=32, n_embd=32, n_layer=2, n_head=4)
# A commit hash for the Hub cache's `refs/main`.
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def write_hf_checkpoint(model, directory, safe_serialization=True, tokenizer=True):
    """`save_pretrained` of `model` into `directory`, plus GPT-1's tokenizer files."""
    model.save_pretrained(directory, safe_serialization=safe_serialization)
    if tokenizer:
        shutil.copy(DEFAULT_VOCABULARY, os.path.join(directory, "vocab.json"))
        shutil.copy(DEFAULT_MERGES, os.path.join(directory, "merges.txt"))
    return directory


def write_hub_cache_entry(hub_cache, repo_id, checkpoint_dir, commit=COMMIT):
    """Lays `checkpoint_dir` out as `huggingface_hub`'s cache holds `repo_id`.

    `<hub_cache>/models--<owner>--<name>/snapshots/<commit>/<files>` and
    `refs/main` naming the commit: what `hf_hub_download` reads when offline.
    """
    repo_dir = os.path.join(hub_cache, "models--" + repo_id.replace("/", "--"))
    shutil.copytree(checkpoint_dir, os.path.join(repo_dir, "snapshots", commit))
    os.makedirs(os.path.join(repo_dir, "refs"), exist_ok=True)
    with open(os.path.join(repo_dir, "refs", "main"), "w") as f:
        f.write(commit)
    return repo_dir


def padded_inputs(vocab_size, batch=3, length=20, seed=0):
    """Random ids; row 1 right-padded, row 2 left-padded."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(0, vocab_size, size=(batch, length)).astype("int32")
    padding_mask = np.ones((batch, length), "int32")
    padding_mask[1, length - 6 :] = 0
    padding_mask[2, :4] = 0
    return token_ids, padding_mask


def parity_errors(backbone, hf_model):
    """Max abs differences from HF at real positions, with and without padding.

    Returns `{"hidden/padded": e, "logits/padded": e, "hidden/unpadded": e,
    "logits/unpadded": e}`: the last hidden states against HF's
    `transformer(...).last_hidden_state`, and the tied-head logits over HF's
    vocabulary against HF's `OpenAIGPTLMHeadModel` logits.
    """
    vocab_size = hf_model.config.vocab_size
    token_ids, padding_mask = padded_inputs(vocab_size)
    errors = {}
    for name, mask in (("padded", padding_mask), ("unpadded", np.ones_like(padding_mask))):
        with torch.no_grad():
            hf_hidden = hf_model.transformer(
                input_ids=torch.as_tensor(token_ids, dtype=torch.long),
                attention_mask=torch.as_tensor(mask, dtype=torch.float32),
            ).last_hidden_state.numpy()
        hf_logits = hf_reference.hf_logits(hf_model, token_ids, mask)
        hidden = backbone({"token_ids": token_ids, "padding_mask": mask})
        logits = backbone.token_embedding(hidden, reverse=True)
        hidden = keras.ops.convert_to_numpy(hidden)
        logits = keras.ops.convert_to_numpy(logits)[..., :vocab_size]
        real = mask.astype(bool)
        errors[f"hidden/{name}"] = float(np.abs(hidden[real] - hf_hidden[real]).max())
        errors[f"logits/{name}"] = float(np.abs(logits[real] - hf_logits[real]).max())
    return errors
