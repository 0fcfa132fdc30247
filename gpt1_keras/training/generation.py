"""Small text sampling from a `GPT1CausalLM`, for inspecting a training run.

No cache: each new token runs the model on the whole (truncated) prefix, which is
fine for a few short samples. Works on every backend (the model call is
`keras.ops`; sampling is numpy).
"""

import numpy as np
from keras import ops


def sample_tokens(lm, prompt_ids, max_new_tokens=40, top_k=40, temperature=1.0, seed=0):
    """Extends `prompt_ids` by sampling from the top-k next-token distribution.

    Args:
        lm: a `GPT1CausalLM`.
        prompt_ids: a non-empty list of int token ids.
        max_new_tokens: tokens to generate.
        top_k: sample among the `top_k` most likely tokens; 1 is greedy decoding.
        temperature: divides the logits before the softmax.
        seed: numpy seed of the sampler.

    Returns:
        The list of prompt and generated ids.
    """
    if not prompt_ids:
        raise ValueError("`prompt_ids` is empty: pass at least one token.")
    if top_k < 1:
        raise ValueError(f"`top_k` must be >= 1. Received: top_k={top_k}")
    rng = np.random.default_rng(seed)
    context = lm.backbone.max_sequence_length
    ids = [int(i) for i in prompt_ids]
    for _ in range(max_new_tokens):
        window = np.asarray([ids[-context:]], "int32")  # (1, t)
        logits = lm({"token_ids": window, "padding_mask": np.ones_like(window)},
                    training=False)
        last = np.asarray(ops.convert_to_numpy(ops.cast(logits[0, -1], "float32")))
        last = last / max(temperature, 1e-6)
        top = np.argpartition(-last, min(top_k, last.size) - 1)[:top_k]
        probs = np.exp(last[top] - last[top].max())
        ids.append(int(rng.choice(top, p=probs / probs.sum())))
    return ids


def generate_text(lm, tokenizer, prompts, max_new_tokens=40, top_k=40, seed=0):
    """Samples one continuation per prompt and returns the detokenized texts.

    Args:
        lm: a `GPT1CausalLM`.
        tokenizer: a `GPT1Tokenizer` (tokenize and `detokenize`).
        prompts: a list of strings.
        max_new_tokens, top_k: see `sample_tokens`.
        seed: the sampler's seed; prompt `i` uses `seed + i`.

    Returns:
        A list of strings: each prompt's normalised text plus its continuation.
    """
    texts = []
    for i, prompt in enumerate(prompts):
        prompt_ids = tokenizer([prompt]).to_list()[0]
        ids = sample_tokens(lm, prompt_ids, max_new_tokens, top_k, seed=seed + i)
        texts.append(tokenizer.detokenize(ids).numpy().decode("utf-8", "replace"))
    return texts
