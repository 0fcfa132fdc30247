"""Pretraining corpora on disk: UTF-8 checks, train/validation splits, token counts.

What the pretraining recipe (`gpt1_keras.training.pretraining`) does with the text
files before any training:

- `check_utf8(path)` counts the lines and bytes that are not valid UTF-8. The
  recipe logs one warning per such file; those bytes are **replaced by U+FFFD**
  (Python's `errors="replace"` when a split is written, `tf.strings.unicode_transcode`
  with `errors="replace"` in the `tf.data` pipeline otherwise), so the statistics,
  the split files and the training stream see the same text.
- `split_lines(files, fraction, data_dir)`: the last `fraction` of all lines held
  out (the `small` and `paper` recipes).
- `split_books(files, validation_books, seed, data_dir)`: whole books (documents
  separated by runs of blank lines) held out, chosen with a seeded generator (the
  `books` recipe).
- `token_counts(files, tokenizer, vocabulary_size)`: the per-id token counts of
  the exact stream `make_lm_dataset` trains on (epochs -> steps, the unigram
  baseline, the validation size).

Split files are written atomically to `data_dir/train.txt` and `data_dir/valid.txt`.
"""

import codecs
import dataclasses
import os
import re

import numpy as np
from absl import logging

from gpt1_keras.errors import ConfigError
from gpt1_keras.errors import UserError

TRAIN_NAME = "train.txt"
VALID_NAME = "valid.txt"


@dataclasses.dataclass(frozen=True)
class Utf8Report:
    """Invalid UTF-8 in one file.

    Attributes:
        path: the file.
        lines: its number of lines.
        bad_lines: lines holding at least one invalid byte sequence.
        bad_bytes: bytes in invalid sequences (each sequence becomes one U+FFFD).
        first_bad_line: 1-based number of the first bad line, or None.
    """

    path: str
    lines: int
    bad_lines: int
    bad_bytes: int
    first_bad_line: int | None

    @property
    def valid(self):
        return self.bad_lines == 0

    def message(self):
        return (
            f"{self.path}: {self.bad_lines} of {self.lines} lines ({self.bad_bytes} bytes, "
            f"first at line {self.first_bad_line}) are not valid UTF-8; each invalid byte "
            "sequence is replaced by U+FFFD."
        )


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise UserError(f"Cannot read corpus file {path}: {e.strerror}.") from None


def check_utf8(path, data=None):
    """Counts the invalid UTF-8 in `path` (or its already read bytes `data`)."""
    data = _read_bytes(path) if data is None else data
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    try:
        data.decode("utf-8")
        return Utf8Report(path, lines, 0, 0, None)
    except UnicodeDecodeError:
        pass
    bad_lines = bad_bytes = 0
    first = None
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            line.decode("utf-8")
            continue
        except UnicodeDecodeError:
            pass
        counted = []

        def count(e, counted=counted):
            counted.append(e.end - e.start)
            return "\ufffd", e.end

        codecs.register_error("gpt1_keras_count", count)
        line.decode("utf-8", errors="gpt1_keras_count")
        bad_lines += 1
        bad_bytes += sum(counted)
        first = first or number
    return Utf8Report(path, lines, bad_lines, bad_bytes, first)


def warn_invalid_utf8(files):
    """Logs one warning per file with invalid UTF-8; returns the `Utf8Report`s."""
    reports = [check_utf8(path) for path in files]
    for report in reports:
        if not report.valid:
            logging.warning("%s", report.message())
    return reports


def _read_text(path):
    """The file's text, invalid UTF-8 replaced by U+FFFD (warned about once)."""
    data = _read_bytes(path)
    report = check_utf8(path, data)
    if not report.valid:
        logging.warning("%s", report.message())
    return data.decode("utf-8", errors="replace")


def text_lines(files):
    """The non-empty lines of `files`, in order (invalid UTF-8 replaced, warned once):
    what `train_bpe` learns a vocabulary from."""
    for path in files:
        for line in _read_text(path).split("\n"):
            if line.strip():
                yield line


