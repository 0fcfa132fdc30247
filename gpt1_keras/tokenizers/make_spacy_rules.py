"""Writes `spacy_english_rules.py`: spaCy's English tokenizer rules in RE2 form.

GPT-1's original encoder splits text with spaCy's English tokenizer. `GPT1Tokenizer`
re-implements that tokenizer with TF ops, from data generated here once (spaCy is not a
runtime dependency): the exception table (`nlp.tokenizer.rules`) and the prefix, suffix and
infix patterns, rewritten from Python `re` (with look-behind / look-ahead) into RE2
(capturing the context instead).

Usage (needs spaCy; the checked-in file was made with spaCy 3.8.7):

    python -m gpt1_keras.tokenizers.make_spacy_rules gpt1_keras/tokenizers/spacy_english_rules.py
"""

import re
import sys

from gpt1_keras import extras


def _re2(piece):
    """Python `re` escapes -> RE2 escapes."""
    piece = re.sub(r"\\U([0-9A-Fa-f]{8})", lambda m: "\\x{%X}" % int(m.group(1), 16), piece)
    piece = re.sub(r"\\u([0-9A-Fa-f]{4})", lambda m: "\\x{%X}" % int(m.group(1), 16), piece)
    return piece


def _group_end(text, start):
    """Index just past the `)` closing the group opened at `text[start]`."""
    depth, i, in_class = 0, start, False
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"Unbalanced group in {text!r}")


def _split_lookarounds(piece):
    """`(?<=B)X(?=A)` -> (B, X, A); missing parts are ""."""
    behind = ahead = ""
    if piece.startswith("(?<="):
        end = _group_end(piece, 0)
        behind, piece = piece[4 : end - 1], piece[end:]
    idx = piece.rfind("(?=")
    if idx > 0 and _group_end(piece, idx) == len(piece):
        ahead, piece = piece[idx + 3 : -1], piece[:idx]
    if "(?<" in piece or "(?=" in piece or "(?!" in piece:
        raise ValueError(f"Unsupported look-around in {piece!r}")
    return behind, piece, ahead


def build_rules():
    from spacy.lang.en import English

    nlp = English()
    defaults = nlp.Defaults
    from spacy.attrs import ORTH

    # Exceptions without spaces: chunks never contain one after `text_standardize`.
    special_cases = {
        key: [t[ORTH] for t in value]
        for key, value in nlp.tokenizer.rules.items()
        if key and not any(c.isspace() for c in key)
    }

    prefixes = []
    for piece in defaults.prefixes:
        if not piece.strip():
            continue
        # "+" is always isolated by `text_standardize` before spaCy runs, so the
        # look-ahead "(?![0-9])" of this prefix can never fail.
        if piece == r"\+(?![0-9])":
            piece = r"\+"
        prefixes.append(_re2(piece))
    prefix = "^(" + "|".join(prefixes) + ")"

    plain, groups = [], []
    for piece in defaults.suffixes:
        if not piece.strip():
            continue
        behind, body, ahead = _split_lookarounds(piece)
        if ahead:
            raise ValueError(f"Unexpected look-ahead in suffix {piece!r}")
        if behind:
            groups.append(_re2(behind) + "(" + _re2(body) + ")")
        else:
            plain.append(_re2(body))
    alternatives = ["(" + "|".join(plain) + ")"] + groups
    if len(alternatives) > 9:
        raise ValueError("RE2 rewrites support at most 9 groups.")
    suffix = "^(?s:.*?)(?:" + "|".join(alternatives) + ")$"
    suffix_rewrite = "".join("\\%d" % (i + 1) for i in range(len(alternatives)))

    infixes = []
    for piece in defaults.infixes:
        behind, body, ahead = _split_lookarounds(piece)
        if behind or ahead:
            pattern = "(%s)(%s)(%s)" % (
                _re2(behind) if behind else "",
                _re2(body),
                _re2(ahead) if ahead else "",
            )
            # Context characters are consumed by RE2: a second pass catches matches that
            # shared one with the previous match (as look-arounds would).
            infixes += [(pattern, r"\1 \2 \3")] * 2
        else:
            infixes.append(("(" + _re2(body) + ")", r" \1 "))
    return special_cases, prefix, suffix, suffix_rewrite, infixes, _matcher_rules(nlp)


