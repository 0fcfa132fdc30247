"""GPT-1's zero-shot heuristics (paper section 5, Figure 2 right), for a `GPT1CausalLM`.

Every heuristic scores token sequences with `GPT1CausalLM.score` (any Keras
backend) and compares NumPy numbers:

- `cola_scores` + `fit_threshold`: a sentence's average token log-probability;
  acceptable when above a threshold chosen on training data (best Matthews
  correlation).
- `sst2_predict`: the review followed by `very`, then the LM's log-probability
  of `positive` vs `negative` as the next word.
- `multiple_choice_predict` (RACE, Story Cloze): the average log-probability of
  each answer's tokens after the document (and question); the highest wins.
- `winograd_predict`: each candidate substituted for the blank; the average
  log-probability of the rest of the sentence after it; the highest wins.

Texts are tokenized by `tokenizer(list_of_strings)` (e.g. `GPT1Tokenizer`,
which returns a `tf.RaggedTensor`; `.to_list()` is used when present). Every
sequence starts with the `_start_` token. Sequences longer than the model's
context keep their last `max_sequence_length` tokens (the scored part is at
the end).
"""

import dataclasses

import keras
import numpy as np

from gpt1_keras.tasks import metrics


def _tokenize(tokenizer, texts):
    ids = tokenizer(list(texts))
    ids = ids.to_list() if hasattr(ids, "to_list") else ids
    return [list(map(int, row)) for row in ids]


def token_log_probs(lm, sequences, batch_size=32):
    """Per-token log-probabilities of each id list (entry t: `log p(x_t | x_<t)`).

    Args:
        lm: a `GPT1CausalLM`.
        sequences: lists of token ids (each non-empty).
        batch_size: sequences per forward pass.

    Returns:
        A list of float64 arrays, one per sequence (entry 0 is 0, no context),
        for the last `max_sequence_length` tokens of each sequence.
    """
    context = lm.backbone.max_sequence_length
    sequences = [list(s)[-context:] for s in sequences]
    out = []
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start:start + batch_size]
        length = max(len(s) for s in batch)
        ids = np.zeros((len(batch), length), "int32")
        mask = np.zeros((len(batch), length), "int32")
        for i, s in enumerate(batch):
            ids[i, :len(s)] = s
            mask[i, :len(s)] = 1
        scores = keras.ops.convert_to_numpy(lm.score(ids, mask)).astype(np.float64)
        out.extend(scores[i, :len(s)] for i, s in enumerate(batch))
    return out


def span_log_probs(lm, prefixes, spans, batch_size=32, reduce="mean"):
    """The log-probability of each `span` (ids) after its `prefix` (ids).

    Args:
        reduce: `"mean"` (average per span token) or `"sum"`.

    Returns:
        float64 `[N]`. An empty span scores `-inf`.
    """
    scores = token_log_probs(
        lm, [p + s for p, s in zip(prefixes, spans)], batch_size)
    out = []
    for row, span in zip(scores, spans):
        n = min(len(span), len(row) - 1)
        if n <= 0:
            out.append(-np.inf)
            continue
        part = row[-n:]
        out.append(part.mean() if reduce == "mean" else part.sum())
    return np.asarray(out, np.float64)


def cola_scores(lm, tokenizer, sentences, batch_size=32):
    """The average token log-probability of each sentence after `_start_`."""
    ids = _tokenize(tokenizer, sentences)
    start = [[tokenizer.start_token_id]] * len(ids)
    return span_log_probs(lm, start, ids, batch_size)


def fit_threshold(scores, labels):
    """The threshold on `scores` with the best Matthews correlation on `labels`.

    Candidates are midpoints between consecutive distinct scores (and below
    the smallest); `predict = scores > threshold`.
    """
    scores = np.asarray(scores, np.float64)
    values = np.unique(scores[np.isfinite(scores)])
    if values.size == 0:
        raise ValueError("No finite scores to choose a threshold from.")
    candidates = np.concatenate([[values[0] - 1.0], (values[1:] + values[:-1]) / 2])
    best = max(candidates, key=lambda t: metrics.matthews_corrcoef(
        labels, (scores > t).astype(int)))
    return float(best)


