"""Normalisation of whole strings, in-graph, before they are split into words.

Two modes, each a few RE2 / ICU string ops over a `[batch]` string tensor:

- `"openai"`: the character rules of `ftfy.fix_text` that need no Python, then
  `text_standardize` of openai/finetune-transformer-lm `text_utils.py` (the original GPT-1
  encoder). `fix_text` runs the whole of ftfy in Python for text that needs the rest.
- `"bert"`: Hugging Face's `BertNormalizer(lowercase=True)`, as `OpenAIGPTTokenizerFast`
  applies it, and `BertPreTokenizer`'s punctuation split (`split_bert_punctuation`).

`normalize` then `split_at_spaces` gives the space-free chunks that the word splitters
(`spacy_splitter.SpacySplitter` for "openai", `split_bert_punctuation` for "bert") see.

>>> import tensorflow as tf
>>> text = tf.constant(["\u201cWell\u201d\u2014it\u2019s \ufb01ne\u2026"])
>>> normalize(text, "openai").numpy()[0].decode()
'" Well " - it\\'s fine...'
>>> normalize(tf.constant(["Caf\u00e9 NA\u00cfVE"]), "bert").numpy()[0].decode()
'cafe naive'
"""

import tensorflow as tf
import tensorflow_text as tf_text

from gpt1_keras import extras
from gpt1_keras.tokenizers.ragged_utils import regex_split

NORMALIZATIONS = ("openai", "bert")

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
    ftfy = extras.require("ftfy", "`fix_text`")
    if isinstance(texts, str):
        return ftfy.fix_text(texts)
    return [ftfy.fix_text(t) for t in texts]



def normalize(text, mode):
    """Normalises a `[batch]` string tensor the way `mode` (`"openai"`/`"bert"`) does."""
    if mode == "openai":
        return text_standardize(ftfy_rules(text))
    if mode == "bert":
        return bert_normalize(text)
    raise ValueError(f"`mode` must be one of {NORMALIZATIONS}. Received: mode={mode!r}")


def split_at_spaces(text):
    """`[batch]` normalised strings -> `[batch, None]` non-empty chunks between spaces."""
    chunks = tf.strings.split(text, sep=" ")
    return tf.ragged.boolean_mask(chunks, tf.strings.length(chunks) > 0)


def split_bert_punctuation(chunks):
    """HF `BertPreTokenizer` on space-free chunks: `[N]` -> `[N, None]` words.

    Every ASCII punctuation or Unicode P* character becomes a word of its own.
    """
    return regex_split(chunks, _BERT_PUNCT, _BERT_PUNCT)


def ftfy_rules(text):
    """The character rules of `ftfy.fix_text` that need no Python (see `GPT1Tokenizer`)."""

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
    # On the flat code points: `tf.where` on the ragged tensor would add row checks.
    flat = codes.flat_values
    flat = tf.where((flat >= 0xFF01) & (flat <= 0xFF5E), flat - 0xFEE0, flat)
    flat = tf.where(flat == 0x3000, 0x20, flat)
    return tf.strings.unicode_encode(codes.with_flat_values(flat), "UTF-8")


def text_standardize(text):
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


def bert_normalize(text):
    """HF `BertNormalizer(lowercase=True)`: clean, CJK spacing, strip accents, lower."""
    text = tf.strings.regex_replace(text, _BERT_CONTROL, "")
    text = tf.strings.regex_replace(text, _BERT_SPACE, " ")
    text = tf.strings.regex_replace(text, _BERT_CJK, r" \1 ")
    text = tf_text.normalize_utf8(text, "NFD")
    text = tf.strings.regex_replace(text, r"\p{Mn}", "")
    return tf.strings.lower(text, encoding="utf-8")
