"""GPT-1's BPE tokenizer as an in-graph Keras preprocessing layer.

`GPT1Tokenizer` composes three modules: `normalization` (the "openai" / "bert" text
normalisation), `spacy_splitter` (spaCy's English rules, "openai" mode) and `bpe` (the
merges and the word -> ids tables).
"""

import json
import os

import keras
import keras_hub
import tensorflow as tf
import tensorflow_text as tf_text
from keras_hub.src.utils.python_utils import classproperty

from gpt1_keras.errors import ConfigError
from gpt1_keras.tokenizers import normalization as normalization_lib
from gpt1_keras.tokenizers.bpe import ASSETS_DIR  # noqa: F401 (public constant)
from gpt1_keras.tokenizers.bpe import DEFAULT_MERGES  # noqa: F401 (public constant)
from gpt1_keras.tokenizers.bpe import DEFAULT_VOCABULARY  # noqa: F401 (public constant)
from gpt1_keras.tokenizers.bpe import END_OF_WORD
from gpt1_keras.tokenizers.bpe import UNK_TOKEN
from gpt1_keras.tokenizers.bpe import BytePairEncoder
from gpt1_keras.tokenizers.bpe import check_merges_fit
from gpt1_keras.tokenizers.bpe import load_merges
from gpt1_keras.tokenizers.bpe import load_vocabulary
from gpt1_keras.tokenizers.normalization import NORMALIZATIONS
from gpt1_keras.tokenizers.normalization import fix_text  # noqa: F401 (public function)
from gpt1_keras.tokenizers.ragged_utils import merge_inner_dims
from gpt1_keras.tokenizers.ragged_utils import ragged_where
from gpt1_keras.tokenizers.ragged_utils import regex_split
from gpt1_keras.tokenizers.ragged_utils import static_table
from gpt1_keras.tokenizers.spacy_splitter import SpacySplitter

NEWLINE_TOKEN = "\n" + END_OF_WORD
START_TOKEN = "_start_"
DELIMITER_TOKEN = "_delimiter_"
CLASSIFY_TOKEN = "_classify_"
SPECIAL_TOKENS = (START_TOKEN, DELIMITER_TOKEN, CLASSIFY_TOKEN)
ERRORS = ("strict", "replace")
# What `special_tokens_in_strings=True` matches: the special tokens of Hugging Face's
# `OpenAIGPTTokenizer(Fast)` for openai-gpt, which has only `unk_token`. GPT-1's `_start_`,
# `_delimiter_`, `_classify_` are not in HF's vocabulary and are never matched unless listed.
HF_SPECIAL_TOKENS = (UNK_TOKEN,)
# The tokenizer's files in a preset's `assets/tokenizer/` (and in a `.keras` archive):
# the names and formats of Hugging Face's `OpenAIGPTTokenizer`.
VOCABULARY_FILE = "vocab.json"
MERGES_FILE = "merges.txt"


