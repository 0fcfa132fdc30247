"""GPT-1's BPE tokenizer as an in-graph Keras preprocessing layer."""

import json
import os

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from gpt1_keras.tokenizers import spacy_english_rules

ASSETS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "gpt1_bpe"
)
DEFAULT_VOCABULARY = os.path.join(ASSETS_DIR, "encoder_bpe_40000.json")
DEFAULT_MERGES = os.path.join(ASSETS_DIR, "vocab_40000.bpe")

END_OF_WORD = "</w>"
UNK_TOKEN = "<unk>"
NEWLINE_TOKEN = "\n" + END_OF_WORD
START_TOKEN = "_start_"
DELIMITER_TOKEN = "_delimiter_"
CLASSIFY_TOKEN = "_classify_"
SPECIAL_TOKENS = (START_TOKEN, DELIMITER_TOKEN, CLASSIFY_TOKEN)
NORMALIZATIONS = ("openai", "bert")
ERRORS = ("strict", "replace")

# Merge-table values pack `rank * _RANK_SCALE + merged_symbol` in an int64.
_RANK_SCALE = 2**24
# Above any packed value: "this pair never merges".
_NO_MERGE = 2**62

# --- Character classes (RE2 syntax) ------------------------------------------------------
# Python's `\s` / `str.isspace()` (the original `text_standardize` runs on Python strings).
_PY_SPACE = (
    r"\t\n\x{0B}\x{0C}\r\x{1C}-\x{1F} \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}"
    r"\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
)
_PY_SPACE_NO_NEWLINE = (
    r"\t\x{0B}\x{0C}\r\x{1C}-\x{1F} \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}"
    r"\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
)
# ftfy's `remove_control_chars` set (C0 controls other than \t \n \f \r, DEL, bidi/format
# controls, BOM, interlinear annotations, musical/tag controls).
_FTFY_CONTROL = (
    r"[\x00-\x08\x{0B}\x{0E}-\x{1F}\x{7F}\x{206A}-\x{206F}\x{FEFF}\x{FFF9}-\x{FFFC}"
    r"\x{1D173}-\x{1D17A}\x{E0000}-\x{E007F}]"
)
# BERT (HF `BertNormalizer`): control characters are dropped, other whitespace becomes " ".
_BERT_CONTROL = r"[\x00-\x08\x{0B}\x{0C}\x{0E}-\x{1F}\x{7F}-\x{9F}\p{Cf}\p{Co}\x{FFFD}]"
_BERT_SPACE = (
    r"[\t\n\r\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]"
)
_BERT_CJK = (
    r"([\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
    r"\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}])"
)
# `char::is_ascii_punctuation() || char::is_punctuation()` in HF's `BertPreTokenizer`.
_BERT_PUNCT = r"[!-/:-@\[-`{-~\p{P}]"

# ftfy `fix_latin_ligatures` (the Latin ligatures with an ASCII decomposition).
_LIGATURES = {
    "\u0132": "IJ", "\u0133": "ij", "\u0149": "\u02bcn", "\u01c4": "D\u017d",
    "\u01c5": "D\u017e", "\u01c6": "d\u017e", "\u01c7": "LJ", "\u01c8": "Lj",
    "\u01c9": "lj", "\u01ca": "NJ", "\u01cb": "Nj", "\u01cc": "nj", "\u01f1": "DZ",
    "\u01f2": "Dz", "\u01f3": "dz", "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl",
    "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "\u017ft", "\ufb06": "st",
}
# A few HTML entities that ftfy's `unescape_html` resolves (only in text without "<").
_HTML_ENTITIES = (
    ("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#39;", "'"), ("&apos;", "'"),
    ("&nbsp;", "\u00a0"), ("&amp;", "&"),
)


def fix_text(texts):
    """Runs `ftfy.fix_text` over strings, in Python (not in a graph).

    `GPT1Tokenizer(normalization="openai")` applies the parts of ftfy that are plain
    character rules in-graph (see the class docstring); the rest of ftfy (mojibake repair,
    full HTML unescaping, ...) needs Python. Call this on raw text before the tokenizer (for
    example in a generator feeding `tf.data`) to get the original encoder's cleaning exactly.

    Args:
        texts: a `str`, or an iterable of `str`.

    Returns:
        The fixed `str`, or a list of them.
    """
    try:
        import ftfy
    except ImportError as e:
        raise ImportError(
            "`fix_text` needs the `ftfy` package (`pip install ftfy`)."
        ) from e
    if isinstance(texts, str):
        return ftfy.fix_text(texts)
    return [ftfy.fix_text(t) for t in texts]


def _load_vocabulary(vocabulary):
    if vocabulary is None:
        vocabulary = DEFAULT_VOCABULARY
    if isinstance(vocabulary, str):
        with open(vocabulary, encoding="utf-8") as f:
            vocabulary = json.load(f)
    if not isinstance(vocabulary, dict) or not vocabulary:
        raise ValueError(
            "`vocabulary` must be a path to an encoder JSON file or a non-empty dict "
            f"mapping tokens to ids. Received: vocabulary={type(vocabulary)}"
        )
    ids = sorted(vocabulary.values())
    if ids != list(range(len(ids))):
        raise ValueError(
            "`vocabulary` ids must be exactly 0..n-1, each used once. "
            f"Received {len(ids)} tokens with ids from {ids[0]} to {ids[-1]}."
        )
    if UNK_TOKEN not in vocabulary:
        raise ValueError(
            f"`vocabulary` must contain the unknown token {UNK_TOKEN!r}."
        )
    return dict(vocabulary)