def _matcher_rules(nlp):
    """spaCy's special-case matcher, as RE2 rewrites of space-joined tokens of a chunk.

    After the affix rules, spaCy retokenizes any run of tokens inside one chunk that equals
    the affix-only tokenization of a special case (e.g. `x''` -> `x`, `'`, `'` -> `x`,
    `''`). Each rewrite below works on `" " + " ".join(tokens) + " "`.
    """
    import collections

    from spacy.attrs import ORTH
    from spacy.lang.en import English

    # Characters `text_standardize` always isolates, and curly quotes (ftfy straightens
    # them): special cases containing these can never be rebuilt inside one chunk.
    never = set('-~!";?+,)(\\/*[]}{|_\u2018\u2019\u201c\u201d')
    plain = English().tokenizer
    plain.rules = {}
    tokenizer = nlp.tokenizer
    cases = []
    for key, value in sorted(tokenizer.rules.items()):
        if any(c.isspace() or c in never for c in key):
            continue
        if not (tokenizer.find_prefix(key) or tokenizer.find_suffix(key)
                or tokenizer.find_infix(key)):
            continue
        tokens = [t.text for t in plain(key)]
        pieces = [p[ORTH] for p in value]
        if tokens != pieces:
            cases.append((tokens, pieces))
    rules = []
    # Longest runs first, as spaCy keeps the longest match.
    by_right = collections.defaultdict(list)
    by_left = collections.defaultdict(list)
    single = []
    for tokens, pieces in sorted(cases, key=lambda c: -len(c[0])):
        if len(tokens) == 2 and pieces == ["".join(tokens)]:
            if tokens[1] in (".", "'"):
                by_right[tokens[1]].append(tokens[0])
            else:
                by_left[tokens[0]].append(tokens[1])
        else:
            single.append((tokens, pieces))
    for tokens, pieces in single:
        pattern = " " + " ".join(re.escape(t) for t in tokens) + " "
        rules.append((pattern, " " + " ".join(pieces).replace("\\", "\\\\") + " "))
    for right, lefts in sorted(by_right.items()):
        alts = "|".join(re.escape(t) for t in sorted(lefts, key=len, reverse=True))
        rules.append((" (%s) (%s) " % (alts, re.escape(right)), r" \1\2 "))
    for left, rights in sorted(by_left.items()):
        alts = "|".join(re.escape(t) for t in sorted(rights, key=len, reverse=True))
        rules.append((" (%s) (%s) " % (re.escape(left), alts), r" \1\2 "))
    return [(_re2(p), r) for p, r in rules]


def main(path):
    spacy = extras.require("spacy", "Regenerating the spaCy rules")

    special_cases, prefix, suffix, suffix_rewrite, infixes, matcher = build_rules()
    with open(path, "w", encoding="utf-8") as f:
        f.write(
            '"""spaCy English tokenizer rules in RE2 form (generated; do not edit).\n\n'
            f"Made by `make_spacy_rules.py` from spaCy {spacy.__version__} "
            "(MIT licence, Copyright (C) 2016-2024 ExplosionAI GmbH,\n"
            '2016 spaCy GmbH, 2015 Matthew Honnibal): `English().tokenizer`.\n"""\n\n'
        )
        f.write("# Chunks that are one token unless they are a special case.\n")
        f.write("SIMPLE_RE2 = %r\n\n" % r"\p{L}+|[0-9]+|\n")
        f.write("PREFIX_MATCH_RE2 = %r\n\n" % (prefix + "(?s:.*)"))
        f.write("PREFIX_CAPTURE_RE2 = %r\n\n" % (prefix + "(?s:.*)$"))
        f.write("SUFFIX_MATCH_RE2 = %r\n\n" % suffix)
        f.write("SUFFIX_CAPTURE_RE2 = %r\n\n" % suffix)
        f.write("SUFFIX_REWRITE = %r\n\n" % suffix_rewrite)
        f.write("INFIX_REPLACEMENTS = [\n")
        for pattern, rewrite in infixes:
            f.write("    (%r, %r),\n" % (pattern, rewrite))
        f.write("]\n\n")
        f.write("# Rewrites of \" \" + \" \".join(tokens) + \" \" for spaCy's special-case matcher.\n")
        f.write("MATCHER_REPLACEMENTS = [\n")
        for pattern, rewrite in matcher:
            f.write("    (%r, %r),\n" % (pattern, rewrite))
        f.write("]\n\n")
        f.write("MATCHER_ANY_RE2 = %r\n\n" % ("(?s).*(?:" + "|".join(p for p, _ in matcher) + ").*"))
        f.write("SPECIAL_CASES = {\n")
        for key in sorted(special_cases):
            f.write("    %r: %r,\n" % (key, special_cases[key]))
        f.write("}\n")


if __name__ == "__main__":
    main(sys.argv[1])
