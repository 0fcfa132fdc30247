"""spaCy's English tokenizer as TF ops: splits space-free chunks into the words BPE sees.

A vectorised re-implementation of spaCy 3's tokenizer loop (prefix / suffix / special case /
infix / special-case matcher) over a batch of unique chunks, from the rules that
`make_spacy_rules.py` generated out of spaCy into `spacy_english_rules.py` (RE2 patterns and
the exception table), so nothing here needs spaCy at run time. The original GPT-1 encoder ran
spaCy's `English` tokenizer on `text_standardize`d text; `normalization.split_at_spaces` has
already split at the spaces.

>>> import tensorflow as tf
>>> splitter = SpacySplitter()
>>> words = splitter.split(tf.constant(["Don't", "Mr.", "(hello),", "U.K.'s", "can't!"]))
>>> [[w.decode() for w in row] for row in words.to_list()]
[['Do', "n't"], ['Mr.'], ['(', 'hello', ')', ','], ['U.K.', "'s"], ['ca', "n't", '!']]
"""

import tensorflow as tf

from gpt1_keras.tokenizers import spacy_english_rules
from gpt1_keras.tokenizers.ragged_utils import concat_rows
from gpt1_keras.tokenizers.ragged_utils import cumsum
from gpt1_keras.tokenizers.ragged_utils import ragged_where
from gpt1_keras.tokenizers.ragged_utils import select_rows
from gpt1_keras.tokenizers.ragged_utils import static_table


class SpacySplitter(tf.Module):
    """spaCy's English tokenizer on unique space-free chunks (the exception table as TF tables).

    A `tf.Module`, so that the tables are tracked by the layer that holds it (SavedModel).
    """

    def __init__(self, name="spacy_splitter"):
        super().__init__(name=name)
        # spaCy's English exception table ("don't" -> "do", "n't"; "Mr." -> "Mr.").
        special_cases = spacy_english_rules.SPECIAL_CASES
        keys = sorted(special_cases)
        self._special_case_table = static_table(
            keys, list(range(len(keys))), tf.string, tf.int64, -1
        )
        pieces = [special_cases[k] for k in keys]
        self._special_case_pieces = tf.constant([p for row in pieces for p in row])
        self._special_case_splits = tf.constant(
            [0] + list(cumsum(len(row) for row in pieces)), tf.int64
        )

    def split(self, chunks):
        """`[U]` unique non-empty chunks (no spaces) -> `[U, None]` words (case kept)."""
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
            tf.gather(chunks, simple_pos), tf.ones_like(simple_pos), validate=False
        )
        suffixed_chunks = tf.gather(chunks, suffixed_pos)
        size = tf.strings.length(suffixed_chunks)  # The suffix is one ASCII byte.
        head = tf.strings.substr(suffixed_chunks, tf.zeros_like(size), size - 1)
        tail = tf.strings.substr(suffixed_chunks, size - 1, tf.ones_like(size))
        head_rows = ragged_where(
            self._is_special(head),
            self._special_rows(head),
            tf.RaggedTensor.from_row_lengths(head, tf.ones_like(suffixed_pos), validate=False),
        )
        suffixed_rows = concat_rows(
            [
                head_rows,
                tf.RaggedTensor.from_row_lengths(tail, tf.ones_like(suffixed_pos), validate=False),
            ]
        )
        other_rows = self._spacy_affixes(tf.gather(chunks, other_pos))
        return select_rows(
            [
                (simple_pos, simple_rows),
                (suffixed_pos, suffixed_rows),
                (other_pos, other_rows),
            ]
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
        middle_rows = ragged_where(is_special, special_rows, infix_rows)

        pieces = concat_rows(
            [tf.RaggedTensor.from_tensor(prefixes), middle_rows,
             tf.RaggedTensor.from_tensor(suffixes)]
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
