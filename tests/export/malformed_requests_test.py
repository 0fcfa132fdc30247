"""Malformed requests to a loaded SavedModel: clear errors where due, never a crash.

Wrong dtypes, missing or unknown inputs, wrong ranks, invalid UTF-8 and 10,000
requests of random bytes or random Unicode go to a classifier exported twice:
with the tokenizer's default `errors="strict"` (invalid UTF-8 is an
`InvalidArgumentError` naming the problem) and with `utf8_errors="replace"` (every
request gets an answer). All in a fresh process without gpt1_keras.
"""

import os

import keras
from absl.testing import absltest

from gpt1_keras.export import export_saved_model
from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1Classifier
from gpt1_keras.preprocessing import GPT1ClassifierPreprocessor
from gpt1_keras.tokenizers import GPT1Tokenizer
from tests.export import export_test_lib as lib

NAMES = ["negative", "positive"]

_SERVE = r'''
import time

strict = tf.saved_model.load(payload["strict"]).signatures["serving_default"]
replace = tf.saved_model.load(payload["replace"]).signatures["serving_default"]
names = [n.encode() for n in payload["names"]]


def check_answer(out, batch):
    p = out["probabilities"].numpy()
    assert p.shape == (batch, 2), p.shape
    assert np.isfinite(p).all() and np.allclose(p.sum(-1), 1, atol=1e-5), p
    assert (out["label"].numpy() == p.argmax(-1)).all()
    assert [names[i] for i in out["label"].numpy()] == list(out["label_name"].numpy())


def error_of(fn, **inputs):
    try:
        fn(**inputs)
    except Exception as e:  # noqa: BLE001  (the test records the type and message)
        return [type(e).__name__, getattr(e, "message", None) or str(e)]
    return None


good = tf.constant(["a fine film"])
cases = {
    "int_text": {"text": tf.constant([1, 2])},
    "float_text": {"text": tf.constant([1.5])},
    "missing_text": {},
    "unknown_input": {"text": good, "texts": good},
    "matrix_text": {"text": tf.constant([["a"], ["b"]])},
    "scalar_text": {"text": tf.constant("a")},
    "invalid_utf8": {"text": tf.constant([b"ok", b"caf\xe9 \xff\xfe"])},
}
result["errors"] = {}
for name, inputs in cases.items():
    result["errors"][name] = error_of(strict, **inputs)
    check_answer(strict(text=good), 1)  # still serving after the error
replaced = replace(text=tf.constant([b"caf\xe9 \xff\xfe", b"\x00\x01\x02"]))
check_answer(replaced, 2)

rng = np.random.default_rng(0)


def is_utf8(data):
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def random_bytes():
    return rng.bytes(int(rng.integers(0, 48)))


def random_unicode():
    # Any code point but surrogates: controls, combining marks, CJK, emoji, private use.
    points = rng.integers(0, 0x10FFFF - 0x800, size=int(rng.integers(0, 24)))
    points = np.where(points >= 0xD800, points + 0x800, points)
    return "".join(chr(int(c)) for c in points).encode("utf-8")


counts = {"requests": 0, "answers": 0, "utf8_errors": 0}
other_errors = []
timings = {}
for phase, fn, make, n, must_answer in (("strict_bytes", strict, random_bytes, 7000, False),
                                        ("strict_unicode", strict, random_unicode, 1500, True),
                                        ("replace_bytes", replace, random_bytes, 1500, True)):
    start = time.perf_counter()
    for _ in range(n):
        batch = int(rng.integers(0, 5))
        texts = [make() for _ in range(batch)]
        counts["requests"] += 1
        valid = all(is_utf8(t) for t in texts)
        try:
            out = fn(text=tf.constant(texts, tf.string, shape=[batch]))
        except tf.errors.InvalidArgumentError as e:
            if "input is not valid UTF-8" in e.message and not must_answer and not valid:
                counts["utf8_errors"] += 1
            else:
                other_errors.append([repr(texts), e.message[:500]])
            continue
        # strict answers only valid UTF-8; replace answers everything.
        assert valid or fn is replace, texts
        check_answer(out, batch)
        counts["answers"] += 1
    timings[phase] = round(time.perf_counter() - start, 1)
result["timings"] = timings
result["counts"] = counts
result["other_errors"] = other_errors[:5]
'''


class MalformedRequestsTest(absltest.TestCase):
    def test_malformed_and_random_requests(self):
        keras.utils.set_random_seed(4)
        tokenizer = GPT1Tokenizer()
        model = GPT1Classifier(
            GPT1Backbone.from_architecture("gpt1_tiny"), num_classes=2,
            preprocessor=GPT1ClassifierPreprocessor(tokenizer, "classification", 32))
        root = self.create_tempdir().full_path
        strict = export_saved_model(model, os.path.join(root, "strict"), label_names=NAMES)
        replace = export_saved_model(model, os.path.join(root, "replace"),
                                     label_names=NAMES, utf8_errors="replace")
        served = lib.run_fresh(_SERVE, {"strict": strict, "replace": replace,
                                        "names": NAMES}, self.create_tempdir().full_path)
        self.assertEqual(served["gpt1_keras_modules"], [])

        errors = served["errors"]
        expected = {
            "int_text": ("InvalidArgumentError",
                         "input #0(zero-based) was expected to be a string tensor but is a "
                         "int32 tensor"),
            "float_text": ("InvalidArgumentError", "was expected to be a string tensor but "
                           "is a float tensor"),
            "missing_text": ("TypeError", "missing a required argument: 'text'"),
            "unknown_input": ("TypeError", "got an unexpected keyword argument 'texts'"),
            "matrix_text": ("InvalidArgumentError",
                            "Shape of tensor text [2,1] is not compatible with expected "
                            "shape [?]"),
            "scalar_text": ("InvalidArgumentError",
                            "Shape of tensor text [] is not compatible with expected shape [?]"),
            "invalid_utf8": ("InvalidArgumentError",
                             "GPT1Tokenizer: input is not valid UTF-8 (pass errors=",
                             "Index of the first invalid string in the batch:] [1]"),
        }
        for name, (kind, *messages) in expected.items():
            with self.subTest(name):
                self.assertIsNotNone(errors[name], f"{name} gave an answer")
                self.assertEqual(errors[name][0], kind)
                for message in messages:
                    self.assertIn(message, errors[name][1])

        counts = served["counts"]
        print("seconds per phase:", served["timings"], counts)
        self.assertEqual(served["other_errors"], [])
        self.assertEqual(counts["requests"], 10_000)
        self.assertEqual(counts["answers"] + counts["utf8_errors"], 10_000)
        # Random bytes are rarely valid UTF-8 (empty batches and short strings are).
        self.assertGreater(counts["utf8_errors"], 3000)
        self.assertGreater(counts["answers"], 4000)


if __name__ == "__main__":
    absltest.main()
