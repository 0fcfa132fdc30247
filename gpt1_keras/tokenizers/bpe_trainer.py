"""Training a new GPT-1-style BPE vocabulary from a corpus."""

import collections
import json
import os
import shutil

import tensorflow as tf

from gpt1_keras.errors import ConfigError
from gpt1_keras.tokenizers.gpt1_tokenizer import END_OF_WORD
from gpt1_keras.tokenizers.gpt1_tokenizer import MERGES_FILE
from gpt1_keras.tokenizers.gpt1_tokenizer import NEWLINE_TOKEN
from gpt1_keras.tokenizers.gpt1_tokenizer import UNK_TOKEN
from gpt1_keras.tokenizers.gpt1_tokenizer import VOCABULARY_FILE
from gpt1_keras.tokenizers.gpt1_tokenizer import GPT1Tokenizer


def train_bpe(
    texts,
    vocabulary_size,
    output_dir=None,
    normalization="openai",
    min_frequency=2,
    batch_size=1024,
    source="texts",
):
    """Learns BPE merges (with `</w>` word ends) and a vocabulary from raw text.

    The corpus is split into words by `GPT1Tokenizer(normalization=...).pre_tokenize`, so
    the vocabulary fits exactly what the tokenizer feeds BPE at run time; Hugging Face's
    `tokenizers` (Rust) then learns the merges from the word counts. The result loads into
    `GPT1Tokenizer(vocabulary=..., merges=..., normalization=...)`.

    The vocabulary has `<unk>` at id 0, every character seen (plain and with `</w>`), one
    token per merge, and `"\\n</w>"` (the newline token of `"openai"` mode) last, like GPT-1's.

    Args:
        texts: an iterable of Python strings, or a `tf.data.Dataset` of scalar strings.
        vocabulary_size: the size of the vocabulary to learn, special tokens of the
            tokenizer (`_start_`, ...) not included. Must exceed the alphabet size.
        output_dir: if given, writes a tokenizer preset there (`tokenizer.json`, and
            the vocabulary and merges in `assets/tokenizer/`, Hugging Face's
            `vocab.json` and `merges.txt`): `GPT1Tokenizer.from_preset(output_dir)`
            loads it, and `PretrainConfig(tokenizer=output_dir)` pretrains with it.
        normalization: `"openai"` or `"bert"`: the tokenizer mode the vocabulary is for.
        min_frequency: pairs seen fewer times are not merged.
        batch_size: strings pre-tokenised per step.
        source: how error messages name `texts` (e.g. the corpus files).

    Returns:
        `(vocabulary, merges)`: a dict token -> id and a list of `"a b"` merges; or, with
        `output_dir`, the paths of the two files.

    Raises:
        ConfigError: the texts hold too few distinct words and pairs (seen at least
            `min_frequency` times) for `vocabulary_size` tokens.

    Example:

    ```python
    vocab, merges = train_bpe(open("corpus.txt").read().split("\\n"), 8000)
    tokenizer = GPT1Tokenizer(vocabulary=vocab, merges=merges)
    ```
    """
    from tokenizers import Tokenizer
    from tokenizers import models
    from tokenizers import pre_tokenizers
    from tokenizers import trainers

    if not isinstance(vocabulary_size, int) or vocabulary_size < 2:
        raise ValueError(
            "`vocabulary_size` must be an int >= 2. "
            f"Received: vocabulary_size={vocabulary_size!r}"
        )
    splitter = GPT1Tokenizer(
        vocabulary={UNK_TOKEN: 0}, merges=[], normalization=normalization
    )
    counts = collections.Counter()
    if isinstance(texts, tf.data.Dataset):
        batches = texts.batch(batch_size)
    else:
        batches = _batches(texts, batch_size)
    for batch in batches:
        words = splitter.pre_tokenize(tf.convert_to_tensor(batch, tf.string))
        counts.update(words.flat_values.numpy().tolist())
    newline = NEWLINE_TOKEN[: -len(END_OF_WORD)].encode("utf-8")
    has_newline = counts.pop(newline, 0) > 0 or normalization == "openai"
    if not counts:
        raise ValueError("`texts` contains no words to learn from.")

    # Learn from the word counts: each word is fed as text, repeated `count` times.
    bpe = Tokenizer(models.BPE(unk_token=UNK_TOKEN, end_of_word_suffix=END_OF_WORD))
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=vocabulary_size - int(has_newline),
        min_frequency=min_frequency,
        special_tokens=[UNK_TOKEN],
        end_of_word_suffix=END_OF_WORD,
        show_progress=False,
    )

    def words():
        for word, count in counts.items():
            yield (word.decode("utf-8") + " ") * count

    bpe.train_from_iterator(words(), trainer=trainer, length=len(counts))
    state = json.loads(bpe.to_str())["model"]
    vocabulary = dict(state["vocab"])
    merges = [m if isinstance(m, str) else " ".join(m) for m in state["merges"]]
    if has_newline and NEWLINE_TOKEN not in vocabulary:
        vocabulary[NEWLINE_TOKEN] = len(vocabulary)
    if len(vocabulary) < vocabulary_size:
        raise ConfigError(
            f"{source} is too small for a vocabulary of {vocabulary_size} tokens: BPE "
            f"stopped at {len(vocabulary)} ({len(counts)} distinct words, pairs seen at "
            f"least min_frequency={min_frequency} times); use more text or a smaller "
            "vocabulary size.")
    if output_dir is None:
        return vocabulary, merges
    tokenizer = GPT1Tokenizer(vocabulary=vocabulary, merges=merges,
                              normalization=normalization)
    # Written beside the target, then renamed: a directory with tokenizer.json is whole.
    partial = f"{os.path.abspath(output_dir)}.partial-{os.getpid()}"
    if os.path.exists(partial):
        shutil.rmtree(partial)
    tokenizer.save_to_preset(partial)
    if os.path.exists(output_dir):
        shutil.rmtree(output_dir)
    os.replace(partial, output_dir)
    assets = os.path.join(output_dir, "assets", "tokenizer")
    return os.path.join(assets, VOCABULARY_FILE), os.path.join(assets, MERGES_FILE)


def _batches(texts, batch_size):
    batch = []
    for text in texts:
        batch.append(text)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