def _load_merges(merges):
    if merges is None:
        merges = DEFAULT_MERGES
    if isinstance(merges, str):
        with open(merges, encoding="utf-8") as f:
            merges = f.read().split("\n")
        merges = [m for m in merges if m and not m.startswith("#version")]
    pairs = []
    for merge in merges:
        pair = tuple(merge.split()) if isinstance(merge, str) else tuple(merge)
        if len(pair) != 2:
            raise ValueError(
                "Each merge must be two symbols separated by a space. "
                f"Received: merge={merge!r}"
            )
        pairs.append(pair)
    return pairs


def _static_table(keys, values, key_dtype, value_dtype, default):
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(keys, dtype=key_dtype), tf.constant(values, dtype=value_dtype)
        ),
        default_value=tf.constant(default, dtype=value_dtype),
    )


def _select_rows(groups, num_rows):
    """Interleaves ragged row groups back into one `[num_rows, None]` ragged tensor.

    `groups` is a list of `(positions, rows)`: `rows[i]` belongs at `positions[i]`; the
    positions of all groups together are a permutation of `range(num_rows)`.
    """
    positions = tf.concat([tf.cast(p, tf.int64) for p, _ in groups], axis=0)
    rows = tf.concat([r for _, r in groups], axis=0)
    order = tf.math.invert_permutation(positions)
    del num_rows  # The permutation has exactly `num_rows` entries.
    return tf.gather(rows, order)


