"""Throughput of the language-model input pipeline, in tokens per second.

Measures `make_lm_dataset` from raw text (tokenizing with `GPT1Tokenizer`
in-graph) and `make_lm_dataset_from_shards` from pre-tokenized TFRecord shards,
on the embedded tiny Shakespeare corpus (repeated, shuffled, batched as in
pretraining). Each trial pulls `--steps` batches after `--warmup` batches; the
median over `--trials` is reported. A third row uses a whitespace tokenizer to
show the cost of the pipeline itself, without BPE.

Usage:
    taskset -c 0,1 python bench/data/lm_pipeline_bench.py
    ./bazelw run //bench/data:lm_pipeline_bench -- --trials 5
"""

import argparse
import os
import statistics
import tempfile
import time

import tensorflow as tf

from gpt1_keras.data import lm_dataset
from gpt1_keras.tokenizers.gpt1_tokenizer import GPT1Tokenizer


class WhitespaceTokenizer:
    """Splits on whitespace and hashes words: a near-free tokenizer."""

    pad_token_id = 0
    newline_token_id = 1

    def __call__(self, texts):
        words = tf.strings.split(texts)
        return tf.cast(
            tf.strings.to_hash_bucket_fast(words, 40_000) + 2, tf.int32)


def tokens_per_second(ds, steps, warmup, trials):
    """Median tokens/s over `trials` runs of `steps` batches each."""
    it = iter(ds)
    for _ in range(warmup):
        x, _, _ = next(it)
    per_batch = int(tf.size(x["token_ids"]))
    rates = []
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(steps):
            next(it)
        rates.append(steps * per_batch / (time.perf_counter() - start))
    return statistics.median(rates), rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=lm_dataset.default_corpus_path())
    parser.add_argument("--sequence_length", type=int, default=512)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--shard_steps", type=int, default=200)
    parser.add_argument("--lines_per_chunk", type=int, default=512)
    parser.add_argument("--errors", default="strict")
    parser.add_argument("--only", choices=["text", "fast", "shards"])
    args = parser.parse_args()
    common = dict(sequence_length=args.sequence_length,
                  batch_size=args.batch_size, seed=0, repeat=True)
    print(f"TF {tf.__version__}, {os.cpu_count()} CPUs visible, "
          f"affinity {len(os.sched_getaffinity(0))} cores; corpus "
          f"{args.corpus} ({os.path.getsize(args.corpus)} bytes); "
          f"T={args.sequence_length} B={args.batch_size}")
    results = {}
    tokenizer = GPT1Tokenizer()

    if args.only in (None, "text"):
        ds = lm_dataset.make_lm_dataset(
            args.corpus, tokenizer, lines_per_chunk=args.lines_per_chunk,
            errors=args.errors, **common)
        results["raw text, GPT1Tokenizer"] = tokens_per_second(
            ds, args.steps, args.warmup, args.trials)
    if args.only in (None, "fast"):
        ds = lm_dataset.make_lm_dataset(
            args.corpus, WhitespaceTokenizer(),
            lines_per_chunk=args.lines_per_chunk, **common)
        results["raw text, whitespace tokenizer"] = tokens_per_second(
            ds, args.shard_steps, args.warmup, args.trials)
    if args.only in (None, "shards"):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            lm_dataset.write_token_shards(
                args.corpus, tokenizer, out, num_shards=4,
                tokens_per_record=16_384)
            print(f"write_token_shards: {time.perf_counter() - start:.1f} s")
            ds = lm_dataset.make_lm_dataset_from_shards(
                os.path.join(out, "*.tfrecord"), **common)
            results["TFRecord shards"] = tokens_per_second(
                ds, args.shard_steps, args.warmup, args.trials)

    for name, (median, rates) in results.items():
        trials = ", ".join(f"{r / 1e3:.0f}k" for r in rates)
        print(f"{name:32s} median {median / 1e3:10.1f}k tokens/s  "
              f"(trials: {trials})")


if __name__ == "__main__":
    main()