def sst2_predict(lm, tokenizer, reviews, batch_size=32, cue="very",
                 words=("negative", "positive")):
    """1 (positive) where `log p(positive | review very)` beats `negative`.

    Returns:
        `(predictions int [N], log_probs float [N, 2])` (columns in `words` order).
    """
    prefixes = [[tokenizer.start_token_id] + r
                for r in _tokenize(tokenizer, [f"{t} {cue}" for t in reviews])]
    columns = []
    for word in _tokenize(tokenizer, words):
        columns.append(span_log_probs(lm, prefixes, [word] * len(prefixes),
                                      batch_size, reduce="sum"))
    log_probs = np.stack(columns, axis=1)
    return log_probs.argmax(axis=1), log_probs


def multiple_choice_predict(lm, tokenizer, contexts, choices, questions=None,
                            batch_size=32):
    """The index of the answer with the highest average log-probability.

    Args:
        contexts: the documents `[N]`.
        choices: `[N][K]` answers.
        questions: optional `[N]`, written after the document.

    Returns:
        `(predictions int [N], scores float [N, K])`.
    """
    texts = contexts if questions is None else [f"{c} {q}" for c, q in zip(contexts, questions)]
    prefixes = [[tokenizer.start_token_id] + p for p in _tokenize(tokenizer, texts)]
    k = len(choices[0])
    flat_choices = [a for row in choices for a in row]
    if len(flat_choices) != k * len(choices):
        raise ValueError("Every example needs the same number of choices.")
    answers = _tokenize(tokenizer, flat_choices)
    scores = span_log_probs(lm, [p for p in prefixes for _ in range(k)], answers, batch_size)
    scores = scores.reshape(len(choices), k)
    return scores.argmax(axis=1), scores


def winograd_predict(lm, tokenizer, sentences, candidates, blank="_", batch_size=32):
    """Substitutes each candidate for `blank`; scores the rest of the sentence.

    Args:
        sentences: `[N]` sentences with exactly one `blank` (WinoGrande style:
            `"The trophy didn't fit in the suitcase because _ was too big."`).
        candidates: `[N][K]` substitutes.

    Returns:
        `(predictions int [N], scores float [N, K])`.

    Raises:
        ValueError: a sentence without exactly one blank (naming it).
    """
    prefixes, rests = [], []
    for sentence, options in zip(sentences, candidates):
        if sentence.count(blank) != 1:
            raise ValueError(
                f"Each sentence needs exactly one {blank!r}. Received: {sentence!r}")
        before, after = sentence.split(blank)
        prefixes.extend(f"{before}{option}".strip() for option in options)
        rests.extend([after.strip()] * len(options))
    k = len(candidates[0])
    prefix_ids = [[tokenizer.start_token_id] + p for p in _tokenize(tokenizer, prefixes)]
    scores = span_log_probs(lm, prefix_ids, _tokenize(tokenizer, rests), batch_size)
    scores = scores.reshape(len(sentences), k)
    return scores.argmax(axis=1), scores


HEURISTICS = ("cola", "sst2", "race", "story_cloze", "winograd")


@dataclasses.dataclass(frozen=True)
class ZeroShotData:
    """A heuristic's examples, read once by `read_zero_shot`, scored by `score_zero_shot`.

    Attributes:
        heuristic: one of `HEURISTICS`.
        split: the split `examples` were read from.
        examples: the labelled `Examples` scored.
        metric_names: the metrics computed (`gpt1_keras.tasks.metrics`); the
            first is the heuristic's main one (`main_metric`).
        train: CoLA only: the training examples its threshold is fit on.
    """

    heuristic: str
    split: str
    examples: object
    metric_names: tuple
    train: object = None

    @property
    def main_metric(self):
        """Matthews correlation for `cola`, accuracy for the others."""
        return self.metric_names[0]