@keras.saving.register_keras_serializable(package="gpt1_keras")
class GPT1Tokenizer(keras.layers.Layer):
    """GPT-1's BPE tokenizer, built from TF / tensorflow-text ops only.

    Strings in, token ids out. Everything runs in the TF graph, so the layer works inside
    `tf.data.Dataset.map(..., num_parallel_calls=tf.data.AUTOTUNE)`, inside a `tf.function`
    and in an exported SavedModel (TF Serving), on every Keras backend (like keras-hub's
    preprocessing layers it uses TF internally and returns TF tensors).

    Pipeline: normalisation and pre-tokenisation (one of two modes, below) -> each word is
    looked up in a precomputed word -> ids table covering every whole word of the vocabulary
    (one hash lookup for common words) -> words not in the table go through the BPE merge
    loop in-graph (lowest merge rank first, `</w>` marks the end of a word) -> ids. Symbols
    missing from the vocabulary become `<unk>` (id 0).

    Normalisation modes:

    - `"openai"` (default): the original GPT-1 encoder (`text_utils.py` of
      openai/finetune-transformer-lm): `ftfy.fix_text`, `text_standardize` (dashes to `-`,
      `…` to `...`, `´` to `'`, spaces around runs of ``-~!";?+,)(\\/*[]}{|_``, newlines to
      ` \\n `, other whitespace collapsed, strip), spaCy's English tokenizer (prefix, suffix
      and infix rules and its exception table, so `don't` -> `do n't`, `Mr.` stays whole),
      lower-casing (accents kept), BPE. A newline becomes its own token `"\\n</w>"`.
      **ftfy cannot run in a graph**: in-graph the layer applies ftfy's character rules
      (NFC, curly quotes to straight quotes, Latin ligatures, full-width ASCII, line breaks,
      control characters, and the common HTML entities `&amp; &lt; &gt; &quot; &#39;
      &apos; &nbsp;` in text without `<`); mojibake repair and the rest of ftfy are not
      done. Run `gpt1_keras.tokenizers.fix_text` (Python, needs `ftfy`) on raw text first
      if you need them. Known differences from the original are listed in
      `docs/tokenizer.md`.
    - `"bert"`: what Hugging Face's `OpenAIGPTTokenizer(Fast)` does without ftfy/spaCy:
      BERT normalisation (drop control characters, whitespace to spaces, spaces around CJK
      characters, NFD and strip accents, lower-case) and BERT pre-tokenisation (split on
      whitespace and around every punctuation character). Newlines are plain whitespace.

    Bad input: strings must be valid UTF-8. With `errors="strict"` (default) an invalid
    string raises `tf.errors.InvalidArgumentError` naming the problem; with
    `errors="replace"` each invalid byte sequence becomes U+FFFD (then `<unk>` in
    `"openai"` mode, dropped in `"bert"` mode). An empty or all-whitespace string gives an
    empty row (all padding when `sequence_length` is set). Non-string input raises
    `TypeError`; input of rank above 1 raises `ValueError`.

    Args:
        vocabulary: `None` (GPT-1's `encoder_bpe_40000.json`, shipped with the package), a
            path to an encoder JSON file, or a dict token -> id (ids `0..n-1`, with
            `"<unk>"`).
        merges: `None` (GPT-1's `vocab_40000.bpe`), a path to a merges file (optional
            `#version` line, then one `"a b"` merge per line, lowest rank first), or a list
            of `"a b"` strings or `(a, b)` pairs.
        normalization: `"openai"` or `"bert"`, see above.
        sequence_length: `None` for ragged output, or an int: outputs are dense
            `[batch, sequence_length]`, truncated or padded with `pad_token_id`.
        errors: `"strict"` or `"replace"`: what to do with invalid UTF-8.
        **kwargs: standard `keras.layers.Layer` arguments (`name`, ...).

    Call arguments:
        inputs: a string tensor (or Python string / list of strings / NumPy array) of
            shape `[batch]` or `[]`.
        sequence_length: overrides the constructor's `sequence_length` for this call.

    Returns:
        int32 token ids: a `tf.RaggedTensor` `[batch, None]` (a dense `[None]` tensor for a
        scalar input), or a dense `[batch, sequence_length]` tensor when
        `sequence_length` is set.

    Attributes:
        start_token_id, delimiter_token_id, classify_token_id: the ids of `_start_`,
            `_delimiter_`, `_classify_`, appended after the vocabulary (40478-40480 by
            default).
        unk_token_id: the id of `<unk>` (0).
        pad_token_id: the id used to pad dense outputs; GPT-1 has no padding token, so
            this is `<unk>` (0): mask padding with the lengths, not the id.
        newline_token_id: the id of `"\\n</w>"` (40477), or `None` if the vocabulary has
            none.

    Example:

    ```python
    tokenizer = GPT1Tokenizer()
    tokenizer(["Hello, world!", "Don't panic."])
    # <tf.RaggedTensor [[3570, 240, 2185, 267], [587, 1467, 10003, 239]]>
    tokenizer.detokenize(tokenizer("Don't panic."))
    # "do n't panic ."

    # Inside tf.data, padded for a model with 512 positions.
    tokenizer = GPT1Tokenizer(sequence_length=512)
    ds = tf.data.TextLineDataset("corpus.txt").batch(64)
    ds = ds.map(tokenizer, num_parallel_calls=tf.data.AUTOTUNE)
    ```
    """

    def __init__(
        self,
        vocabulary=None,
        merges=None,
        normalization="openai",
        sequence_length=None,
        errors="strict",
        **kwargs,
    ):
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"`normalization` must be one of {NORMALIZATIONS}. "
                f"Received: normalization={normalization!r}"
            )
        if errors not in ERRORS:
            raise ValueError(
                f"`errors` must be one of {ERRORS}. Received: errors={errors!r}"
            )
        if sequence_length is not None and (
            not isinstance(sequence_length, int) or sequence_length < 1
        ):
            raise ValueError(
                "`sequence_length` must be None or a positive int. "
                f"Received: sequence_length={sequence_length!r}"
            )
        kwargs.setdefault("dtype", "int32")
        super().__init__(**kwargs)
        # Preprocessing layer: keep TF inputs as they are, accept raw Python strings.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

        self.vocabulary = vocabulary
        self.merges = merges
        self.normalization = normalization
        self.sequence_length = sequence_length
        self.errors = errors

        vocab = _load_vocabulary(vocabulary)
        pairs = _load_merges(merges)
        self._build_tables(vocab, pairs)

    # --- Tables ----------------------------------------------------------------------------

    def _build_tables(self, vocab, pairs):
        tokens = [None] * len(vocab)
        for token, i in vocab.items():
            tokens[i] = token
        self._vocab_size = len(tokens)
        self.unk_token_id = vocab[UNK_TOKEN]
        self.pad_token_id = self.unk_token_id
        self.newline_token_id = vocab.get(NEWLINE_TOKEN)
        special_ids = []
        for special in SPECIAL_TOKENS:
            if special not in vocab:
                vocab[special] = len(tokens)
                tokens.append(special)
            special_ids.append(vocab[special])
        self.start_token_id, self.delimiter_token_id, self.classify_token_id = special_ids
        self._tokens = tokens

        # Symbols of the merge loop are ints: the vocabulary ids, then any merge symbol the
        # vocabulary lacks (it can still merge further; it becomes <unk> in the output).
        symbols = dict(vocab)
        for a, b in pairs:
            for s in (a, b, a + b):
                if s not in symbols:
                    symbols[s] = len(symbols)
        if len(symbols) >= _RANK_SCALE:
            raise ValueError(
                f"Vocabulary too large for the merge table: {len(symbols)} symbols, "
                f"{len(pairs)} merges."
            )
        self._num_symbols = len(symbols)
        self._symbol_table = _static_table(
            list(symbols.keys()), list(symbols.values()), tf.string, tf.int64, -1
        )
        merge_keys, merge_values, seen = [], [], set()
        for rank, (a, b) in enumerate(pairs):
            key = symbols[a] * self._num_symbols + symbols[b]
            if key in seen:  # A repeated merge keeps its first (lowest) rank.
                continue
            seen.add(key)
            merge_keys.append(key)
            merge_values.append(rank * _RANK_SCALE + symbols[a + b])
        if not merge_keys:
            merge_keys, merge_values = [-1], [_NO_MERGE]
        self._merge_table = _static_table(
            merge_keys, merge_values, tf.int64, tf.int64, _NO_MERGE
        )
        self._token_strings = tf.constant(
            [t + END_OF_WORD if t in SPECIAL_TOKENS else t for t in tokens]
        )

        # Word -> ids cache for every whole word of the vocabulary, computed once with the
        # same merge loop used for other words at call time.
        words = sorted(
            {
                t[: -len(END_OF_WORD)]
                for t in tokens
                if t.endswith(END_OF_WORD) and len(t) > len(END_OF_WORD)
            }
        )
        if words:
            rows = self._bpe(tf.constant(words))
        else:
            words = [""]
            rows = tf.RaggedTensor.from_row_lengths(
                tf.constant([self.unk_token_id], tf.int32), tf.constant([1], tf.int64)
            )
        self._word_table = _static_table(
            words, list(range(len(words))), tf.string, tf.int64, -1
        )
        self._word_ids = tf.constant(rows.values)
        self._word_splits = tf.constant(rows.row_splits)

        # spaCy's English exception table ("don't" -> "do", "n't"; "Mr." -> "Mr.").
        special_cases = spacy_english_rules.SPECIAL_CASES
        keys = sorted(special_cases)
        self._special_case_table = _static_table(
            keys, list(range(len(keys))), tf.string, tf.int64, -1
        )
        pieces = [special_cases[k] for k in keys]
        self._special_case_pieces = tf.constant([p for row in pieces for p in row])
        self._special_case_splits = tf.constant(
            [0] + list(_cumsum(len(row) for row in pieces)), tf.int64
        )

    # --- Public helpers --------------------------------------------------------------------

    def vocabulary_size(self):
        """Number of ids: the vocabulary plus the 3 special tokens (40481 by default)."""
        return len(self._tokens)

    def get_vocabulary(self):
        """All tokens, indexed by id (special tokens last)."""
        return list(self._tokens)

    def id_to_token(self, id):
        if not 0 <= id < len(self._tokens):
            raise ValueError(
                f"`id` must be in [0, {len(self._tokens)}). Received: id={id}"
            )
        return self._tokens[id]

    def token_to_id(self, token):
        try:
            return self._tokens.index(token)
        except ValueError:
            raise ValueError(f"Token not in the vocabulary. Received: token={token!r}")

    # --- Call ------------------------------------------------------------------------------

    def call(self, inputs, sequence_length=None):
        inputs, scalar = self._check_inputs(inputs)
        with tf.device("cpu"):
            ids = self._tokenize(inputs)
            sequence_length = sequence_length or self.sequence_length
            if sequence_length is not None:
                ids = ids.to_tensor(
                    default_value=self.pad_token_id,
                    shape=[None, sequence_length],
                )
                ids = tf.ensure_shape(ids, [None, sequence_length])
            if scalar:
                ids = ids[0]
        return ids

    def pre_tokenize(self, inputs):
        """Normalises and splits strings into the words BPE sees.

        Returns a string `tf.RaggedTensor` `[batch, None]` (or `[None]` for a scalar).
        `detokenize(tokenize(x))` equals these words joined by single spaces whenever every
        character is in the vocabulary (otherwise the missing ones come back as `<unk>`).
        """
        inputs, scalar = self._check_inputs(inputs)
        with tf.device("cpu"):
            inputs = self._check_utf8(inputs)
            chunks = self._chunks(inputs)
            words = self._split_chunks(chunks)
            if scalar:
                words = words[0]
        return words

    def detokenize(self, inputs):
        """Maps ids back to text: the normalised text of `pre_tokenize`, words joined by " ".

        Accepts int ids as a `tf.RaggedTensor`, a dense tensor or nested lists of rank 1
        (one string out) or 2 (a `[batch]` string tensor out). Padding is not removed:
        strip it (e.g. ragged input) first. Ids outside `[0, vocabulary_size())` raise
        `tf.errors.InvalidArgumentError`.
        """
        if not isinstance(inputs, (tf.Tensor, tf.RaggedTensor)):
            if isinstance(inputs, (list, tuple)):
                inputs = tf.ragged.constant(inputs, dtype=tf.int32)
            else:
                inputs = tf.convert_to_tensor(inputs)
        if not inputs.dtype.is_integer:
            raise TypeError(
                f"`detokenize` expects integer ids. Received: dtype={inputs.dtype}"
            )
        with tf.device("cpu"):
            ids = tf.cast(inputs, tf.int32)
            flat = ids.flat_values if isinstance(ids, tf.RaggedTensor) else ids
            check = tf.debugging.assert_less(
                flat,
                len(self._tokens),
                message="GPT1Tokenizer.detokenize: id >= vocabulary_size()",
            )
            check2 = tf.debugging.assert_non_negative(
                flat, message="GPT1Tokenizer.detokenize: negative id"
            )
            with tf.control_dependencies([check, check2]):
                strings = tf.gather(self._token_strings, ids)
            text = tf.strings.reduce_join(strings, axis=-1)
            text = tf.strings.regex_replace(text, END_OF_WORD, " ")
            text = tf.strings.regex_replace(text, " +$", "")
        return text

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": self.vocabulary,
                "merges": self.merges,
                "normalization": self.normalization,
                "sequence_length": self.sequence_length,
                "errors": self.errors,
            }
        )
        return config

    def compute_output_spec(self, inputs, sequence_length=None):
        sequence_length = sequence_length or self.sequence_length
        shape = (inputs.shape[0], sequence_length)
        return keras.KerasTensor(shape, dtype="int32")

    # --- Internals -------------------------------------------------------------------------

    def _check_inputs(self, inputs):
        if isinstance(inputs, tf.RaggedTensor):
            raise ValueError(
                "GPT1Tokenizer expects a dense string tensor of shape [batch] or []. "
                f"Received a RaggedTensor of shape {inputs.shape}."
            )
        if not isinstance(inputs, tf.Tensor):
            try:
                inputs = tf.convert_to_tensor(inputs)
            except (ValueError, TypeError) as e:
                raise TypeError(
                    "GPT1Tokenizer expects strings. "
                    f"Received: inputs of type {type(inputs)}"
                ) from e
        if inputs.dtype != tf.string:
            raise TypeError(
                f"GPT1Tokenizer expects string inputs. Received: dtype={inputs.dtype}"
            )
        rank = inputs.shape.rank
        if rank is None or rank > 1:
            raise ValueError(
                "GPT1Tokenizer expects inputs of shape [batch] or []. "
                f"Received: shape={inputs.shape}"
            )
        scalar = rank == 0
        if scalar:
            inputs = inputs[tf.newaxis]
        return inputs, scalar

    def _check_utf8(self, inputs):
        fixed = tf.strings.unicode_transcode(
            inputs, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
        )
        if self.errors == "replace":
            return fixed
        valid = tf.reduce_all(tf.equal(fixed, inputs))
        check = tf.debugging.Assert(
            valid,
            [
                "GPT1Tokenizer: input is not valid UTF-8 (pass errors='replace' to map "
                "invalid bytes to U+FFFD). Index of the first invalid string in the batch:",
                tf.where(tf.not_equal(fixed, inputs))[:1, 0],
            ],
        )
        with tf.control_dependencies([check]):
            return tf.identity(inputs)

    def _tokenize(self, inputs):
        inputs = self._check_utf8(inputs)
        chunks = self._chunks(inputs)  # [B, C] strings.
        # Each distinct chunk is split and encoded once.
        unique_chunks, chunk_index = tf.unique(chunks.flat_values)
        words = self._split_unique_chunks(unique_chunks)  # [U, W]
        ids = self._encode_words(words.flat_values)  # [total W, T]
        chunk_ids = tf.RaggedTensor.from_row_splits(ids, words.row_splits)
        chunk_ids = chunk_ids.merge_dims(1, 2)  # [U, T]
        ids = tf.gather(chunk_ids, chunk_index)  # [total C, T]
        ids = chunks.with_flat_values(ids).merge_dims(1, 2)  # [B, T]
        return ids

    def _split_chunks(self, chunks):
        unique_chunks, chunk_index = tf.unique(chunks.flat_values)
        words = self._split_unique_chunks(unique_chunks)
        words = tf.gather(words, chunk_index)
        return chunks.with_flat_values(words).merge_dims(1, 2)

    def _split_unique_chunks(self, chunks):
        words = self._pre_tokenize_chunks(chunks)
        return words.with_flat_values(
            tf.strings.lower(words.flat_values, encoding="utf-8")
        )

    # --- Normalisation ---------------------------------------------------------------------

    def _chunks(self, inputs):
        """Normalises `[B]` strings and splits them at spaces into `[B, None]` chunks."""
        if self.normalization == "openai":
            text = _text_standardize(_ftfy_rules(inputs))
        else:
            text = _bert_normalize(inputs)
        chunks = tf.strings.split(text, sep=" ")
        return tf.ragged.boolean_mask(chunks, tf.strings.length(chunks) > 0)

    def _pre_tokenize_chunks(self, chunks):
        """Splits unique non-empty chunks (no spaces) into words: `[U, None]`."""
        if self.normalization == "bert":
            return tf_text.regex_split(chunks, _BERT_PUNCT, _BERT_PUNCT)
        return self._spacy_split(chunks)

    def _spacy_split(self, chunks):
        """spaCy's English tokenizer on unique space-free chunks: `[U, None]`."""
        num = tf.shape(chunks, out_type=tf.int64)[0]
        special = self._special_case_table.lookup(chunks)
        simple = tf.logical_and(
            tf.strings.regex_full_match(chunks, spacy_english_rules.SIMPLE_RE2),
            special < 0,
        )
        # A word and one trailing suffix character ("word." "word:" "word'"): spaCy
        # splits off the character, then the word is a special case or stays whole.
        suffixed = tf.logical_and(
            tf.strings.regex_full_match(chunks, r"[a-z]+\.|\p{L}+[:']"),
            special < 0,
        )
        other = tf.logical_not(simple | suffixed)
        simple_pos = tf.where(simple)[:, 0]
        suffixed_pos = tf.where(suffixed)[:, 0]
        other_pos = tf.where(other)[:, 0]
        simple_rows = tf.RaggedTensor.from_row_lengths(
            tf.gather(chunks, simple_pos), tf.ones_like(simple_pos)
        )
        suffixed_chunks = tf.gather(chunks, suffixed_pos)
        size = tf.strings.length(suffixed_chunks)  # The suffix is one ASCII byte.
        head = tf.strings.substr(suffixed_chunks, tf.zeros_like(size), size - 1)
        tail = tf.strings.substr(suffixed_chunks, size - 1, tf.ones_like(size))
        head_rows = _ragged_where(
            self._is_special(head),
            self._special_rows(head),
            tf.RaggedTensor.from_row_lengths(head, tf.ones_like(suffixed_pos)),
        )
        suffixed_rows = tf.concat(
            [head_rows, tf.RaggedTensor.from_row_lengths(tail, tf.ones_like(suffixed_pos))],
            axis=1,
        )
        other_rows = self._spacy_affixes(tf.gather(chunks, other_pos))
        return _select_rows(
            [
                (simple_pos, simple_rows),
                (suffixed_pos, suffixed_rows),
                (other_pos, other_rows),
            ],
            num,
        )

    def _is_special(self, strings):
        return self._special_case_table.lookup(strings) >= 0

    def _special_rows(self, strings):
        index = self._special_case_table.lookup(strings)
        found = index >= 0
        index = tf.maximum(index, 0)
        starts = tf.gather(self._special_case_splits, index)
        limits = tf.where(
            found, tf.gather(self._special_case_splits, index + 1), starts
        )
        positions = tf.ragged.range(starts, limits)
        return tf.gather(self._special_case_pieces, positions)

    def _spacy_affixes(self, strings):
        """spaCy's `_split_affixes` + `_attach_tokens`, vectorised over strings."""
        rules = spacy_english_rules
        n = tf.size(strings)

        def strip(s, start, end):
            start = tf.broadcast_to(start, tf.shape(s))
            return tf.strings.substr(s, start, tf.strings.length(s) - start - end)

        def cond(i, s, active, prefixes, suffixes):
            return tf.reduce_any(active)

        def body(i, s, active, prefixes, suffixes):
            size = tf.strings.length(s)
            active = tf.logical_and(active, size > 0)
            active = tf.logical_and(active, tf.logical_not(self._is_special(s)))
            has_pre = tf.logical_and(
                active, tf.strings.regex_full_match(s, rules.PREFIX_MATCH_RE2)
            )
            pre = tf.where(
                has_pre,
                tf.strings.regex_replace(s, rules.PREFIX_CAPTURE_RE2, r"\1"),
                "",
            )
            pre_len = tf.strings.length(pre)
            minus_pre = tf.strings.substr(s, pre_len, size - pre_len)
            pre_special = (
                has_pre & (tf.strings.length(minus_pre) > 0) & self._is_special(minus_pre)
            )
            rest = minus_pre
            has_suf = (
                active
                & tf.logical_not(pre_special)
                & tf.strings.regex_full_match(rest, rules.SUFFIX_MATCH_RE2)
            )
            suf = tf.where(
                has_suf,
                tf.strings.regex_replace(rest, rules.SUFFIX_CAPTURE_RE2, rules.SUFFIX_REWRITE),
                "",
            )
            suf_len = tf.strings.length(suf)
            minus_suf = strip(s, 0, suf_len)
            suf_special = (
                has_suf & (tf.strings.length(minus_suf) > 0) & self._is_special(minus_suf)
            )
            both = has_pre & has_suf & tf.logical_not(suf_special) & (
                pre_len + suf_len <= size
            )
            only_pre = has_pre & tf.logical_not(both) & tf.logical_not(suf_special)
            only_suf = has_suf & tf.logical_not(both) & tf.logical_not(pre_special)
            push_pre = pre_special | both | only_pre
            push_suf = suf_special | both | only_suf
            new_s = tf.where(
                both,
                strip(s, pre_len, suf_len),
                tf.where(push_pre, minus_pre, tf.where(push_suf, minus_suf, s)),
            )
            prefixes = prefixes.write(i, tf.where(push_pre, pre, ""))
            suffixes = suffixes.write(i, tf.where(push_suf, suf, ""))
            changed = tf.strings.length(new_s) != size
            active = (
                active
                & changed
                & tf.logical_not(pre_special | suf_special)
                & (tf.strings.length(new_s) > 0)
                & tf.logical_not(self._is_special(new_s))
            )
            return i + 1, new_s, active, prefixes, suffixes

        # Row 0 is a no-op so that `stack()` never sees an empty array.
        prefixes = tf.TensorArray(tf.string, size=1, dynamic_size=True, element_shape=[None])
        suffixes = tf.TensorArray(tf.string, size=1, dynamic_size=True, element_shape=[None])
        prefixes = prefixes.write(0, tf.fill([n], ""))
        suffixes = suffixes.write(0, tf.fill([n], ""))
        _, middle, _, prefixes, suffixes = tf.while_loop(
            cond,
            body,
            (tf.constant(1), strings, tf.ones([n], tf.bool), prefixes, suffixes),
        )
        # [n, iterations]: prefixes in order, suffixes in reverse order.
        prefixes = tf.transpose(tf.reshape(prefixes.stack(), [-1, n]))
        suffixes = tf.reverse(tf.transpose(tf.reshape(suffixes.stack(), [-1, n])), [1])

        # The middle: a special case, or split at infixes.
        is_special = self._is_special(middle)
        special_rows = self._special_rows(tf.where(is_special, middle, ""))
        infixed = middle
        for pattern, rewrite in rules.INFIX_REPLACEMENTS:
            infixed = tf.strings.regex_replace(infixed, pattern, rewrite)
        infix_rows = tf.strings.split(infixed, sep=" ")
        middle_rows = _ragged_where(is_special, special_rows, infix_rows)

        pieces = tf.concat(
            [tf.RaggedTensor.from_tensor(prefixes), middle_rows,
             tf.RaggedTensor.from_tensor(suffixes)],
            axis=1,
        )
        pieces = tf.ragged.boolean_mask(pieces, tf.strings.length(pieces) > 0)

        # spaCy's special-case matcher: runs of tokens inside a chunk that spell the
        # affix-split form of a special case are re-tokenized (`x''` -> `x`, `''`).
        joined = tf.strings.reduce_join(pieces, axis=1, separator=" ")
        joined = tf.strings.join([" ", joined, " "])
        found = tf.strings.regex_full_match(joined, rules.MATCHER_ANY_RE2)

        def retokenize():
            text = joined
            for pattern, rewrite in rules.MATCHER_REPLACEMENTS:
                # Twice: neighbouring matches share the separating space.
                text = tf.strings.regex_replace(text, pattern, rewrite)
                text = tf.strings.regex_replace(text, pattern, rewrite)
            pieces = tf.strings.split(text, sep=" ")
            return tf.ragged.boolean_mask(pieces, tf.strings.length(pieces) > 0)

        return tf.cond(tf.reduce_any(found), retokenize, lambda: pieces)

    # --- BPE -------------------------------------------------------------------------------

    def _encode_words(self, words):
        """`[N]` non-empty lower-cased words -> `[N, None]` int32 ids."""
        unique_words, word_index = tf.unique(words)
        row = self._word_table.lookup(unique_words)
        hit = row >= 0
        hit_pos = tf.where(hit)[:, 0]
        miss_pos = tf.where(tf.logical_not(hit))[:, 0]
        hit_row = tf.gather(row, hit_pos)
        hit_rows = tf.gather(
            self._word_ids,
            tf.ragged.range(
                tf.gather(self._word_splits, hit_row),
                tf.gather(self._word_splits, hit_row + 1),
            ),
        )
        miss_rows = self._bpe(tf.gather(unique_words, miss_pos))
        rows = _select_rows(
            [(hit_pos, hit_rows), (miss_pos, miss_rows)], tf.size(unique_words)
        )
        return tf.gather(rows, word_index)

    def _bpe(self, words):
        """The BPE merge loop: `[N]` non-empty words -> `[N, None]` int32 ids."""
        chars = tf.strings.unicode_split(words, "UTF-8")
        values = chars.values
        last = chars.row_splits[1:] - 1
        is_last = tf.scatter_nd(
            last[:, tf.newaxis],
            tf.ones_like(last, dtype=tf.bool),
            tf.shape(values, out_type=tf.int64),
        )
        values = tf.where(is_last, values + END_OF_WORD, values)
        symbols = self._symbol_table.lookup(values)
        word_index = chars.value_rowids()
        num_words = tf.shape(words, out_type=tf.int64)[0]
        num_symbols = tf.constant(self._num_symbols, tf.int64)

        def cond(symbols, word_index, done):
            return tf.logical_not(done)

        def body(symbols, word_index, done):
            left, right = symbols[:-1], symbols[1:]
            same_word = tf.equal(word_index[:-1], word_index[1:])
            valid = same_word & (left >= 0) & (right >= 0)
            packed = self._merge_table.lookup(left * num_symbols + right)
            packed = tf.where(valid, packed, _NO_MERGE)
            rank = packed // _RANK_SCALE
            min_rank = tf.math.unsorted_segment_min(
                rank, word_index[:-1], num_words
            )
            best = tf.equal(rank, tf.gather(min_rank, word_index[:-1])) & (
                packed < _NO_MERGE
            )
            # Merge the lowest-ranked pair, left to right, never two overlapping pairs in
            # one step ("a a a" -> "aa a"; the next step merges what is left).
            previous = tf.concat([[False], best[:-1]], axis=0)
            merge = tf.logical_and(best, tf.logical_not(previous))
            merged = packed % _RANK_SCALE
            merge_at = tf.concat([merge, [False]], axis=0)
            merged_at = tf.concat([merged, [0]], axis=0)
            symbols = tf.where(merge_at, merged_at, symbols)
            keep = tf.logical_not(tf.concat([[False], merge], axis=0))
            symbols = tf.boolean_mask(symbols, keep)
            word_index = tf.boolean_mask(word_index, keep)
            return symbols, word_index, tf.logical_not(tf.reduce_any(merge))

        symbols, word_index, _ = tf.while_loop(
            cond,
            body,
            (symbols, word_index, tf.equal(tf.size(symbols), 0)),
            shape_invariants=(
                tf.TensorShape([None]),
                tf.TensorShape([None]),
                tf.TensorShape([]),
            ),
        )
        ids = tf.where(
            (symbols >= 0) & (symbols < self._vocab_size),
            symbols,
            tf.cast(self.unk_token_id, tf.int64),
        )
        return tf.RaggedTensor.from_value_rowids(
            tf.cast(ids, tf.int32), word_index, nrows=num_words
        )


