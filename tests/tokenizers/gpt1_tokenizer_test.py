"""Tests for `GPT1Tokenizer`: parity with independent references, API, bad input, export."""

import functools
import json
import os
import random
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl.testing import absltest

from gpt1_keras.tokenizers import GPT1Tokenizer
from tests.tokenizers import reference_encoder as ref

# Parity is exact: every line of a corpus sample gets the reference's ids. The samples are
# fixed (evenly spaced non-blank lines), large enough that a rule that matters shows up;
# 100% holds on the whole of tinyshakespeare and SST-2 too (docs/tokenizer.md).
SAMPLE_LINES = 8000
MIN_LINES = {"tinyshakespeare": SAMPLE_LINES, "sst2": SAMPLE_LINES, "own_text": 30}

_TOKENIZERS = {}
_REFERENCES = {}


def tokenizer(normalization="openai"):
    """One tokenizer per mode for the whole test file (building one takes ~1 s)."""
    if normalization not in _TOKENIZERS:
        _TOKENIZERS[normalization] = GPT1Tokenizer(normalization=normalization)
    return _TOKENIZERS[normalization]


def reference(name):
    if name not in _REFERENCES:
        _REFERENCES[name] = (
            ref.OriginalEncoder() if name == "openai" else ref.hf_fast_tokenizer()
        )
    return _REFERENCES[name]


def encode(tok, lines, batch_size=4096):
    out = []
    for i in range(0, len(lines), batch_size):
        out.extend(tok(tf.constant(lines[i : i + batch_size])).to_list())
    return out


def reference_ids(name, lines):
    if name == "openai":
        encoder = reference("openai")
        return [encoder.encode(line) for line in lines]
    return reference("bert")(lines, add_special_tokens=False)["input_ids"]


