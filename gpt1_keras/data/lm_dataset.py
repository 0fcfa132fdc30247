"""Language-model pretraining data: text files -> contiguous token windows.

This module is TensorFlow-only (`tf.data`); the batches it yields are plain
tensors that any Keras backend consumes (`model.fit(ds)` works under JAX and
torch too).

Layout of the token stream
--------------------------
Files are read in order (shuffled per epoch when `shuffle=True`), line by line.
Each non-blank line is tokenized and followed by `separator_id` (default: the
tokenizer's `newline_token_id`, i.e. what the original GPT-1 encoder emits for
`"\\n"`). Blank or whitespace-only lines add nothing, as in the original
encoder, which collapses runs of newlines into one `\\n` token. Since every
file ends with a separator, documents (files) are separated by it too.

The stream is cut into windows of `sequence_length + 1` tokens at stride
`sequence_length`: consecutive windows share one token, so every token after the
first is a target exactly once. A window `w` gives `x = w[:-1]`, `y = w[1:]`.
A line longer than the context simply spans several windows.

Each element is `(x, y, sample_weight)` with
`x = {"token_ids": int32 [B, T], "padding_mask": bool [B, T]}`, `y` int32
`[B, T]` (next-token ids) and `sample_weight` float32 `[B, T]`, 0 on padding.
Only the last, partial window of a finite (`repeat=False`) stream has padding
(filled with `pad_token_id`); with `repeat=True` there is none.

Large corpora: tokenize once with `write_token_shards()`, then train from the
TFRecord shards with `make_lm_dataset_from_shards()`; both paths yield the same
windows in the same order when `shuffle=False`.
"""

import json
import os
import warnings

import numpy as np
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
SHARD_METADATA = "metadata.json"
_GLOB_CHARS = ("*", "?", "[")
_ERRORS = ("strict", "replace", "ignore")


def default_corpus_path():
    """Path of the embedded default pretraining corpus (tiny Shakespeare).

    Returns:
        The absolute path of `gpt1_keras/assets/data/tinyshakespeare.txt`.

    Example:
    >>> ds = make_lm_dataset(default_corpus_path(), GPT1Tokenizer())
    """
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(
        os.path.dirname(here), "assets", "data", "tinyshakespeare.txt"
    )


def resolve_files(file_patterns):
    """Expands file names and glob patterns into a sorted, checked file list.

    Args:
        file_patterns: a path or glob (`str` or `os.PathLike`), or a list of
            them. Any `tf.io.gfile` filesystem works (local, `gs://`, ...).

    Returns:
        A list of file paths: each pattern's matches in sorted order,
        duplicates removed, patterns kept in the given order.

    Raises:
        FileNotFoundError: a path does not exist or a glob matches nothing;
            the message names the pattern.
        IsADirectoryError: a path or match is a directory.

    Example:
    >>> resolve_files(["/data/books/*.txt", "/data/extra.txt"])
    """
    if isinstance(file_patterns, (str, bytes, os.PathLike)):
        file_patterns = [file_patterns]
    file_patterns = [os.fsdecode(p) for p in file_patterns]
    if not file_patterns:
        raise ValueError("`file_patterns` is empty: pass a file or glob.")
    files = []
    for pattern in file_patterns:
        if any(c in pattern for c in _GLOB_CHARS):
            matches = sorted(tf.io.gfile.glob(pattern))
            if not matches:
                raise FileNotFoundError(
                    f"The glob {pattern!r} matches no file."
                )
        elif tf.io.gfile.exists(pattern):
            matches = [pattern]
        else:
            raise FileNotFoundError(f"No such file: {pattern!r}")
        for path in matches:
            if tf.io.gfile.isdir(path):
                raise IsADirectoryError(
                    f"{path!r} is a directory (from {pattern!r}); pass the "
                    "files in it, e.g. a glob like 'dir/*.txt'."
                )
            if path not in files:
                files.append(path)
    return files


