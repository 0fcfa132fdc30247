"""Text samples from a `GPT1CausalLM` for inspecting a training run.

Thin wrappers over `GPT1CausalLM.generate` (key/value cache, compiled loop, every
backend) that keep a training run's sampling settings in one place: top-k
sampling, and prompts too long for the context cut from the left.
"""


def _fit_prompt(prompt_ids, context, max_new_tokens):
    """Keeps the last `context - max_new_tokens` ids of a prompt, so it fits."""
    if max_new_tokens >= context:
        raise ValueError(
            f"`max_new_tokens` must leave room for a prompt in the model's context of "
            f"{context}. Received: max_new_tokens={max_new_tokens}"
        )
    return list(prompt_ids)[-(context - max_new_tokens):]


def sample_tokens(lm, prompt_ids, max_new_tokens=40, top_k=40, temperature=1.0, seed=0):
    """Extends `prompt_ids` by sampling from the top-k next-token distribution.

    Args:
        lm: a `GPT1CausalLM`.
        prompt_ids: a non-empty list of int token ids. If it plus `max_new_tokens`
            exceeds the context, only its last tokens are kept (and returned).
        max_new_tokens: tokens to generate (fewer than the context).
        top_k: sample among the `top_k` most likely tokens (at most the whole
            vocabulary); 1 is greedy decoding.
        temperature: divides the logits before the softmax.
        seed: the sampler's seed.

    Returns:
        The list of (kept) prompt and generated ids.
    """
    if not len(prompt_ids):
        raise ValueError("`prompt_ids` is empty: pass at least one token.")
    prompt = _fit_prompt(prompt_ids, lm.backbone.max_sequence_length, max_new_tokens)
    top_k = min(top_k, lm.backbone.vocabulary_size)
    return lm.generate(
        [prompt], max_new_tokens, strategy="sample", top_k=top_k,
        temperature=temperature, seed=seed,
    )[0]


def generate_text(lm, tokenizer, prompts, max_new_tokens=40, top_k=40, seed=0):
    """Samples one continuation per prompt (one batch) and returns the texts.

    Args:
        lm: a `GPT1CausalLM`.
        tokenizer: a `GPT1Tokenizer` (tokenize and `detokenize`).
        prompts: a list of strings (empty: no samples). A prompt too long to
            leave `max_new_tokens` in the context keeps only its last tokens.
        max_new_tokens, top_k: see `sample_tokens`.
        seed: the sampler's seed (one for the batch).

    Returns:
        A list of strings: each prompt's normalised (possibly truncated) text
        plus its continuation.
    """
    if not len(prompts):
        return []
    context = lm.backbone.max_sequence_length
    prompt_ids = [_fit_prompt(ids, context, max_new_tokens)
                  for ids in tokenizer(list(prompts)).to_list()]
    top_k = min(top_k, lm.backbone.vocabulary_size)
    token_ids = lm.generate(prompt_ids, max_new_tokens, strategy="sample", top_k=top_k,
                            seed=seed)
    return [t.decode("utf-8", "replace") for t in tokenizer.detokenize(token_ids).numpy()]