def sample(lines, size=SAMPLE_LINES):
    """The non-blank lines, `size` of them evenly spaced (all if fewer)."""
    lines = [line for line in lines if line.strip()]
    if len(lines) <= size:
        return lines
    return [lines[i * len(lines) // size] for i in range(size)]


@functools.lru_cache(maxsize=None)
def _corpora():
    return {
        "tinyshakespeare": tuple(sample(ref.read_tinyshakespeare())),
        "sst2": tuple(sample(ref.read_sst2_sentences())),
        "own_text": tuple(sample(ref.OWN_TEXT)),
    }


def corpora():
    return {name: list(lines) for name, lines in _corpora().items()}


def wikitext_like(lines, seed=0):
    """WikiText-103-style lines: words replaced by `<unk>` (about one in six), ` @-@ `-style
    joiners, ` = Heading = ` lines, and `<unk>` glued to words and punctuation."""
    rng = random.Random(seed)
    out = []
    for line in lines:
        words = line.split()
        for i, word in enumerate(words):
            roll = rng.random()
            if roll < 0.15:
                words[i] = "<unk>"
            elif roll < 0.18:
                words[i] = rng.choice(["<unk>'s", "(<unk>", "<unk>,", "x<unk>", "<unk>-y"])
            elif roll < 0.20:
                words[i] = rng.choice(["@-@", "@,@", "@.@"])
        text = " ".join(words)
        if rng.random() < 0.05:
            text = f" = = {text} = = "
        out.append(text)
    return out


# Hand-written edge cases around the literal special tokens: case, partial tokens, nesting,
# neighbours that normalisation would change, whitespace, escapes.
LITERAL_UNK_LINES = [
    "<unk>",
    "<unk><unk> <unk>",
    " The <unk> of <unk> was built in 1890 @-@ 1895 . ",
    "x<unk>y <<unk>> [<unk>] \"<unk>\" '<unk>' <unk>'s <unk>n't",
    "<UNK> <Unk> < unk > <unk <unk unk> unk>",
    "<un<unk>k> <<unk>unk>> &lt;unk&gt;",
    "Caf\u00e9<unk>na\u00efve \u00c9<unk>\u0301 \u4e2d<unk>\u6587",
    "\t<unk>\n<unk>\r\n <unk>\u00a0<unk>\u3000<unk>",
    "\uff1cunk\uff1e \u201c<unk>\u201d \u2014<unk>\u2026",
    "_<unk>_ <unk>_start_ _delimiter_<unk>",
]

# GPT-1's special tokens written in the text: never turned into their ids unless listed.
LITERAL_GPT1_LINES = [
    "_start_ The movie was great _delimiter_ I liked it _classify_",
    "_start__delimiter__classify_",
    "x_start_y __start__ _START_ _Start_ _start _start_s",
    "<unk>_start_<unk> _classify_<unk>_delimiter_",
    "_delimiter_\n_classify_\t_start_",
    "Caf\u00e9 _start_ na\u00efve _classify_.",
]


class ParityTest(absltest.TestCase):
    """Identical ids to the references on text the rules were not tuned on."""

    def check_parity(self, mode, corpus):
        lines = corpora()[corpus]
        self.assertGreaterEqual(len(lines), MIN_LINES[corpus])
        ours = encode(tokenizer(mode), lines)
        theirs = reference_ids(mode, lines)
        diffs = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
        print(
            f"[parity] mode={mode} corpus={corpus} lines={len(lines)} "
            f"identical={len(lines) - len(diffs)}"
        )
        examples = "\n".join(repr(lines[i]) for i in diffs[:10])
        self.assertEqual(
            diffs, [], f"{mode} parity on {corpus}: {len(diffs)} of {len(lines)} lines "
            f"differ, e.g.\n{examples}"
        )

    def test_openai_tinyshakespeare(self):
        self.check_parity("openai", "tinyshakespeare")

    def test_openai_sst2(self):
        self.check_parity("openai", "sst2")

    def test_openai_own_text(self):
        self.check_parity("openai", "own_text")

    def test_bert_tinyshakespeare(self):
        self.check_parity("bert", "tinyshakespeare")

    def test_bert_sst2(self):
        self.check_parity("bert", "sst2")

    def test_bert_own_text(self):
        self.check_parity("bert", "own_text")

    def test_merge_loop_matches_reference_bpe(self):
        # Words that miss the precomputed table all go through the in-graph merge loop.
        tok = tokenizer()
        words = sorted(
            {
                w
                for line in corpora()["own_text"] + corpora()["tinyshakespeare"][:3000]
                for w in reference("openai").tokens(line)
            }
        )
        # (The reference maps spaCy's newline token "\n " specially; we emit "\n".)
        words = [w for w in words if not w.isspace()]
        misses = [w for w in words if tok._bpe.word_table.lookup(tf.constant(w)) < 0]
        self.assertGreater(len(misses), 50)
        ours = tok._bpe.merge_loop(tf.constant(misses)).to_list()
        encoder = reference("openai")
        theirs = [
            [encoder.encoder.get(t, 0) for t in encoder.bpe(w).split(" ")] for w in misses
        ]
        self.assertEqual(ours, theirs)


class RoundTripTest(absltest.TestCase):
    def test_openai_detokenize_returns_normalised_text(self):
        tok = tokenizer("openai")
        lines = corpora()["own_text"] + corpora()["tinyshakespeare"][:2000]
        ids = tok(tf.constant(lines)).to_list()
        text = [t.decode("utf-8") for t in tok.detokenize(tf.ragged.constant(ids)).numpy()]
        # Two documented differences from the reference's spaCy tokens: its newline token
        # is "\n " (ours "\n", the same id), and a character missing from the vocabulary
        # comes back as "<unk>"; compare every line that has no <unk> id.
        encoder = reference("openai")
        expected = [
            " ".join("\n" if t.isspace() else t for t in encoder.tokens(line))
            for line in lines
        ]
        known = [0 not in row for row in ids]
        self.assertGreater(sum(known), 2000)
        self.assertEqual(
            [t for t, k in zip(text, known) if k], [e for e, k in zip(expected, known) if k]
        )
        # Also equal to our own pre-tokenisation.
        words = tok.pre_tokenize(tf.constant(lines)).to_list()
        ours = [" ".join(w.decode("utf-8") for w in row) for row in words]
        self.assertEqual(
            [t for t, k in zip(text, known) if k], [e for e, k in zip(ours, known) if k]
        )

    def test_bert_detokenize_matches_hf_decode(self):
        tok = tokenizer("bert")
        lines = corpora()["own_text"] + corpora()["sst2"][:2000] + LITERAL_UNK_LINES
        ids = tok(tf.constant(lines))
        text = [t.decode("utf-8") for t in tok.detokenize(ids).numpy()]
        hf = reference("bert")
        theirs = [hf.decode(row) for row in ids.to_list()]
        self.assertEqual(text, theirs)

    def test_newline_is_its_own_token(self):
        tok = tokenizer()
        ids = tok("one\ntwo").numpy().tolist()
        self.assertIn(tok.newline_token_id, ids)
        self.assertEqual(tok.detokenize(ids).numpy().decode(), "one \n two")


class LiteralSpecialTokensTest(absltest.TestCase):
    """`special_tokens_in_strings`: HF's handling of `<unk>` in "bert" mode, none in "openai"."""

    def unk_lines(self):
        corpus = corpora()
        lines = wikitext_like(corpus["tinyshakespeare"][:1500] + corpus["sst2"][:1500])
        return lines + LITERAL_UNK_LINES + LITERAL_GPT1_LINES

    def assert_same(self, ours, theirs, lines):
        diffs = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
        examples = "\n".join(f"{lines[i]!r}: {ours[i]} != {theirs[i]}" for i in diffs[:5])
        self.assertEqual(diffs, [], f"{len(diffs)} of {len(lines)} lines differ:\n{examples}")

    def test_bert_reads_unk_in_text_like_hf(self):
        lines = self.unk_lines()
        ours = encode(tokenizer("bert"), lines)
        self.assert_same(ours, reference_ids("bert", lines), lines)
        # The text is full of <unk>, each one id 0 (not "<", "unk", ">").
        literal = sum(line.count("<unk>") for line in lines)
        self.assertGreater(literal, 2000)
        self.assertGreaterEqual(sum(row.count(0) for row in ours), literal)
        print(f"[parity] mode=bert corpus=wikitext_like lines={len(lines)} identical=all")

    def test_openai_splits_unk_like_the_original_encoder(self):
        lines = self.unk_lines()
        ours = encode(tokenizer("openai"), lines)
        self.assert_same(ours, reference_ids("openai", lines), lines)
        print(f"[parity] mode=openai corpus=wikitext_like lines={len(lines)} identical=all")

    def test_gpt1_special_tokens_in_text_are_not_injected(self):
        lines = LITERAL_GPT1_LINES + wikitext_like(LITERAL_GPT1_LINES * 20, seed=1)
        special = {40478, 40479, 40480}
        for mode in ("bert", "openai"):
            ours = encode(tokenizer(mode), lines)
            self.assert_same(ours, reference_ids(mode, lines), lines)
            self.assertFalse(special & {i for row in ours for i in row})

    def test_listed_tokens_match_hf_added_special_tokens(self):
        listed = ["<unk>", "_start_", "_delimiter_", "_classify_"]
        tok = GPT1Tokenizer(normalization="bert", special_tokens_in_strings=listed)
        hf = ref.hf_fast_tokenizer()
        hf.add_special_tokens({"additional_special_tokens": listed[1:]})
        self.assertEqual(
            hf.convert_tokens_to_ids(listed[1:]),
            [tok.start_token_id, tok.delimiter_token_id, tok.classify_token_id],
        )
        lines = self.unk_lines()
        ours = encode(tok, lines)
        self.assert_same(ours, hf(lines, add_special_tokens=False)["input_ids"], lines)
        flat = [i for row in ours for i in row]
        for token_id in (tok.start_token_id, tok.delimiter_token_id, tok.classify_token_id):
            self.assertIn(token_id, flat)

    def test_listed_tokens_in_openai_mode(self):
        # Matched on the raw text; the text between them is encoded as usual.
        tok = GPT1Tokenizer(special_tokens_in_strings=["_start_", "_classify_"])
        plain = tokenizer("openai")
        got = tok(tf.constant(["_start_Don't stop._classify_ _delimiter_"])).to_list()[0]
        parts = [plain(t).numpy().tolist() for t in ("Don't stop.", "_delimiter_")]
        self.assertEqual(
            got, [tok.start_token_id] + parts[0] + [tok.classify_token_id] + parts[1]
        )

    def test_option_values_and_config(self):
        text = tf.constant(["a <unk> b"])
        split = tokenizer("openai")(text).to_list()
        self.assertEqual(
            GPT1Tokenizer(normalization="bert", special_tokens_in_strings=False)(
                text
            ).to_list(),
            reference_ids("bert", ["a < unk > b"]),
        )
        self.assertEqual(
            GPT1Tokenizer(special_tokens_in_strings=True)(text).to_list(),
            [[split[0][0], 0, split[0][-1]]],
        )
        self.assertNotIn(0, split[0])
        words = tokenizer("bert").pre_tokenize(tf.constant(["x<unk>y z"])).to_list()
        self.assertEqual(words, [[b"x", b"<unk>", b"y", b"z"]])
        tok = GPT1Tokenizer(special_tokens_in_strings=["_start_"])
        restored = keras.layers.deserialize(keras.layers.serialize(tok))
        self.assertEqual(restored.get_config()["special_tokens_in_strings"], ["_start_"])
        self.assertEqual(restored("_start_").numpy().tolist(), [tok.start_token_id])
        for bad in ("<unk>", 5, [b"<unk>"]):
            with self.assertRaisesRegex(ValueError, "special_tokens_in_strings"):
                GPT1Tokenizer(special_tokens_in_strings=bad)
        with self.assertRaisesRegex(ValueError, "not in the vocabulary.*'<pad>'"):
            GPT1Tokenizer(special_tokens_in_strings=["<pad>"])

    def test_in_tf_data_and_saved_model(self):
        tok = GPT1Tokenizer(normalization="bert", sequence_length=16)
        lines = ["no special token here", "the <unk> of <unk>", ""]
        expected = tok(tf.constant(lines)).numpy().tolist()
        self.assertEqual(expected[1][:4], [481, 0, 498, 0])
        self.assertEqual(expected[2], [tok.pad_token_id] * 16)
        self.assertEqual(expected[0], tok(tf.constant(lines[:1])).numpy().tolist()[0])
        # Batches with and without a literal token take different branches.
        ds = tf.data.Dataset.from_tensor_slices(lines).batch(1).map(tok)
        self.assertEqual([row for b in ds for row in b.numpy().tolist()], expected)
        module = tf.Module()
        module.tok = tok
        module.serve = tf.function(
            lambda x: tok(x), input_signature=[tf.TensorSpec([None], tf.string)]
        )
        with tempfile.TemporaryDirectory() as tmp:
            tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve})
            got = tf.saved_model.load(tmp).signatures["serving_default"](tf.constant(lines))
        self.assertEqual(list(got.values())[0].numpy().tolist(), expected)