@keras.saving.register_keras_serializable(package="gpt1_keras")
class GPT1Tokenizer(keras_hub.tokenizers.Tokenizer):
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
      `<unk>` written in the text is the token `<unk>`, as in HF (see
      `special_tokens_in_strings`).

    A `keras_hub.tokenizers.Tokenizer`: `tokenize()` (also `__call__`) and
    `detokenize()`; `save_to_preset(dir)` writes `tokenizer.json` and the
    vocabulary and merges (`assets/tokenizer/vocab.json`, `merges.txt`), which
    `GPT1Tokenizer.from_preset(dir)` and `keras_hub.tokenizers.Tokenizer.from_preset(dir)`
    load; `from_preset` also reads the `vocab.json` / `merges.txt` of a Hugging
    Face OpenAI GPT checkpoint (`"hf://openai-community/openai-gpt"`, a local
    directory). The BPE and normalisation are GPT-1's own: keras-hub's
    `BytePairTokenizer` is GPT-2's byte-level BPE and cannot give GPT-1's ids.

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
        special_tokens_in_strings: which special tokens written literally in the text
            become their own ids (the rest of the text around them is tokenised as
            usual; the match is exact and case-sensitive, on the raw text). `None` (the
            default): `True` in `"bert"` mode, `False` in `"openai"` mode. `False`: none,
            `<unk>` is split like any text (`<`, `unk`, `>`), as the original encoder
            does. `True`: the special tokens of HF's `OpenAIGPTTokenizer(Fast)`, which is
            only `<unk>` (id 0), as HF does. A list of tokens (e.g. `["<unk>", "_start_",
            "_delimiter_", "_classify_"]`): exactly those, each of which must be in the
            vocabulary. GPT-1's `_start_`, `_delimiter_`, `_classify_` in user text are
            matched only this way, so text cannot inject them by accident.
        vocabulary_size: `None`, or the id count the vocabulary files will have. Saved
            configs record it: a preset's or `.keras` file's config names no files (they
            are its assets, read by `load_assets` after the model is built), and until
            then `vocabulary_size()` reports this, so that the model checks the right size.
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

    >>> tokenizer = GPT1Tokenizer()
    >>> tokenizer(["Hello, world!", "Don't panic."]).to_list()
    [[3570, 240, 1276, 267], [587, 538, 3627, 239]]
    >>> tokenizer.detokenize(tokenizer("Don't panic.")).numpy().decode()
    "do n't panic ."

    Literal special tokens: `"bert"` mode reads `<unk>` in the text as the token, like HF;
    `"openai"` mode splits it, like the original encoder; GPT-1's own special tokens are
    matched only when listed.

    >>> bert = GPT1Tokenizer(normalization="bert")
    >>> bert("a <unk> b").numpy().tolist()
    [246, 0, 259]
    >>> tokenizer("a <unk> b").numpy().tolist()
    [246, 295, 2530, 290, 259]
    >>> bert("_start_").numpy().tolist()
    [279, 1759, 279]
    >>> GPT1Tokenizer(special_tokens_in_strings=["_start_"])("_start_ hi").numpy().tolist()
    [40478, 3569]

    Inside `tf.data`, padded for a model with 8 positions (or construct the layer with
    `sequence_length=8` and map the layer itself):

    >>> ds = tf.data.Dataset.from_tensor_slices(["Hello, world!", "Don't panic."])
    >>> ds = ds.batch(2).map(
    ...     lambda x: tokenizer(x, sequence_length=8), num_parallel_calls=tf.data.AUTOTUNE
    ... )
    >>> next(iter(ds)).numpy().tolist()
    [[3570, 240, 1276, 267, 0, 0, 0, 0], [587, 538, 3627, 239, 0, 0, 0, 0]]
    """

    def __init__(
        self,
        vocabulary=None,
        merges=None,
        normalization="openai",
        sequence_length=None,
        errors="strict",
        special_tokens_in_strings=None,
        vocabulary_size=None,
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
        self.file_assets = [VOCABULARY_FILE, MERGES_FILE]
        # True while `save_to_preset` serializes the config (see `get_config`).
        self._config_for_preset = False

        self.vocabulary = vocabulary
        self.merges = merges
        self.normalization = normalization
        self.sequence_length = sequence_length
        self.errors = errors
        self.special_tokens_in_strings = special_tokens_in_strings
        self._splitter = SpacySplitter() if normalization == "openai" else None
        if (vocabulary is None) != (merges is None):
            given, missing = (("vocabulary", "merges") if merges is None
                              else ("merges", "vocabulary"))
            raise ConfigError(
                f"GPT1Tokenizer got `{given}` without `{missing}`: pass both files of one "
                f"BPE training (GPT-1's own {missing} would not fit another {given}). "
                f"Received: {given}={_describe_source(vocabulary if merges is None else merges)}")
        vocab, pairs = load_vocabulary(vocabulary), load_merges(merges)
        if vocabulary is not None:
            check_merges_fit(vocab, pairs, _describe_source(vocabulary), _describe_source(merges))
        self._set_vocabulary_and_merges(vocab, pairs)
        self._declared_size = vocabulary_size

    def _set_vocabulary_and_merges(self, vocab, merges):
        """Builds the tables from a checked vocabulary dict and a list of merge pairs."""
        # The BPE's tokens, then `_start_`, `_delimiter_`, `_classify_`.
        # A plain holder: Keras would wrap (and walk) the 40k-entry dict and lists.
        self._files = _Files(vocab=dict(vocab), merges=list(merges), token_ids=None)
        self._bpe = BytePairEncoder(vocab, self._files.merges, reserved_tokens=SPECIAL_TOKENS)
        tokens = sorted(vocab, key=vocab.get)
        tokens += [t for t in SPECIAL_TOKENS if t not in vocab]
        self._tokens = tokens
        token_ids = {t: i for i, t in enumerate(tokens)}
        self._files.token_ids = token_ids
        self.unk_token_id = vocab[UNK_TOKEN]
        self.pad_token_id = self.unk_token_id
        self.newline_token_id = vocab.get(NEWLINE_TOKEN)
        self.start_token_id, self.delimiter_token_id, self.classify_token_id = (
            token_ids[t] for t in SPECIAL_TOKENS
        )
        # keras-hub's `special_tokens` / `special_token_ids`.
        self._special_token_attrs = []
        for token, name in (
            (UNK_TOKEN, "unk_token"),
            (START_TOKEN, "start_token"),
            (DELIMITER_TOKEN, "delimiter_token"),
            (CLASSIFY_TOKEN, "classify_token"),
        ):
            self._add_special_token(token, name)
        self._token_strings = tf.constant(
            [t + END_OF_WORD if t in SPECIAL_TOKENS else t for t in tokens]
        )

        # --- Special tokens written literally in the text.
        self._literal_tokens = self._literal_special_tokens(token_ids)
        if self._literal_tokens:
            # Longest first: RE2 alternation takes the first alternative that matches.
            by_length = sorted(self._literal_tokens, key=len, reverse=True)
            self._literal_pattern = "|".join(_re2_escape(t) for t in by_length)
            self._literal_table = static_table(
                list(self._literal_tokens),
                [token_ids[t] for t in self._literal_tokens],
                tf.string,
                tf.int32,
                -1,
            )

    def _literal_special_tokens(self, token_ids):
        """`special_tokens_in_strings` -> the tuple of tokens matched in the text."""
        value = self.special_tokens_in_strings
        if value is None:
            value = self.normalization == "bert"
        if isinstance(value, bool):
            return HF_SPECIAL_TOKENS if value else ()
        if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
            raise ValueError(
                "`special_tokens_in_strings` must be None, a bool or a list of token "
                f"strings. Received: special_tokens_in_strings={value!r}"
            )
        tokens = tuple(dict.fromkeys(value))
        for token in tokens:
            if token not in token_ids:
                raise ValueError(
                    "`special_tokens_in_strings` lists a token that is not in the "
                    f"vocabulary. Received: {token!r}"
                )
        return tokens

    # --- Public helpers --------------------------------------------------------------------

    def vocabulary_size(self):
        """Number of ids: the vocabulary plus the 3 special tokens (40481 by default).

        While a saved tokenizer's vocabulary files are not read back yet, the size its
        config recorded (see `vocabulary_size` in the constructor).
        """
        return self._declared_size or len(self._tokens)

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
        if token not in self._files.token_ids:
            raise ValueError(f"Token not in the vocabulary. Received: token={token!r}")
        return self._files.token_ids[token]

    # --- Presets and saved models ------------------------------------------------------

    @classproperty
    def backbone_cls(cls):
        """`GPT1Backbone`: the backbone keras-hub pairs this tokenizer with."""
        from gpt1_keras.models.gpt1_backbone import GPT1Backbone

        return GPT1Backbone

    def save_assets(self, dir_path):
        """Writes the vocabulary and merges (Hugging Face's file formats) to `dir_path`."""
        with open(os.path.join(dir_path, VOCABULARY_FILE), "w", encoding="utf-8") as f:
            json.dump(self._files.vocab, f, ensure_ascii=False)
        with open(os.path.join(dir_path, MERGES_FILE), "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n")
            f.writelines(f"{a} {b}\n" for a, b in self._files.merges)

    def load_assets(self, dir_path):
        """Reads the files of `save_assets`; rebuilds the tables if they differ."""
        vocab = load_vocabulary(os.path.join(dir_path, VOCABULARY_FILE))
        merges = load_merges(os.path.join(dir_path, MERGES_FILE))
        self._declared_size = None
        if vocab != self._files.vocab or merges != self._files.merges:
            check_merges_fit(vocab, merges, os.path.join(dir_path, VOCABULARY_FILE),
                             os.path.join(dir_path, MERGES_FILE))
            # Not GPT-1's: `get_config` (outside a preset) then holds them, so that a
            # copy made with `from_config` has this vocabulary too.
            self.vocabulary, self.merges = dict(vocab), [f"{a} {b}" for a, b in merges]
            self._set_vocabulary_and_merges(vocab, merges)

    def save_to_preset(self, preset_dir):
        """Saves the tokenizer to a preset directory (`tokenizer.json` + assets).

        The config there names no vocabulary or merges files: they are the
        preset's own `assets/tokenizer/vocab.json` and `merges.txt`, so the
        directory can be moved or uploaded.

        Args:
            preset_dir: the path of the local preset directory.
        """
        self._config_for_preset = True
        try:
            super().save_to_preset(preset_dir)
        finally:
            self._config_for_preset = False

    @classmethod
    def from_preset(cls, preset, config_file="tokenizer.json", **kwargs):
        """Instantiates the tokenizer of a preset.

        Args:
            preset: a preset directory written by `save_to_preset()` (of the
                tokenizer, a backbone's preset directory or a task's), a Hugging
                Face handle (`"hf://openai-community/openai-gpt"`) or local
                directory of an OpenAI GPT checkpoint (its `vocab.json` and
                `merges.txt`), or a `"kaggle://..."` handle.
            config_file: the tokenizer's config in a keras-hub preset.
            **kwargs: constructor arguments replacing the preset's
                (`sequence_length`, ...).
        """
        from gpt1_keras.models import preset_loading

        return preset_loading.from_preset(cls, preset, config_file=config_file, **kwargs)

    # --- Call ------------------------------------------------------------------------------

    def call(self, inputs, sequence_length=None):
        return self.tokenize(inputs, sequence_length=sequence_length)

    def tokenize(self, inputs, sequence_length=None):
        """Strings to token ids; see the class docstring (`__call__` is the same)."""
        inputs, scalar = self._check_inputs(inputs)
        with tf.device("cpu"):
            ids = self._tokenize(self._check_utf8(inputs))
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
        A special token matched in the text (`special_tokens_in_strings`) is one word.
        """
        inputs, scalar = self._check_inputs(inputs)
        with tf.device("cpu"):
            inputs = self._check_utf8(inputs)
            words = self._with_literal_tokens(
                inputs, self._words, lambda pieces, _: _rows_of_one(pieces)
            )
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
        # In a preset, the vocabulary and merges are the preset's asset files: the
        # config names none, and `load_assets` reads them in.
        in_preset = self._config_for_preset
        config.update(
            {
                "vocabulary": None if in_preset else self.vocabulary,
                "merges": None if in_preset else self.merges,
                "normalization": self.normalization,
                "sequence_length": self.sequence_length,
                "errors": self.errors,
                "special_tokens_in_strings": self.special_tokens_in_strings,
                "vocabulary_size": self.vocabulary_size(),
            }
        )
        return config

    def compute_output_spec(self, inputs, sequence_length=None):
        sequence_length = sequence_length or self.sequence_length
        shape = (inputs.shape[0], sequence_length)
        return keras.KerasTensor(shape, dtype="int32")

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
        # The batch joined at a newline is valid UTF-8 exactly when every string is (an
        # ASCII byte never completes or continues a multi-byte sequence): one transcode
        # of one string, and the per-string one only for a batch with invalid bytes.
        joined = tf.strings.reduce_join(inputs, separator="\n")
        valid = tf.equal(_transcode(joined), joined)

        def fix():
            fixed = _transcode(inputs)
            if self.errors == "replace":
                return fixed
            check = tf.debugging.Assert(
                False,
                [
                    "GPT1Tokenizer: input is not valid UTF-8 (pass errors='replace' to "
                    "map invalid bytes to U+FFFD). Index of the first invalid string in "
                    "the batch:",
                    tf.where(tf.not_equal(fixed, inputs))[:1, 0],
                ],
            )
            with tf.control_dependencies([check]):
                return tf.identity(inputs)

        return tf.cond(valid, lambda: inputs, fix)

    def _tokenize(self, inputs):
        """`[B]` valid UTF-8 strings -> `[B, None]` int32 ids."""
        return self._with_literal_tokens(
            inputs, self._encode, lambda _, ids: _rows_of_one(ids)
        )

    def _with_literal_tokens(self, inputs, fn, special_fn):
        """Applies `fn` (`[N]` strings -> `[N, None]`) around literal special tokens.

        Without `special_tokens_in_strings` this is `fn(inputs)`. With it, each string is
        cut at the special tokens it contains (as HF's added-token matching does, on the
        raw text before any normalisation): `fn` maps the text between them, and
        `special_fn(pieces, ids)` gives the rows of the special tokens themselves.
        """
        if not self._literal_tokens:
            return fn(inputs)
        pattern = self._literal_pattern

        def split():
            pieces = regex_split(inputs, pattern, pattern)  # [B, P]
            flat = pieces.flat_values
            ids = self._literal_table.lookup(flat)
            is_special = ids >= 0
            rows = ragged_where(is_special, special_fn(flat, ids), fn(flat))  # [P, T]
            return merge_inner_dims(pieces.with_flat_values(rows))

        # Most batches hold no special token: they skip the split.
        found = tf.strings.regex_full_match(inputs, f"(?s).*({pattern}).*")
        return tf.cond(tf.reduce_any(found), split, lambda: fn(inputs))

    def _encode(self, inputs):
        """`[B]` strings (no literal special tokens) -> `[B, None]` int32 ids."""
        chunks = self._chunks(inputs)  # [B, C] strings.
        # Each distinct chunk is split and encoded once.
        unique_chunks, chunk_index = tf.unique(chunks.flat_values)
        words = self._split_unique_chunks(unique_chunks)  # [U, W]
        ids = self._bpe.encode_words(words.flat_values)  # [total W, T]
        chunk_ids = tf.RaggedTensor.from_row_splits(ids, words.row_splits, validate=False)
        chunk_ids = merge_inner_dims(chunk_ids)  # [U, T]
        ids = tf.gather(chunk_ids, chunk_index)  # [total C, T]
        return merge_inner_dims(chunks.with_flat_values(ids))  # [B, T]

    def _words(self, inputs):
        """`[B]` strings (no literal special tokens) -> `[B, None]` words BPE sees."""
        chunks = self._chunks(inputs)
        unique_chunks, chunk_index = tf.unique(chunks.flat_values)
        words = self._split_unique_chunks(unique_chunks)
        words = tf.gather(words, chunk_index)
        return merge_inner_dims(chunks.with_flat_values(words))

    def _chunks(self, inputs):
        """Normalises `[B]` strings and splits them at spaces into `[B, None]` chunks."""
        text = normalization_lib.normalize(inputs, self.normalization)
        return normalization_lib.split_at_spaces(text)

    def _split_unique_chunks(self, chunks):
        """Unique non-empty chunks -> `[U, None]` lower-cased words."""
        if self.normalization == "bert":
            words = normalization_lib.split_bert_punctuation(chunks)
        else:
            words = self._splitter.split(chunks)
        return words.with_flat_values(
            tf.strings.lower(words.flat_values, encoding="utf-8")
        )


class _Files:
    """The vocabulary dict, merge pairs and token -> id dict behind the tables."""

    def __init__(self, vocab, merges, token_ids):
        self.vocab = vocab
        self.merges = merges
        self.token_ids = token_ids


def _describe_source(value):
    """A vocabulary or merges argument, as an error message names it."""
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    return f"<{type(value).__name__} of {len(value)} entries>"


def _transcode(strings):
    """Invalid UTF-8 sequences -> U+FFFD."""
    return tf.strings.unicode_transcode(
        strings, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )


def _rows_of_one(values):
    """`[N]` -> `[N, 1]` ragged."""
    return tf.RaggedTensor.from_row_lengths(
        values, tf.ones_like(values, dtype=tf.int64), validate=False
    )


def _re2_escape(text):
    """Escapes ASCII punctuation for RE2 (every other character stands for itself)."""
    return "".join(
        "\\" + c if c.isascii() and not c.isalnum() and not c.isspace() else c
        for c in text
    )


@keras.saving.register_keras_serializable(package="gpt1_keras")
class LSTMTokenizer(GPT1Tokenizer):
    """`GPT1Tokenizer` paired with `LSTMBackbone` for keras-hub's preset lookup.

    keras-hub finds a preset's tokenizer class through `backbone_cls`
    (`keras_hub.tokenizers.Tokenizer.from_preset(directory)` of an `LSTMBackbone`
    preset resolves to this class, which then loads the `GPT1Tokenizer` saved in
    the preset). It is `GPT1Tokenizer` in every other way.
    """

    @classproperty
    def backbone_cls(cls):
        from gpt1_keras.models.lstm_backbone import LSTMBackbone

        return LSTMBackbone
