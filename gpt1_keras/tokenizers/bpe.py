"""GPT-1's byte-pair encoding in TF ops: words in, ids out.

The vocabulary and merges files of the original release (`encoder_bpe_40000.json`,
`vocab_40000.bpe`) or any in that format. BPE works on characters; `</w>` marks the last
one of a word, and the lowest-ranked adjacent pair of a word merges first (the reference
`TextEncoder.bpe` of openai/finetune-transformer-lm). Every whole word of the vocabulary is
precomputed into a word -> ids table at construction; other words go through the in-graph
merge loop.

>>> import tensorflow as tf
>>> vocab = {"<unk>": 0, "a": 1, "b": 2, "a</w>": 3, "b</w>": 4, "ab": 5, "ab</w>": 6}
>>> bpe = BytePairEncoder(load_vocabulary(vocab), load_merges(["a b</w>", "a b"]))
>>> bpe.encode_words(tf.constant(["ab", "abab", "ba", "c"])).to_list()
[[6], [5, 6], [2, 3], [0]]
"""

import json
import os

import tensorflow as tf

from gpt1_keras.errors import ConfigError
from gpt1_keras.tokenizers.ragged_utils import select_rows
from gpt1_keras.tokenizers.ragged_utils import static_table

ASSETS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "gpt1_bpe"
)
DEFAULT_VOCABULARY = os.path.join(ASSETS_DIR, "encoder_bpe_40000.json")
DEFAULT_MERGES = os.path.join(ASSETS_DIR, "vocab_40000.bpe")

END_OF_WORD = "</w>"
UNK_TOKEN = "<unk>"

# Merge-table values pack `rank * _RANK_SCALE + merged_symbol` in an int64.
_RANK_SCALE = 2**24
# Above any packed value: "this pair never merges".
_NO_MERGE = 2**62


def load_vocabulary(vocabulary):
    """`None` (GPT-1's), a path to an encoder JSON file or a dict token -> id: a checked copy."""
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


def load_merges(merges):
    """`None` (GPT-1's), a merges file or a list of `"a b"` / `(a, b)`: pairs, by rank."""
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


def check_merges_fit(vocabulary, merges, vocabulary_source="vocabulary",
                     merges_source="merges"):
    """Raises a `ConfigError` unless every merge's parts and result are in the vocabulary.

    GPT-1's files and `train_bpe`'s output always fit; a vocabulary paired with the merges
    of another BPE training (e.g. a new vocabulary with GPT-1's merges) does not, and would
    silently encode most words as `<unk>`.

    Args:
        vocabulary: a dict token -> id.
        merges: `(a, b)` pairs, lowest rank first.
        vocabulary_source, merges_source: how the message names them (file paths).
    """
    for rank, (a, b) in enumerate(merges, start=1):
        for symbol in (a, b, a + b):
            if symbol not in vocabulary:
                raise ConfigError(
                    f"The merges ({merges_source}) do not fit the vocabulary "
                    f"({vocabulary_source}, {len(vocabulary)} tokens): merge {rank} "
                    f"{a!r} + {b!r} needs {symbol!r}, which the vocabulary lacks; pass the "
                    "vocabulary and merges of the same BPE training (train_bpe writes both).")


class BytePairEncoder(tf.Module):
    """BPE of lower-cased words into ids, with a precomputed table of whole words.

    A `tf.Module`, so that the tables are tracked by the layer that holds it (SavedModel).

    Args:
        vocabulary: a dict token -> id (ids `0..n-1`, with `"<unk>"`), e.g. from
            `load_vocabulary`.
        merges: a list of `(a, b)` pairs, lowest rank first, e.g. from `load_merges`.
        reserved_tokens: tokens appended after the vocabulary (ids `n`, `n+1`, ...) that BPE
            never outputs (GPT-1's `_start_`, ...): a merge that spells one gives `<unk>`.
    """

    def __init__(self, vocabulary, merges, reserved_tokens=(), name="bpe"):
        super().__init__(name=name)
        vocab = dict(vocabulary)
        # Only the vocabulary's own ids are outputs; reserved tokens and merge symbols that
        # the vocabulary lacks become <unk>.
        self.output_size = len(vocab)
        self.unk_token_id = vocab[UNK_TOKEN]
        for token in reserved_tokens:
            if token not in vocab:
                vocab[token] = len(vocab)
        tokens = sorted(vocab, key=vocab.get)
        pairs = list(merges)

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
        self._symbol_table = static_table(
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
        self._merge_table = static_table(
            merge_keys, merge_values, tf.int64, tf.int64, _NO_MERGE
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
            rows = self.merge_loop(tf.constant(words))
        else:
            words = [""]
            rows = tf.RaggedTensor.from_row_lengths(
                tf.constant([self.unk_token_id], tf.int32), tf.constant([1], tf.int64),
                validate=False,
            )
        self.word_table = static_table(
            words, list(range(len(words))), tf.string, tf.int64, -1
        )
        self._word_ids = tf.constant(rows.values)
        self._word_splits = tf.constant(rows.row_splits)

    def encode_words(self, words):
        """`[N]` non-empty lower-cased words -> `[N, None]` int32 ids."""
        unique_words, word_index = tf.unique(words)
        row = self.word_table.lookup(unique_words)
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
        miss_rows = self.merge_loop(tf.gather(unique_words, miss_pos))
        rows = select_rows([(hit_pos, hit_rows), (miss_pos, miss_rows)])
        return tf.gather(rows, word_index)

    def merge_loop(self, words):
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
            (symbols >= 0) & (symbols < self.output_size),
            symbols,
            tf.cast(self.unk_token_id, tf.int64),
        )
        return tf.RaggedTensor.from_value_rowids(
            tf.cast(ids, tf.int32), word_index, nrows=num_words, validate=False
        )