class ApiTest(absltest.TestCase):
    def test_vocabulary_and_special_tokens(self):
        with open(ref.default_vocab_files()[0], encoding="utf-8") as f:
            encoder = json.load(f)
        tok = tokenizer()
        self.assertEqual(tok.vocabulary_size(), len(encoder) + 3)
        self.assertEqual(
            [tok.start_token_id, tok.delimiter_token_id, tok.classify_token_id],
            [len(encoder), len(encoder) + 1, len(encoder) + 2],
        )
        self.assertEqual(tok.unk_token_id, encoder["<unk>"])
        self.assertEqual(tok.newline_token_id, encoder["\n</w>"])
        self.assertEqual(tok.id_to_token(tok.classify_token_id), "_classify_")
        self.assertEqual(tok.token_to_id("_start_"), tok.start_token_id)
        text = tok.detokenize([[tok.start_token_id] + tok("hi").numpy().tolist()])
        self.assertEqual(text.numpy()[0].decode(), "_start_ hi")

    def test_shapes_and_dtypes(self):
        tok = tokenizer()
        ragged = tok(tf.constant(["a b c", "d"]))
        self.assertIsInstance(ragged, tf.RaggedTensor)
        self.assertEqual(ragged.dtype, tf.int32)
        self.assertEqual(ragged.row_lengths().numpy().tolist(), [3, 1])
        scalar = tok("a b c")
        self.assertEqual(scalar.shape.rank, 1)
        self.assertEqual(scalar.numpy().tolist(), ragged[0].numpy().tolist())
        from_list = tok(["a b c", "d"])
        self.assertEqual(from_list.to_list(), ragged.to_list())

    def test_sequence_length_pads_and_truncates(self):
        tok = GPT1Tokenizer(sequence_length=4)
        dense = tok(tf.constant(["a b c d e f", "a", ""]))
        self.assertEqual(dense.shape, (3, 4))
        full = tokenizer()(tf.constant(["a b c d e f", "a"])).to_list()
        self.assertEqual(dense[0].numpy().tolist(), full[0][:4])
        self.assertEqual(dense[1].numpy().tolist(), full[1] + [tok.pad_token_id] * 3)
        self.assertEqual(dense[2].numpy().tolist(), [tok.pad_token_id] * 4)
        override = tokenizer()(tf.constant(["a b"]), sequence_length=6)
        self.assertEqual(override.shape, (1, 6))

    def test_tf_data_and_tf_function(self):
        tok = tokenizer()
        lines = corpora()["tinyshakespeare"][:300]
        expected = tok(tf.constant(lines)).to_list()
        ds = tf.data.Dataset.from_tensor_slices(lines).batch(64)
        ds = ds.map(tok, num_parallel_calls=tf.data.AUTOTUNE)
        got = [row for batch in ds for row in batch.to_list()]
        self.assertEqual(got, expected)
        # Unbatched elements (scalars) too.
        ds = tf.data.Dataset.from_tensor_slices(lines[:20]).map(tok)
        self.assertEqual([x.numpy().tolist() for x in ds], expected[:20])
        fn = tf.function(lambda x: tok(x).to_tensor())
        self.assertEqual(
            fn(tf.constant(lines[:5])).numpy().tolist(),
            tok(tf.constant(lines[:5])).to_tensor().numpy().tolist(),
        )

    def test_saved_model_export(self):
        tok = tokenizer()
        module = tf.Module()
        module.tok = tok
        module.serve = tf.function(
            lambda x: {"ids": tok(x, sequence_length=32)},
            input_signature=[tf.TensorSpec([None], tf.string)],
        )
        lines = ["Don't stop me now!", "Caf\u00e9 au lait\nnew line", ""]
        with tempfile.TemporaryDirectory() as tmp:
            tf.saved_model.save(module, tmp, signatures={"serving_default": module.serve})
            loaded = tf.saved_model.load(tmp)
            got = loaded.signatures["serving_default"](tf.constant(lines))["ids"]
        self.assertEqual(
            got.numpy().tolist(), tok(tf.constant(lines), sequence_length=32).numpy().tolist()
        )

    def test_config_round_trip_and_keras_file(self):
        tok = GPT1Tokenizer(normalization="bert", sequence_length=8, name="tok")
        restored = keras.layers.deserialize(keras.layers.serialize(tok))
        self.assertIsInstance(restored, GPT1Tokenizer)
        self.assertEqual(restored.get_config(), tok.get_config())
        lines = tf.constant(["Hello, World!", "Na\u00efve"])
        self.assertEqual(restored(lines).numpy().tolist(), tok(lines).numpy().tolist())
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "tok.keras")
            model = keras.Sequential([keras.Input(shape=(), dtype="string"), tok])
            model.save(path)
            loaded = keras.saving.load_model(path)
        self.assertEqual(loaded.layers[-1].get_config(), tok.get_config())

    def test_custom_vocabulary_from_dict_and_list(self):
        # A tiny vocabulary built here: merge order decides the split.
        vocab = {"<unk>": 0, "a": 1, "b": 2, "a</w>": 3, "b</w>": 4, "ab": 5, "ab</w>": 6}
        merges = ["a b</w>", "a b"]
        tok = GPT1Tokenizer(vocabulary=vocab, merges=merges)
        self.assertEqual(tok.vocabulary_size(), len(vocab) + 3)
        self.assertEqual(tok("ab abab c").numpy().tolist(), [6, 5, 6, 0])
        self.assertIsNone(tok.newline_token_id)