def make_lm_dataset(
    file_patterns,
    tokenizer,
    sequence_length=512,
    batch_size=64,
    separator_id=None,
    shuffle=True,
    seed=None,
    repeat=False,
    shuffle_buffer_size=10_000,
    drop_remainder=True,
    input_context=None,
    lines_per_chunk=512,
    errors="strict",
):
    """Builds the GPT-1 language-model pretraining dataset from text files.

    Pipeline: files -> lines -> batches of `lines_per_chunk` lines tokenized at
    once (in parallel) -> one token stream with `separator_id` after every
    non-blank line -> contiguous windows of `sequence_length + 1` tokens ->
    shuffle windows -> batch -> `(x, y, sample_weight)` -> prefetch. See the
    module docstring for the exact stream layout.

    Args:
        file_patterns: a path or glob, or a list of them (UTF-8 text files).
        tokenizer: a tokenizer such as `GPT1Tokenizer`: called on a string
            tensor `[N]` it returns an int `tf.RaggedTensor` `[N, None]`; it
            must have `pad_token_id` and, unless `separator_id` is given,
            `newline_token_id`.
        sequence_length: `T`, the number of positions per example.
        batch_size: the global batch size. With `input_context`, each replica
            gets `input_context.get_per_replica_batch_size(batch_size)`.
        separator_id: the token appended after each non-blank line (and hence
            between documents). Defaults to `tokenizer.newline_token_id`.
        shuffle: shuffle the file order (every epoch) and the windows.
        seed: the shuffle seed; the same seed gives the same batches, another
            seed another order. `None` gives a non-reproducible order.
        repeat: repeat the stream forever (an epoch is one pass over the
            files). When `False`, the last partial window is padded.
        shuffle_buffer_size: windows held in the shuffle buffer.
        drop_remainder: drop the last batch if smaller than the batch size
            (static shapes; needed by `tf.distribute` and XLA). A finite
            (`repeat=False`) text smaller than one batch then raises
            `tf.errors.InvalidArgumentError` when iterated, instead of
            yielding nothing.
        input_context: a `tf.distribute.InputContext` (from
            `strategy.distribute_datasets_from_function`). The files are
            split between input pipelines when there are at least as many
            files as pipelines; otherwise every pipeline reads everything and
            keeps every n-th window. Either way pipelines see disjoint
            windows.
        lines_per_chunk: lines tokenized per tokenizer call.
        errors: invalid UTF-8 handling: `"strict"` raises
            `tf.errors.InvalidArgumentError` naming the file and line;
            `"replace"` substitutes U+FFFD for each invalid byte sequence
            (what the pretraining recipe uses, after warning per file with
            `gpt1_keras.data.corpus.check_utf8`); `"ignore"` drops the bad bytes.

    Returns:
        A `tf.data.Dataset` of `(x, y, sample_weight)`.

    Raises:
        FileNotFoundError: a missing file or a glob matching nothing.
        ValueError: an empty corpus (every file has 0 bytes) or bad
            arguments. A corpus with bytes but no tokens (only blank lines)
            raises `tf.errors.InvalidArgumentError` naming the files when
            iterated.

    Example:
    >>> tokenizer = GPT1Tokenizer()
    >>> ds = make_lm_dataset("corpus/*.txt", tokenizer, sequence_length=512,
    ...                      batch_size=64, seed=1, repeat=True)
    >>> model.fit(ds, steps_per_epoch=1000)
    """
    _check_positive(sequence_length=sequence_length, batch_size=batch_size,
                    lines_per_chunk=lines_per_chunk,
                    shuffle_buffer_size=shuffle_buffer_size)
    if errors not in _ERRORS:
        raise ValueError(
            f"`errors` must be one of {_ERRORS}. Received: errors={errors!r}"
        )
    if separator_id is None:
        separator_id = _token_attribute(tokenizer, "newline_token_id")
    pad_token_id = _token_attribute(tokenizer, "pad_token_id")
    files = resolve_files(file_patterns)
    if all(tf.io.gfile.stat(f).length == 0 for f in files):
        raise ValueError(f"Empty corpus: every file has 0 bytes: {files}")

    files_ds, shard_windows = _shard_files(files, input_context)
    if shuffle:
        files_ds = files_ds.shuffle(len(files), seed=seed)

    chunks = _token_chunks(
        files_ds, tokenizer, separator_id, lines_per_chunk, errors
    )
    return _lm_dataset_from_chunks(
        chunks,
        description=_describe(files, "corpus", input_context),
        sequence_length=sequence_length,
        batch_size=batch_size,
        pad_token_id=pad_token_id,
        shuffle=shuffle,
        seed=seed,
        repeat=repeat,
        shuffle_buffer_size=shuffle_buffer_size,
        drop_remainder=drop_remainder,
        input_context=input_context,
        shard_windows=shard_windows,
    )


