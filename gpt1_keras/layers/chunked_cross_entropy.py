"""Cross-entropy over a tied LM head without the full `(positions, vocabulary)` logits.

The LM head of GPT-1 is `logits = hidden @ embeddings^T` over a 40,481-token
vocabulary: at the paper's batch (64 x 512) the logits alone are 5.3 GB in
float32, and autodiff keeps them, their softmax and their gradient alive at
once. `chunked_cross_entropy_sum` computes the same weighted sum of token
losses a chunk of positions at a time inside one loop (`keras.ops.fori_loop`),
so that only one chunk's logits exist at any moment:

- `differentiable=True` (training): each chunk's gradient
  `w * (softmax(logits) - one_hot(label))` is formed while its logits are
  live and immediately contracted into the gradients w.r.t. `hidden` and
  `embeddings` (the fused linear cross-entropy); `keras.ops.custom_gradient`
  hands those back in the backward pass, scaled by the upstream gradient. The
  backward pass costs no extra matmul: the FLOPs are those of autodiff over the
  full logits.
- `differentiable=False` (evaluation): the loss alone, no gradient work.
  Autodiff through this path is still exact, but keeps every chunk's logits.
"""

from keras import ops


def chunked_cross_entropy_sum(hidden, embeddings, labels, sample_weight=None, *,
                              chunk_size=1024, differentiable=True):
    """`sum_i w_i * CE(hidden_i @ embeddings^T, labels_i)`, a chunk of positions at a time.

    The same value (and, with `differentiable=True`, the same gradients) as
    `sum(w * keras.losses.sparse_categorical_crossentropy(labels, hidden @
    embeddings^T, from_logits=True))`. The logits are computed in the dtype of
    `hidden` and `embeddings` (the compute dtype, as `ReversibleEmbedding`
    does) and the softmax in float32.

    The positions are split into `ceil(positions / chunk_size)` chunks of equal
    size (padded with fewer rows than there are chunks, of weight 0), so any
    number of positions works with any `chunk_size`.

    Args:
        hidden: `(..., C)` final hidden states.
        embeddings: `(V, C)` output embedding matrix (`tied_head_matrix()`), in
            the dtype of `hidden`.
        labels: int `(...)` target ids, the shape of `hidden` without its last axis.
        sample_weight: optional `(...)` weights (e.g. 0 on padding); default 1.
        chunk_size: at most this many positions per chunk.
        differentiable: compute the gradients w.r.t. `hidden` and `embeddings`
            in the same pass (training); `False` for the loss alone.

    Returns:
        A float32 scalar: the weighted sum of the token losses.
    """
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ValueError(
            f"`chunk_size` must be a positive integer. Received: chunk_size={chunk_size!r}")
    vocabulary_size, dim = embeddings.shape
    flat_hidden = ops.reshape(hidden, (-1, dim))  # (N, C)
    positions = ops.shape(flat_hidden)[0]
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))  # (N,)
    if sample_weight is None:
        weights = ops.ones((positions,), "float32")
    else:
        weights = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))  # (N,)

    # (N, ...) -> (chunks, size, ...), the padding rows of weight 0.
    chunks = _ceil_div(positions, chunk_size)
    chunks = max(chunks, 1) if isinstance(chunks, int) else ops.maximum(chunks, 1)
    size = _ceil_div(positions, chunks)
    pad = chunks * size - positions

    def split(x):
        x = ops.pad(x, [(0, pad)] + [(0, 0)] * (len(x.shape) - 1))
        return ops.reshape(x, (chunks, size) + tuple(x.shape[1:]))

    hidden_chunks, label_chunks, weight_chunks = split(flat_hidden), split(labels), split(weights)
    vocabulary = ops.arange(vocabulary_size, dtype="int32")

    def chunk_loss(i, hidden_chunks, embeddings):
        """Chunk `i`: its weighted loss sum and the `(size, V)` gradient w.r.t. its logits."""
        h, y, w = hidden_chunks[i], label_chunks[i], weight_chunks[i]
        logits = ops.cast(ops.einsum("nc,vc->nv", h, embeddings), "float32")  # (size, V)
        log_norm = ops.logsumexp(logits, axis=-1)  # (size,)
        target = ops.take_along_axis(logits, y[:, None], axis=-1)[:, 0]
        total = ops.sum(w * (log_norm - target))
        if not differentiable:
            return total, None
        # d total / d logits = w * (softmax - one_hot(y)), one fused pass.
        probs = ops.exp(logits - log_norm[:, None])
        is_target = ops.equal(vocabulary[None, :], y[:, None])
        grad_logits = ops.where(is_target, probs - 1.0, probs) * w[:, None]
        return total, ops.cast(grad_logits, hidden.dtype)

    if not differentiable:
        def body(i, total):
            return total + chunk_loss(i, hidden_chunks, embeddings)[0]

        return ops.fori_loop(0, chunks, body, ops.zeros((), "float32"))

    @ops.custom_gradient
    def fused(hidden_chunks, embeddings):
        def body(i, carry):
            total, grad_hidden, grad_embeddings = carry
            loss, grad_logits = chunk_loss(i, hidden_chunks, embeddings)
            h = hidden_chunks[i]
            # (size, V) @ (V, C) -> (size, C); (size, V)^T @ (size, C) -> (V, C).
            chunk_grad_hidden = ops.matmul(grad_logits, embeddings)
            grad_hidden = ops.slice_update(grad_hidden, (i, 0, 0), chunk_grad_hidden[None])
            grad_embeddings += ops.cast(ops.einsum("nv,nc->vc", grad_logits, h), "float32")
            return total + loss, grad_hidden, grad_embeddings

        init = (ops.zeros((), "float32"), ops.zeros_like(hidden_chunks),
                ops.zeros((vocabulary_size, dim), "float32"))
        total, grad_hidden, grad_embeddings = ops.fori_loop(0, chunks, body, init)

        def grad(*args, upstream=None):
            if upstream is None:  # TensorFlow and JAX pass it positionally.
                (upstream,) = args
            return (ops.cast(upstream, grad_hidden.dtype) * grad_hidden,
                    ops.cast(upstream * grad_embeddings, embeddings.dtype))

        return total, grad

    # Autodiff takes the gradient w.r.t. the chunks back through `split` to `hidden`.
    return fused(hidden_chunks, embeddings)


def tied_head_matrix(embedding):
    """The `(V, C)` matrix of a tied `ReversibleEmbedding`'s `reverse=True` call.

    In the layer's compute dtype, as its call casts it (mixed precision). A
    LoRA-enabled embedding gives its merged matrix, differentiable w.r.t. both
    parts.

    Raises:
        ValueError: the head is not a plain product with the tied embeddings
            (untied, soft-capped logits, or quantized).
    """
    problems = [name for name, bad in (
        ("tie_weights=False", not embedding.tie_weights),
        ("logit_soft_cap", embedding.logit_soft_cap is not None),
        ("quantization", embedding.quantization_mode is not None),
    ) if bad]
    if problems:
        raise ValueError(
            f"The chunked LM loss needs a tied head without soft cap or quantization; "
            f"{embedding.name} has {', '.join(problems)}.")
    return ops.cast(embedding.embeddings, embedding.compute_dtype)


def _ceil_div(a, b):
    return -(-a // b)