def read_zero_shot(heuristic, data_dir, split="dev", max_examples=0):
    """Reads a heuristic's task files (no model): the reading half of `evaluate_zero_shot`.

    Args: as `evaluate_zero_shot`.

    Returns:
        A `ZeroShotData`, to be scored any number of times by `score_zero_shot`.

    Raises:
        ValueError: an unknown heuristic (or a split the task does not have).
        FileNotFoundError: a missing file (naming the task and the files looked for).
        DataError: a malformed file (naming it and the line).
    """
    from gpt1_keras.tasks import get_task
    from gpt1_keras.tasks.base import require_files
    from gpt1_keras.tasks.jsonl import read_winograd_jsonl

    if heuristic not in HEURISTICS:
        raise ValueError(f"`heuristic` must be one of {HEURISTICS}. Received: {heuristic!r}")

    def cut(examples):
        return examples.take(max_examples) if max_examples else examples

    if heuristic == "winograd":
        (path,) = require_files("winograd", data_dir, [f"{split}.jsonl"])
        return ZeroShotData(heuristic, split, cut(read_winograd_jsonl(path)), ("accuracy",))
    task = get_task(heuristic)
    examples = cut(task.read(data_dir, split))
    train = cut(task.read(data_dir, "train")) if heuristic == "cola" else None
    return ZeroShotData(heuristic, split, examples, tuple(task.metrics), train)


def score_zero_shot(lm, tokenizer, data, batch_size=32):
    """Scores `lm` on a `ZeroShotData`: the scoring half of `evaluate_zero_shot`.

    Returns:
        What `evaluate_zero_shot` returns.
    """
    heuristic, examples = data.heuristic, data.examples
    result = {"heuristic": heuristic, "split": data.split}
    if heuristic == "winograd":
        predictions, _ = winograd_predict(lm, tokenizer, examples.text_a, examples.text_b,
                                          batch_size=batch_size)
    elif heuristic == "cola":
        threshold = fit_threshold(cola_scores(lm, tokenizer, data.train.text_a, batch_size),
                                  data.train.labels)
        scores = cola_scores(lm, tokenizer, examples.text_a, batch_size)
        predictions = (scores > threshold).astype(int)
        result["threshold"] = threshold
    elif heuristic == "sst2":
        predictions, _ = sst2_predict(lm, tokenizer, examples.text_a, batch_size)
    else:
        predictions, _ = multiple_choice_predict(
            lm, tokenizer, examples.text_a, examples.text_b, examples.question, batch_size)
    result.update(metrics.compute_metrics(data.metric_names, examples.labels, predictions))
    result["num_examples"] = len(examples)
    result["predictions"] = [int(p) for p in predictions]
    result["ids"] = list(examples.ids)
    return result


def evaluate_zero_shot(lm, tokenizer, heuristic, data_dir, split="dev",
                       max_examples=0, batch_size=32):
    """Runs one zero-shot heuristic on a task's files; returns its metrics.

    `read_zero_shot` then `score_zero_shot` (to score many models or checkpoints on
    examples read once, call those; `ZeroShotProbes` does, during pretraining).

    Args:
        lm: a `GPT1CausalLM`.
        tokenizer: e.g. `GPT1Tokenizer()`.
        heuristic: one of `HEURISTICS`. `cola` also reads the training split
            to choose its threshold; `winograd` reads `<data_dir>/<split>.jsonl`
            (WinoGrande layout, see `tasks.jsonl.read_winograd_jsonl`).
        data_dir: the task's files (as for fine-tuning).
        split: the labelled split to evaluate.
        max_examples: use only the first N examples of each split (0: all).
        batch_size: sequences per forward pass.

    Returns:
        `{"heuristic", "split", "num_examples", <metrics>...}` (CoLA adds
        `threshold`), plus `predictions` (list of ints) for writing out.
    """
    data = read_zero_shot(heuristic, data_dir, split, max_examples)
    return score_zero_shot(lm, tokenizer, data, batch_size)
