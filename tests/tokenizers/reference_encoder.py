"""Independent references for GPT-1 tokenisation parity tests.

`OriginalEncoder` re-states the original GPT-1 encoder, `TextEncoder` of
openai/finetune-transformer-lm `text_utils.py` (MIT): `ftfy.fix_text`, `text_standardize`,
spaCy's English tokenizer, lower-casing and the reference BPE with `</w>`. The only
modernisations: spaCy 3's `English().tokenizer` replaces the long-gone `spacy.load('en')`
(tokenizer only, which is all the original used), and the per-token cache is a plain dict.

`hf_fast_tokenizer` builds HF's `OpenAIGPTTokenizerFast` (Rust: `BertNormalizer` +
`BertPreTokenizer` + BPE) from the same two files: the "bert" reference.
"""

import json
import os
import re

from tests import shared_data

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_vocab_files():
    assets = os.path.join(_REPO_ROOT, "gpt1_keras", "assets", "gpt1_bpe")
    return (
        os.path.join(assets, "encoder_bpe_40000.json"),
        os.path.join(assets, "vocab_40000.bpe"),
    )


def text_standardize(text):
    """`text_standardize` from `text_utils.py`, verbatim."""
    text = text.replace("\u2014", "-")
    text = text.replace("\u2013", "-")
    text = text.replace("\u2015", "-")
    text = text.replace("\u2026", "...")
    text = text.replace("\u00b4", "'")
    text = re.sub(
        r"""(-+|~+|!+|"+|;+|\?+|\++|,+|\)+|\(+|\\+|\/+|\*+|\[+|\]+|\}+|\{+|\|+|_+)""",
        r" \1 ",
        text,
    )
    text = re.sub(r"\s*\n\s*", " \n ", text)
    text = re.sub(r"[^\S\n]+", " ", text)
    return text.strip()


def get_pairs(word):
    pairs = set()
    prev_char = word[0]
    for char in word[1:]:
        pairs.add((prev_char, char))
        prev_char = char
    return pairs


class OriginalEncoder:
    """The original GPT-1 `TextEncoder`: the "openai" reference."""

    def __init__(self, encoder_path=None, bpe_path=None, use_ftfy=True):
        import ftfy
        from spacy.lang.en import English

        default_encoder, default_bpe = default_vocab_files()
        self.ftfy = ftfy if use_ftfy else None
        self.nlp = English().tokenizer
        with open(encoder_path or default_encoder, encoding="utf-8") as f:
            self.encoder = json.load(f)
        with open(bpe_path or default_bpe, encoding="utf-8") as f:
            merges = f.read().split("\n")[1:-1]
        merges = [tuple(merge.split()) for merge in merges]
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.cache = {}

    def bpe(self, token):
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        if token in self.cache:
            return self.cache[token]
        pairs = get_pairs(word)
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        word = " ".join(word)
        if word == "\n  </w>":
            word = "\n</w>"
        self.cache[token] = word
        return word

    def normalize(self, text):
        if self.ftfy is not None:
            text = self.ftfy.fix_text(text)
        return text_standardize(text)

    def tokens(self, text):
        """The lower-cased spaCy tokens the BPE sees."""
        return [t.text.lower() for t in self.nlp(self.normalize(text))]

    def encode(self, text):
        ids = []
        for token in self.nlp(self.normalize(text)):
            ids.extend(
                self.encoder.get(t, 0) for t in self.bpe(token.text.lower()).split(" ")
            )
        return ids


def hf_fast_tokenizer(encoder_path=None, bpe_path=None):
    """HF's `OpenAIGPTTokenizerFast` from local files: the "bert" reference."""
    from transformers import OpenAIGPTTokenizerFast

    default_encoder, default_bpe = default_vocab_files()
    return OpenAIGPTTokenizerFast(
        vocab_file=encoder_path or default_encoder, merges_file=bpe_path or default_bpe
    )


def read_tinyshakespeare():
    with open(shared_data.path("tinyshakespeare.txt"), encoding="utf-8") as f:
        return f.read().split("\n")


def read_sst2_sentences():
    import csv

    path = shared_data.path("sst2", "train.tsv")
    with open(path, encoding="utf-8") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [row["sentence"] for row in rows]


# Hand-written text that neither the code nor the rules were tuned on: accents, quotes,
# numbers, URLs, newlines, contractions, abbreviations, symbols.
OWN_TEXT = [
    "Café déjà vu: naïve résumé of the façade, São Paulo & Zürich.",
    "\u201cSmart quotes\u201d and \u2018single ones\u2019 \u2014 with an em dash\u2026",
    "I'm sure you'll agree: we can't, won't and shouldn't've done it.",
    "Don't DON'T don't. It's its own thing; they're there, their car.",
    "Call 555-0123 or +1 (800) 555 0199 before 5pm on 12/31/2024.",
    "Prices rose 3.5% to $1,234.56 (about \u00a31,000 or 1.000,00\u20ac).",
    "See https://example.com/path?q=1&r=two#frag or www.openai.com for more.",
    "Email me at jane.doe@example.org, not JOHN@EXAMPLE.COM!",
    "First line\nsecond line\n\n\nfourth after blank lines\r\nwindows line",
    "Tabs\tand  multiple   spaces\u00a0and\u2003odd ones.",
    "Mr. Smith met Dr. Jones at 10 a.m. in the U.S. on Jan. 5th, etc.",
    "e.g. this, i.e. that; vs. the other... Really?! Yes!!! No???",
    "Hyphen-ated words, well-known co-op, state-of-the-art e-mail.",
    "Numbers: 1st 2nd 3rd 4th, 1990s, 100km, 5kg, 3.14159, 10^6, 2+2=4.",
    "Emoji \U0001F600 and symbols \u00a9 \u00ae \u2122 \u00b0C 25\u00b0C \u2192 arrows.",
    "Stra\u00dfe, \u00c5ngstr\u00f6m, \u0152uvre, na\u00efvet\u00e9, CR\u00c8ME BR\u00dbL\u00c9E.",
    "Greek \u03b1\u03b2\u03b3 \u0394\u03b5\u03bb\u03c4\u03b1, Cyrillic \u041f\u0440\u0438\u0432\u0435\u0442, CJK \u4e2d\u6587\u5b57.",
    "'Quoted' words and `backticks' and \"double\" and ''two singles''.",
    "O'Neill's rock 'n' roll, y'all ain't gonna wanna gotta lemme.",
    "He said: \"I'd've gone, but I couldn't.\" She'd agree; we'd not.",
    "C++ and C# are languages; so is F*.  a/b c\\d [x] {y} <z> |w| _v_",
    "   leading and trailing whitespace   ",
    "CamelCaseWord and camel.Case and end.Start and U.K.-based firms.",
    "Ellipsis... inside...words and.... dots",
    "Fullwidth \uff21\uff22\uff23 \uff11\uff12\uff13 and ligatures \ufb01nish \ufb02ow.",
    "Spanish \u00bfQu\u00e9 tal? \u00a1Muy bien! French \u00ab guillemets \u00bb.",
    "A line with a very_long_identifier_name and snake_case and kebab-case.",
    "50/50 chance, 9:30am, 3:1 odds, 1-2-3, 4x4, #hashtag @mention.",
    "Shakespeare: 'Tis true, ne'er o'er the hill, th' art thou, i' the morn.",
    "ALL CAPS SENTENCE WITH DON'T AND I'M AND IT'S.",
]