class BadInputTest(absltest.TestCase):
    def test_invalid_utf8_strict_raises(self):
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "not valid UTF-8"):
            tokenizer()(tf.constant([b"ok", b"caf\xe9"]))
        # Each string on its own: the two halves of "\xc3\xa9" in neighbouring strings
        # are two invalid strings, though the batch's bytes run together are valid.
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "not valid UTF-8"):
            tokenizer()(tf.constant([b"caf\xc3", b"\xa9t\xc3\xa9"]))

    def test_invalid_utf8_raises_in_tf_data(self):
        ds = tf.data.Dataset.from_tensor_slices([b"ok", b"\xff\xfe"]).batch(2)
        ds = ds.map(tokenizer())
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "not valid UTF-8"):
            list(ds)

    def test_invalid_utf8_replace(self):
        # Invalid bytes become U+FFFD, then follow each mode's rules for that character.
        for mode in ("openai", "bert"):
            tok = GPT1Tokenizer(normalization=mode, errors="replace")
            ids = tok(tf.constant([b"caf\xe9 ok"])).to_list()
            self.assertEqual(ids, tok(tf.constant(["caf\ufffd ok"])).to_list())
            split = tok(tf.constant([b"caf\xc3", b"\xa9 ok", b"fine"])).to_list()
            expected = tok(tf.constant(["caf\ufffd", "\ufffd ok", "fine"])).to_list()
            self.assertEqual(split, expected)
        self.assertEqual(ids, tok(tf.constant(["caf ok"])).to_list())  # bert drops it.

    def test_empty_and_whitespace_strings(self):
        for mode in ("openai", "bert"):
            ids = tokenizer(mode)(tf.constant(["", "   ", "\t\n ", "x"]))
            self.assertEqual(ids.row_lengths().numpy().tolist()[:3], [0, 0, 0])
            self.assertGreater(ids.row_lengths().numpy()[3], 0)
        self.assertEqual(tokenizer()("").shape, (0,))
        self.assertEqual(tokenizer()(tf.constant([], tf.string)).shape[0], 0)

    def test_wrong_types_and_shapes(self):
        tok = tokenizer()
        with self.assertRaisesRegex(TypeError, "string"):
            tok(tf.constant([1, 2]))
        with self.assertRaisesRegex(ValueError, "shape"):
            tok(tf.constant([["a"]]))
        with self.assertRaisesRegex(ValueError, "normalization"):
            GPT1Tokenizer(normalization="nfkc")
        with self.assertRaisesRegex(ValueError, "sequence_length"):
            GPT1Tokenizer(sequence_length=0)
        with self.assertRaisesRegex(ValueError, "<unk>"):
            GPT1Tokenizer(vocabulary={"a": 0}, merges=[])
        with self.assertRaisesRegex(ValueError, "merge"):
            GPT1Tokenizer(merges=["a b c"])
        with self.assertRaises(tf.errors.InvalidArgumentError):
            tok.detokenize([[tok.vocabulary_size()]])
        with self.assertRaises(TypeError):
            tok.detokenize(np.array([[0.5]]))

    def test_control_characters_and_lone_combining_marks(self):
        # Documented: control characters are dropped, never crash.
        for mode in ("openai", "bert"):
            ids = tokenizer(mode)(tf.constant(["a\x00b\x07c", "\u0301", "\ufeff"]))
            self.assertEqual(ids.shape[0], 3)
        text = tokenizer().detokenize(tokenizer()("a\x00b\x07c")).numpy().decode()
        self.assertEqual(text, "abc")


if __name__ == "__main__":
    absltest.main()