def atomic_write_text(path, text):
    """Writes `text` to `path` through a temp file, fsync and rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):  # Not renamed: a failed write leaves no temp file.
            os.remove(tmp)


def _write_split(data_dir, train_text, valid_text):
    os.makedirs(data_dir, exist_ok=True)
    train_path = os.path.join(data_dir, TRAIN_NAME)
    valid_path = os.path.join(data_dir, VALID_NAME)
    atomic_write_text(train_path, train_text)
    atomic_write_text(valid_path, valid_text)
    return (train_path,), (valid_path,)


def split_lines(files, fraction, data_dir):
    """Holds out the last `fraction` of the lines of `files` (concatenated in order).

    Writes the first `1 - fraction` of the lines to `data_dir/train.txt` and the
    rest to `data_dir/valid.txt`; returns `((train_path,), (valid_path,))`.

    Raises:
        ConfigError: naming `validation_fraction`, when a side would be empty.
    """
    lines = []
    for path in files:
        lines.extend(_read_text(path).splitlines())
    cut = int(len(lines) * (1 - fraction))
    if cut <= 0 or cut >= len(lines):
        raise ConfigError(
            f"validation_fraction={fraction} leaves an empty split of the {len(lines)} lines "
            "of train_files."
        )
    return _write_split(data_dir, "\n".join(lines[:cut]) + "\n", "\n".join(lines[cut:]) + "\n")


def split_books_text(text, separator_blank_lines=2):
    """Cuts `text` into books: pieces separated by runs of at least
    `separator_blank_lines` blank (whitespace-only) lines; empty pieces dropped, the
    newlines around each piece removed."""
    separator = re.compile(r"\n(?:[ \t\r\f\v]*\n){%d,}" % separator_blank_lines)
    return [book.strip("\n") for book in separator.split(text) if book.strip()]


def split_books(files, validation_books, seed, data_dir, separator_blank_lines=2):
    """Holds out `validation_books` whole books, chosen with `seed`.

    Each file is cut into books with `split_books_text` (a file boundary also ends a
    book). `numpy.random.default_rng(seed)` picks the held-out books; both splits keep
    the books in corpus order, joined by `separator_blank_lines` blank lines.

    Returns:
        `((train_path,), (valid_path,), info)` with `info` a dict: `books`,
        `validation_books` (the held-out indices, in corpus order).

    Raises:
        ConfigError: naming `validation_books`, when no book would be left for
            training or for validation.
    """
    books = []
    for path in files:
        books.extend(split_books_text(_read_text(path), separator_blank_lines))
    if validation_books < 1 or validation_books >= len(books):
        raise ConfigError(
            f"validation_books={validation_books} must be in [1, {len(books) - 1}]: "
            f"train_files hold {len(books)} books (pieces separated by "
            f"{separator_blank_lines} or more blank lines), and training and validation "
            "each need at least one."
        )
    held_out = np.sort(np.random.default_rng(seed).choice(
        len(books), size=validation_books, replace=False))
    held = set(held_out.tolist())
    joiner = "\n" * (separator_blank_lines + 1)
    train = joiner.join(b for i, b in enumerate(books) if i not in held) + "\n"
    valid = joiner.join(books[i] for i in held_out) + "\n"
    train_files, valid_files = _write_split(data_dir, train, valid)
    return train_files, valid_files, {"books": len(books),
                                      "validation_books": held_out.tolist()}


def token_counts(files, tokenizer, vocabulary_size, max_tokens=None):
    """Per-id counts of the token stream `make_lm_dataset` builds from `files`.

    Invalid UTF-8 is replaced by U+FFFD, as in training. With `max_tokens`, counting
    stops after the first chunk that reaches it (an estimate for huge corpora).
    """
    from gpt1_keras.data.lm_dataset import make_token_stream

    counts = np.zeros([vocabulary_size], np.int64)
    stream = make_token_stream(list(files), tokenizer, errors="replace")
    for chunk in stream.as_numpy_iterator():
        counts += np.bincount(chunk, minlength=vocabulary_size)
        if max_tokens and counts.sum() >= max_tokens:
            break
    return counts