def _cumsum(values):
    total = 0
    for v in values:
        total += v
        yield total


def _ragged_where(condition, x, y):
    """Row-wise select between two `[N, None]` ragged tensors."""
    n = tf.shape(condition, out_type=tf.int64)[0]
    x_pos = tf.where(condition)[:, 0]
    y_pos = tf.where(tf.logical_not(condition))[:, 0]
    return _select_rows(
        [(x_pos, tf.gather(x, x_pos)), (y_pos, tf.gather(y, y_pos))], n
    )


def _ftfy_rules(text):
    """The character rules of `ftfy.fix_text` that need no Python (see class docstring)."""

    def when_any(pattern, fix, text):
        # Rare fixes run only for batches that need them.
        found = tf.reduce_any(tf.strings.regex_full_match(text, pattern))
        return tf.cond(found, lambda: fix(text), lambda: text)

    def unescape_html(text):
        # ftfy leaves text containing "<" alone.
        unescaped = text
        for entity, char in _HTML_ENTITIES:
            unescaped = tf.strings.regex_replace(unescaped, entity, char)
        return tf.where(tf.strings.regex_full_match(text, r"(?s)[^<]*"), unescaped, text)

    def fix_ligatures(text):
        for ligature, letters in _LIGATURES.items():
            text = tf.strings.regex_replace(text, ligature, letters)
        return text

    text = when_any(r"(?s).*&[#a-z0-9]+;.*", unescape_html, text)
    text = when_any("(?s).*[%s].*" % "".join(_LIGATURES), fix_ligatures, text)
    # fix_character_width: full-width ASCII and the ideographic space.
    text = when_any(r"(?s).*[\x{FF01}-\x{FF5E}\x{3000}].*", _narrow, text)
    # uncurl_quotes.
    text = tf.strings.regex_replace(text, r"[\x{2018}-\x{201B}\x{02BC}]", "'")
    text = tf.strings.regex_replace(text, r"[\x{201C}-\x{201F}]", '"')
    # fix_line_breaks.
    text = tf.strings.regex_replace(text, r"\r\n|[\r\x{2028}\x{2029}\x{85}]", "\n")
    # remove_control_chars.
    text = tf.strings.regex_replace(text, _FTFY_CONTROL, "")
    return tf_text.normalize_utf8(text, "NFC")