def write_token_shards(
    file_patterns,
    tokenizer,
    output_dir,
    num_shards=16,
    separator_id=None,
    tokens_per_record=1 << 16,
    lines_per_chunk=512,
    errors="strict",
):
    """Tokenizes a corpus once and writes the token stream as TFRecord shards.

    The stream is the one `make_lm_dataset` builds (same separators, same
    order, files not shuffled). It is cut into records of about
    `tokens_per_record` tokens that always end after a separator (whole
    lines), dealt round-robin to `num_shards` files
    `tokens-{i:05d}-of-{n:05d}.tfrecord`. Each record is a serialized int32
    tensor (`tf.io.serialize_tensor`). A `metadata.json` beside them records
    the token count, separator, pad id and sources; read them back with
    `make_lm_dataset_from_shards`.

    Args:
        file_patterns: a path or glob, or a list of them.
        tokenizer: as in `make_lm_dataset`.
        output_dir: the directory to write to (created if missing).
        num_shards: the number of shard files; use at least the number of
            input pipelines (workers) you will train with, so that each reads
            its own files.
        separator_id: as in `make_lm_dataset`.
        tokens_per_record: the target number of tokens per record.
        lines_per_chunk: lines tokenized per tokenizer call.
        errors: as in `make_lm_dataset`.

    Returns:
        The list of shard paths written.

    Example:
    >>> write_token_shards("books/*.txt", GPT1Tokenizer(), "/data/shards")
    >>> ds = make_lm_dataset_from_shards("/data/shards/*.tfrecord", seed=1)
    """
    _check_positive(num_shards=num_shards, tokens_per_record=tokens_per_record)
    if separator_id is None:
        separator_id = _token_attribute(tokenizer, "newline_token_id")
    pad_token_id = _token_attribute(tokenizer, "pad_token_id")
    files = resolve_files(file_patterns)
    stream = make_token_stream(
        files, tokenizer, separator_id=separator_id,
        lines_per_chunk=lines_per_chunk, errors=errors,
    )
    tf.io.gfile.makedirs(output_dir)
    paths = [
        os.path.join(output_dir, f"tokens-{i:05d}-of-{num_shards:05d}.tfrecord")
        for i in range(num_shards)
    ]
    writers = [tf.io.TFRecordWriter(p) for p in paths]
    num_tokens, num_records, pending = 0, 0, np.zeros([0], np.int32)

    def write(record):
        nonlocal num_records
        serialized = tf.io.serialize_tensor(tf.constant(record, tf.int32))
        writers[num_records % num_shards].write(serialized.numpy())
        num_records += 1

    try:
        for chunk in stream.as_numpy_iterator():
            num_tokens += len(chunk)
            pending = np.concatenate([pending, chunk])
            # Cut at the first separator at or after `tokens_per_record`.
            while len(pending) >= tokens_per_record:
                ends = np.flatnonzero(
                    pending[tokens_per_record - 1:] == separator_id)
                if not len(ends):
                    break
                cut = tokens_per_record + int(ends[0])
                write(pending[:cut])
                pending = pending[cut:]
        if len(pending):
            write(pending)
    finally:
        for writer in writers:
            writer.close()
    if 0 < num_records < num_shards:
        warnings.warn(
            f"write_token_shards: only {num_records} records for "
            f"{num_shards} shards; some shard files are empty. Lower "
            "`tokens_per_record` or `num_shards`.", stacklevel=2)
    if num_tokens == 0:
        raise ValueError(f"No tokens in {_describe(files, 'corpus')}.")
    metadata = {
        "num_tokens": num_tokens,
        "num_records": num_records,
        "separator_id": int(separator_id),
        "pad_token_id": int(pad_token_id),
        "sources": files,
    }
    with tf.io.gfile.GFile(os.path.join(output_dir, SHARD_METADATA), "w") as f:
        json.dump(metadata, f, indent=2)
    return paths