def _narrow(text):
    """Maps full-width ASCII (U+FF01-U+FF5E) to ASCII, U+3000 to a space."""
    codes = tf.strings.unicode_decode(text, "UTF-8")
    wide = (codes >= 0xFF01) & (codes <= 0xFF5E)
    codes = tf.where(wide, codes - 0xFEE0, codes)
    codes = tf.where(codes == 0x3000, 0x20, codes)
    return tf.strings.unicode_encode(codes, "UTF-8")


def _text_standardize(text):
    """`text_standardize` of openai/finetune-transformer-lm `text_utils.py`."""
    text = tf.strings.regex_replace(text, "[\u2014\u2013\u2015]", "-")
    text = tf.strings.regex_replace(text, "\u2026", "...")
    text = tf.strings.regex_replace(text, "\u00b4", "'")
    text = tf.strings.regex_replace(
        text,
        r"(-+|~+|!+|\"+|;+|\?+|\++|,+|\)+|\(+|\\+|/+|\*+|\[+|\]+|\}+|\{+|\|+|_+)",
        r" \1 ",
    )
    text = tf.strings.regex_replace(text, f"[{_PY_SPACE}]*\n[{_PY_SPACE}]*", " \n ")
    text = tf.strings.regex_replace(text, f"[{_PY_SPACE_NO_NEWLINE}]+", " ")
    return tf.strings.regex_replace(text, f"^[{_PY_SPACE}]+|[{_PY_SPACE}]+$", "")


def _bert_normalize(text):
    """HF `BertNormalizer(lowercase=True)`: clean, CJK spacing, strip accents, lower."""
    text = tf.strings.regex_replace(text, _BERT_CONTROL, "")
    text = tf.strings.regex_replace(text, _BERT_SPACE, " ")
    text = tf.strings.regex_replace(text, _BERT_CJK, r" \1 ")
    text = tf_text.normalize_utf8(text, "NFD")
    text = tf.strings.regex_replace(text, r"\p{Mn}", "")
    return tf.strings.lower(text, encoding="utf-8")