def make_lm_dataset_from_shards(
    file_patterns,
    sequence_length=512,
    batch_size=64,
    pad_token_id=None,
    shuffle=True,
    seed=None,
    repeat=False,
    shuffle_buffer_size=10_000,
    drop_remainder=True,
    input_context=None,
    cycle_length=None,
):
    """Builds the language-model dataset from `write_token_shards` output.

    Same elements as `make_lm_dataset`, without tokenizing: shard files are
    read in parallel (`interleave`), records decoded, windowed, shuffled and
    batched. With `shuffle=False` and the default `cycle_length`, it yields
    exactly the windows `make_lm_dataset(..., shuffle=False)` yields.

    Args:
        file_patterns: shard paths or globs (e.g. `"dir/*.tfrecord"`).
        sequence_length: `T`, the number of positions per example.
        batch_size: the global batch size (see `make_lm_dataset`).
        pad_token_id: the id that pads the last partial window. Defaults to
            the one in the shards' `metadata.json`, else 0.
        shuffle: shuffle the shard order (every epoch) and the windows.
        seed: the shuffle seed.
        repeat: repeat forever.
        shuffle_buffer_size: windows held in the shuffle buffer.
        drop_remainder: drop the last, smaller batch.
        input_context: a `tf.distribute.InputContext`; shard files are split
            between input pipelines when there are enough of them, else
            windows are.
        cycle_length: shard files read at once. Defaults to all of this
            pipeline's files when `shuffle=False` (reproducing the written
            order), else `min(files, 16)`.

    Returns:
        A `tf.data.Dataset` of `(x, y, sample_weight)`.

    Raises:
        FileNotFoundError: a missing shard file or an empty glob.

    Example:
    >>> ds = make_lm_dataset_from_shards("/data/shards/*.tfrecord",
    ...                                  batch_size=64, seed=1, repeat=True)
    """
    _check_positive(sequence_length=sequence_length, batch_size=batch_size,
                    shuffle_buffer_size=shuffle_buffer_size)
    files = resolve_files(file_patterns)
    if pad_token_id is None:
        pad_token_id = _read_metadata(files).get("pad_token_id", 0)
    files_ds, shard_windows = _shard_files(files, input_context)
    num_files = len(files)
    if not shard_windows and input_context is not None:
        num_files = len(files[input_context.input_pipeline_id::
                              input_context.num_input_pipelines])
    if shuffle:
        files_ds = files_ds.shuffle(len(files), seed=seed)
    if cycle_length is None:
        cycle_length = num_files if not shuffle else min(num_files, 16)

    chunks = files_ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, buffer_size=1 << 22),
        cycle_length=cycle_length,
        block_length=1,
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    ).map(
        lambda record: tf.io.parse_tensor(record, tf.int32),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    return _lm_dataset_from_chunks(
        chunks,
        description=_describe(files, "shards", input_context),
        sequence_length=sequence_length,
        batch_size=batch_size,
        pad_token_id=pad_token_id,
        shuffle=shuffle,
        seed=seed,
        repeat=repeat,
        shuffle_buffer_size=shuffle_buffer_size,
        drop_remainder=drop_remainder,
        input_context=input_context,
        shard_windows=shard_windows,
    )


def make_token_stream(
    file_patterns,
    tokenizer,
    separator_id=None,
    lines_per_chunk=512,
    errors="strict",
):
    """The corpus as a dataset of 1-D int32 token chunks, in file order.

    Concatenating the chunks gives the token stream described in the module
    docstring. Useful to inspect the stream or to count tokens.

    Args:
        file_patterns: a path or glob, or a list of them.
        tokenizer: as in `make_lm_dataset`.
        separator_id: as in `make_lm_dataset`.
        lines_per_chunk: lines tokenized per tokenizer call (one chunk).
        errors: as in `make_lm_dataset`.

    Returns:
        A `tf.data.Dataset` of int32 `[None]` tensors.

    Example:
    >>> stream = make_token_stream("corpus.txt", GPT1Tokenizer())
    >>> num_tokens = sum(int(c.shape[0]) for c in stream)
    """
    if errors not in _ERRORS:
        raise ValueError(
            f"`errors` must be one of {_ERRORS}. Received: errors={errors!r}"
        )
    if separator_id is None:
        separator_id = _token_attribute(tokenizer, "newline_token_id")
    files = resolve_files(file_patterns)

    files_ds = tf.data.Dataset.from_tensor_slices(files)
    return _token_chunks(
        files_ds, tokenizer, separator_id, lines_per_chunk, errors
    ).prefetch(AUTOTUNE)


# -- internals ----------------------------------------------------------------


def _lm_dataset_from_chunks(
    chunks,
    description,
    sequence_length,
    batch_size,
    pad_token_id,
    shuffle,
    seed,
    repeat,
    shuffle_buffer_size,
    drop_remainder,
    input_context,
    shard_windows,
):
    """Token chunks -> windows -> shuffled batches of `(x, y, sample_weight)`.

    One epoch of `chunks` is followed by an end marker; the windowing scan
    checks at each marker that the epoch had tokens (a blank corpus must not
    loop forever under `repeat=True`) and, when not repeating, flushes the
    last partial window with padding.
    """
    epoch = chunks.map(lambda t: (t, False)).concatenate(
        tf.data.Dataset.from_tensors((tf.zeros([0], tf.int32), True))
    )
    if repeat:
        epoch = epoch.repeat()
    windows = epoch.scan(
        _initial_window_state(),
        _make_window_fn(sequence_length, pad_token_id,
                        flush=not repeat, description=description),
    ).unbatch()
    if shard_windows:
        windows = windows.shard(
            input_context.num_input_pipelines, input_context.input_pipeline_id
        )
    if shuffle:
        windows = windows.shuffle(shuffle_buffer_size, seed=seed)
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)

    @tf.autograph.experimental.do_not_convert
    def to_features(x, y, num_targets):
        # (B,) -> (B, T): positions holding a real token and target.
        mask = tf.range(sequence_length)[None, :] < num_targets[:, None]
        features = {"token_ids": x, "padding_mask": mask}
        return features, y, tf.cast(mask, tf.float32)

    ds = windows.batch(batch_size, drop_remainder=drop_remainder)
    if drop_remainder and not repeat:
        ds = _fail_if_empty(ds, description, batch_size, sequence_length)
    ds = ds.map(to_features, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.prefetch(AUTOTUNE)


def _fail_if_empty(batches, description, batch_size, sequence_length):
    """`batches`, raising at its end if it had none (a text smaller than one batch,
    which `drop_remainder=True` would otherwise turn into an empty dataset)."""
    dummy = tf.nest.map_structure(
        lambda spec: tf.zeros(spec.shape, spec.dtype), batches.element_spec)

    @tf.autograph.experimental.do_not_convert
    def mark(*batch):
        return batch, False

    @tf.autograph.experimental.do_not_convert
    def is_batch(batch, is_end):
        return tf.logical_not(is_end)

    @tf.autograph.experimental.do_not_convert
    def unmark(batch, is_end):
        return batch

    marked = batches.map(mark).concatenate(tf.data.Dataset.from_tensors((dummy, True)))
    message = (
        f"{description} holds fewer than one batch of {batch_size} windows of "
        f"{sequence_length} tokens, so drop_remainder=True leaves no batch; use more "
        "text, a smaller batch_size or sequence_length, or drop_remainder=False."
    )

    @tf.autograph.experimental.do_not_convert
    def step(count, element):
        _, is_end = element
        check = tf.debugging.Assert(
            tf.logical_or(tf.logical_not(is_end), count > 0), [message])
        with tf.control_dependencies([check]):
            count = count + 1
        return count, element

    return marked.scan(tf.constant(0, tf.int64), step).filter(is_batch).map(unmark)


def _initial_window_state():
    # (tokens left over from the previous chunk, tokens seen this epoch)
    return (tf.zeros([0], tf.int32), tf.constant(0, tf.int64))


def _make_window_fn(sequence_length, pad_token_id, flush, description):
    """The `scan` step cutting a chunked stream into overlapping windows."""
    T = sequence_length

    @tf.autograph.experimental.do_not_convert
    def step(state, element):
        leftover, seen = state
        tokens, is_end = element
        stream = tf.concat([leftover, tokens], axis=0)
        n = tf.size(stream)
        # Full windows start at 0, T, 2T, ...; window i needs stream[iT:iT+T+1].
        k = tf.maximum((n - 1) // T, 0)
        x = tf.reshape(stream[: k * T], [k, T])
        y = tf.reshape(stream[1 : k * T + 1], [k, T])
        num_targets = tf.fill([k], T)
        leftover = stream[k * T :]
        seen += tf.cast(tf.size(tokens), tf.int64)

        if flush:
            # At the end: the last partial window, padded to T.
            m = tf.size(leftover) - 1
            emit = tf.logical_and(is_end, m > 0)
            rows = tf.cast(emit, tf.int32)
            pad = tf.fill([T - tf.maximum(m, 0)], pad_token_id)
            last_x = tf.concat([leftover[:-1], pad], axis=0)[None, :T]
            last_y = tf.concat([leftover[1:], pad], axis=0)[None, :T]
            x = tf.concat([x, last_x[:rows]], axis=0)
            y = tf.concat([y, last_y[:rows]], axis=0)
            num_targets = tf.concat([num_targets, tf.fill([rows], m)], axis=0)
            leftover = tf.cond(
                is_end, lambda: tf.zeros([0], tf.int32), lambda: leftover
            )

        check = tf.debugging.Assert(
            tf.logical_or(tf.logical_not(is_end), seen > 0),
            [f"No tokens in {description}."],
        )
        with tf.control_dependencies([check]):
            seen = tf.where(is_end, tf.constant(0, tf.int64), seen)
        x = tf.ensure_shape(x, [None, T])
        y = tf.ensure_shape(y, [None, T])
        return (leftover, seen), (x, y, num_targets)

    return step


def _token_chunks(files_ds, tokenizer, separator_id, lines_per_chunk, errors):
    """File names -> 1-D int32 token chunks of `lines_per_chunk` lines each.

    Files are read one after the other (so documents stay contiguous); the
    tokenizer runs on several chunks in parallel, order preserved.
    """

    def read_file(filename):
        lines = tf.data.TextLineDataset(filename, buffer_size=1 << 20)
        return lines.batch(lines_per_chunk).enumerate().map(
            lambda i, chunk: (chunk, filename, i * lines_per_chunk + 1)
        )

    def tokenize(lines, filename, first_line):
        lines = _decode_utf8(lines, filename, first_line, errors)
        return _tokenize_lines(tokenizer, lines, separator_id)

    return files_ds.flat_map(read_file).map(
        tokenize, num_parallel_calls=AUTOTUNE, deterministic=True
    )


def _tokenize_lines(tokenizer, lines, separator_id):
    """Tokenizes `[N]` lines; returns the flat stream with separators."""
    ids = tokenizer(lines)
    if not isinstance(ids, tf.RaggedTensor):
        raise TypeError(
            "The tokenizer must return a `tf.RaggedTensor` [batch, None] of "
            "token ids (configure it without a fixed sequence length). "
            f"Received: {type(ids).__name__}"
        )
    return _append_separators(ids, separator_id)


@tf.autograph.experimental.do_not_convert
def _append_separators(ids, separator_id):
    """Ragged `[N, None]` ids -> flat ids, a separator after each non-empty row.

    Blank lines give no tokens and get no separator. Each token is scattered
    straight to its place in the flat output (cheaper than ragged ops).
    """
    values = tf.cast(ids.values, tf.int32)
    splits = ids.row_splits
    lengths = splits[1:] - splits[:-1]
    has_tokens = lengths > 0
    out_splits = tf.concat(
        [[0], tf.cumsum(lengths + tf.cast(has_tokens, splits.dtype))], axis=0
    )
    # Token j of row r moves from splits[r] + i to out_splits[r] + i.
    shift = tf.gather(out_splits[:-1] - splits[:-1], ids.value_rowids())
    token_pos = tf.range(tf.size(values, out_type=splits.dtype)) + shift
    separator_pos = tf.boolean_mask(out_splits[1:] - 1, has_tokens)
    positions = tf.concat([token_pos, separator_pos], axis=0)
    separators = tf.fill(
        tf.shape(separator_pos), tf.cast(separator_id, tf.int32)
    )
    updates = tf.concat([values, separators], axis=0)
    return tf.scatter_nd(positions[:, None], updates, out_splits[-1:])


@tf.autograph.experimental.do_not_convert
def _decode_utf8(lines, filename, first_line, errors):
    """Applies the `errors` policy for invalid UTF-8 to a batch of lines."""
    # Transcoding valid UTF-8 to UTF-8 leaves it byte-identical, so a changed
    # line had invalid bytes.
    fixed = tf.strings.unicode_transcode(
        lines, "UTF-8", "UTF-8",
        errors="ignore" if errors == "ignore" else "replace",
        replacement_char=0xFFFD,
    )
    if errors != "strict":
        return fixed
    bad = tf.not_equal(fixed, lines)
    first_bad = tf.cast(tf.argmax(tf.cast(bad, tf.int32)), tf.int64)
    check = tf.debugging.Assert(
        tf.logical_not(tf.reduce_any(bad)),
        ["Invalid UTF-8 in file", filename, "at line", first_line + first_bad,
         "(pass errors='replace' or errors='ignore' to accept it)"],
    )
    with tf.control_dependencies([check]):
        return tf.identity(lines)


def _shard_files(files, input_context):
    """Splits files between input pipelines.

    Returns `(files_dataset, shard_windows)`: `shard_windows` is True when
    there are fewer files than pipelines, so windows must be split instead.
    """
    files_ds = tf.data.Dataset.from_tensor_slices(files)
    if input_context is None or input_context.num_input_pipelines == 1:
        return files_ds, False
    if len(files) >= input_context.num_input_pipelines:
        files_ds = files_ds.shard(
            input_context.num_input_pipelines, input_context.input_pipeline_id
        )
        return files_ds, False
    return files_ds, True


def _token_attribute(tokenizer, name):
    value = getattr(tokenizer, name, None)
    if value is None:
        raise ValueError(
            f"The tokenizer has no `{name}`; pass it explicitly. "
            f"Received: tokenizer={tokenizer!r}"
        )
    return int(value)


def _read_metadata(files):
    path = os.path.join(os.path.dirname(files[0]), SHARD_METADATA)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def _describe(files, kind, input_context=None, limit=5):
    """Names the files behind an empty token stream, for the error message."""
    shown = ", ".join(files[:limit])
    more = f" and {len(files) - limit} more" if len(files) > limit else ""
    text = f"the {kind} [{shown}{more}]"
    if kind == "corpus":
        text += " (every line is blank or whitespace)"
    if input_context is not None and input_context.num_input_pipelines > 1:
        text += (
            f" for input pipeline {input_context.input_pipeline_id} of "
            f"{input_context.num_input_pipelines} (its share of the files "
            "is empty; use more, non-empty files)"
        )
    return text


def _check_positive(**kwargs):
    for name, value in kwargs.items():
        if not isinstance(value, int) or value <= 0:
            raise ValueError(
                f"`{name}` must be a positive integer. Received: "
                f"{name}={value!r}"
            )
