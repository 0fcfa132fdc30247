"""Export of a language model (pretrain's model dir): `score`, `score_continuation` and
`generate`, served from a fresh process without gpt1_keras and compared with the
Python zero-shot scoring and greedy decoding."""

import json
import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import absltest

from gpt1_keras.evaluation import zero_shot
from gpt1_keras.export import CausalLMServingModule
from gpt1_keras.export import export_saved_model
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.tokenizers import GPT1Tokenizer
from tests.export import export_test_lib as lib

TEXTS = ["The king is dead, long live the king!", "", "a", "word " * 120,
         "Don't stop believing."]
CONTEXTS = ["Once upon a time", "", "long " * 100, "The answer is"]
CONTINUATIONS = ["there was a princess.", "Hello", "end", ""]
PROMPTS = ["ROMEO:", "First Citizen: we are accounted poor", "verse " * 70, ""]
NEW_TOKENS = [6, 3, 4, 5]

_SERVE = r'''
model = tf.saved_model.load(payload["path"])
result["signatures"] = sorted(model.signatures)
for name in ("score", "serving_default"):
    result[name] = call(model.signatures[name], payload["score"])
result["score_continuation"] = call(model.signatures["score_continuation"],
                                    payload["score_continuation"])
generate = model.signatures["generate"]
result["greedy"] = call(generate, payload["greedy"])
result["sampled"] = call(generate, payload["sampled"])
result["sampled_again"] = call(generate, payload["sampled"])
result["sampled_alone"] = call(generate, payload["sampled_alone"])
result["other_seed"] = call(generate, payload["other_seed"])
result["capped"] = call(generate, payload["capped"])
result["empty_batch"] = call(generate, payload["empty_batch"])
try:
    call(generate, payload["bad_settings"])
except tf.errors.InvalidArgumentError as e:
    result["bad_settings_error"] = e.message

# Random bytes and random Unicode: an answer, or the tokenizer's UTF-8 error.
rng = np.random.default_rng(1)
counts = {"answers": 0, "utf8_errors": 0, "other_errors": []}
for i in range(400):
    batch = int(rng.integers(0, 4))
    if i % 2:
        texts = [rng.bytes(int(rng.integers(0, 30))) for _ in range(batch)]
    else:
        texts = ["".join(chr(int(c)) for c in rng.integers(0x20, 0xD000, size=20)).encode()
                 for _ in range(batch)]
    texts = tf.constant(texts, tf.string, shape=[batch])
    try:
        if i % 4 < 2:
            out = model.signatures["score"](text=texts)
            assert np.isfinite(out["mean_log_prob"].numpy()).all()
        else:
            out = generate(prompt=texts, max_new_tokens=[2], temperature=[1.0], top_k=[0],
                           top_p=[1.0], seed=tf.constant([i], tf.int64))
            assert out["token_ids"].shape == (batch, 2 if batch else 0)
        counts["answers"] += 1
    except tf.errors.InvalidArgumentError as e:
        if "input is not valid UTF-8" in e.message:
            counts["utf8_errors"] += 1
        else:
            counts["other_errors"].append(e.message[:300])
result["random"] = counts
'''


def _size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
               for f in files)


def _settings(n, temperature, top_k, top_p, seed, max_new_tokens):
    return {
        "max_new_tokens": lib.encode(max_new_tokens, "int32"),
        "temperature": lib.encode([temperature] * n, "float32"),
        "top_k": lib.encode([top_k] * n, "int32"),
        "top_p": lib.encode([top_p] * n, "float32"),
        "seed": lib.encode(seed, "int64"),
    }


class CausalLMExportTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        keras.utils.set_random_seed(7)
        cls.lm = GPT1CausalLM.from_architecture("gpt1_tiny")  # 64 positions
        cls.tokenizer = GPT1Tokenizer()
        model_dir = lib.save_model_dir(cls.lm, os.path.join(
            absltest.get_default_test_tmpdir(), "pretrain"))
        cls.path = export_saved_model(
            model_dir, os.path.join(absltest.get_default_test_tmpdir(), "lm"),
            max_new_tokens_limit=8)
        payload = {
            "path": cls.path,
            "score": {"text": lib.encode(TEXTS)},
            "score_continuation": {"context": lib.encode(CONTEXTS),
                                   "text": lib.encode(CONTINUATIONS)},
            "greedy": {"prompt": lib.encode(PROMPTS),
                       **_settings(4, 0.0, 0, 1.0, [0], NEW_TOKENS)},
            "sampled": {"prompt": lib.encode(PROMPTS[:2]),
                        **_settings(2, 0.9, 50, 0.95, [1, 2], [8])},
            "sampled_alone": {"prompt": lib.encode(PROMPTS[1:2]),
                              **_settings(1, 0.9, 50, 0.95, [2], [8])},
            "other_seed": {"prompt": lib.encode(PROMPTS[:2]),
                           **_settings(2, 0.9, 50, 0.95, [3, 4], [8])},
            "capped": {"prompt": lib.encode(["a", "b"]),
                       **_settings(2, 0.0, 0, 1.0, [0], [1000, -5])},
            "empty_batch": {"prompt": lib.encode([]), **_settings(0, 0.0, 0, 1.0, [], [])},
            "bad_settings": {"prompt": lib.encode(["a", "b", "c"]),
                             **_settings(3, 0.0, 0, 1.0, [0, 1], [2])},
        }
        cls.served = lib.run_fresh(_SERVE, payload, absltest.get_default_test_tmpdir())

    def out(self, key):
        return {k: lib.decode(v) for k, v in self.served[key].items()}

    def ids(self, texts):
        return [list(map(int, r)) for r in self.tokenizer(texts).to_list()]

    def test_loaded_without_gpt1_keras(self):
        self.assertEqual(self.served["gpt1_keras_modules"], [])
        self.assertEqual(self.served["signatures"],
                         ["generate", "score", "score_continuation", "serving_default"])

    def test_score_matches_zero_shot_scoring(self):
        out = self.out("score")
        expected = zero_shot.cola_scores(self.lm, self.tokenizer, TEXTS)
        lengths = np.array([len(r) for r in self.ids(TEXTS)])
        # At most 63 scored tokens (64 positions, the first has no context).
        np.testing.assert_array_equal(out["num_tokens"], np.minimum(lengths, 63))
        nonempty = lengths > 0
        np.testing.assert_allclose(out["mean_log_prob"][nonempty], expected[nonempty],
                                   atol=1e-5, rtol=0)
        np.testing.assert_allclose(out["sum_log_prob"], out["mean_log_prob"] *
                                   np.maximum(out["num_tokens"], 1), rtol=1e-5)
        # Nothing to score in an empty text (zero_shot says -inf): 0 and 0 tokens.
        self.assertEqual((out["mean_log_prob"][1], out["num_tokens"][1]), (0.0, 0))
        for name, value in self.out("serving_default").items():
            np.testing.assert_array_equal(value, out[name])

    def test_score_continuation_matches_span_log_probs(self):
        out = self.out("score_continuation")
        start = self.tokenizer.start_token_id
        prefixes = [[start] + r for r in self.ids(CONTEXTS)]
        spans = self.ids(CONTINUATIONS)
        expected = zero_shot.span_log_probs(self.lm, prefixes, spans, reduce="sum")
        np.testing.assert_array_equal(out["num_tokens"], [len(s) for s in spans])
        scored = np.array([len(s) > 0 for s in spans])
        np.testing.assert_allclose(out["sum_log_prob"][scored], expected[scored],
                                   atol=1e-5, rtol=0)
        self.assertEqual(out["sum_log_prob"][3], 0.0)

    def greedy_decode(self, prompt_ids, n):
        """Python greedy decoding with the full model: the prompt's last
        `context - n` ids, then argmax of the last position, n times."""
        ids = list(prompt_ids)[-(64 - n):]
        for _ in range(n):
            x = np.array([ids], "int32")
            logits = self.lm({"token_ids": x, "padding_mask": np.ones_like(x)}, training=False)
            ids.append(int(np.argmax(keras.ops.convert_to_numpy(logits)[0, -1])))
        return ids[-n:]

    def test_greedy_generate_matches_python_greedy_decoding(self):
        out = self.out("greedy")
        prompt_ids = self.ids(PROMPTS)
        self.assertGreater(len(prompt_ids[2]) + NEW_TOKENS[2], 64)  # cut from the left
        for i, (ids, n) in enumerate(zip(prompt_ids, NEW_TOKENS)):
            # An empty prompt starts from the newline token (pretraining's separator).
            expected = self.greedy_decode(ids or [self.tokenizer.newline_token_id], n)
            row = list(out["token_ids"][i])
            self.assertEqual(row, expected + [-1] * (max(NEW_TOKENS) - n), f"prompt {i}")
            self.assertEqual(out["completion"][i], self.tokenizer.detokenize(expected).numpy())
            self.assertEqual(out["text"][i], self.tokenizer.detokenize(ids + expected).numpy())

    def test_greedy_generate_equals_keras_generate(self):
        # The served loop is `GPT1CausalLM.decode`, the loop of Keras `generate`:
        # the same prompts (the served rule: last `context - n` ids, an empty
        # prompt from the newline) give the same greedy tokens.
        out = self.out("greedy")
        lm = GPT1CausalLM(self.lm.backbone)
        lm.compile(sampler="greedy")
        prompts = [(ids or [self.tokenizer.newline_token_id])[-(64 - n):]
                   for ids, n in zip(self.ids(PROMPTS), NEW_TOKENS)]
        total = max(len(p) + n for p, n in zip(prompts, NEW_TOKENS))
        token_ids = np.zeros((len(prompts), total), "int32")
        for row, ids in enumerate(prompts):
            token_ids[row, : len(ids)] = ids
        mask = np.arange(total)[None, :] < np.array([len(p) for p in prompts])[:, None]
        generated = lm.generate({"token_ids": token_ids, "padding_mask": mask})["token_ids"]
        for i, (ids, n) in enumerate(zip(prompts, NEW_TOKENS)):
            self.assertEqual(list(out["token_ids"][i][:n]),
                             np.asarray(generated)[i, len(ids): len(ids) + n].tolist(),
                             f"prompt {i}")

    def test_sampling_is_seeded_per_row(self):
        sampled = self.out("sampled")
        np.testing.assert_array_equal(sampled["token_ids"], self.out("sampled_again")["token_ids"])
        # A row's tokens depend on its own seed, not on the rest of the batch.
        np.testing.assert_array_equal(sampled["token_ids"][1],
                                      self.out("sampled_alone")["token_ids"][0])
        self.assertFalse(np.array_equal(sampled["token_ids"],
                                        self.out("other_seed")["token_ids"]))
        self.assertTrue((sampled["token_ids"] >= 0).all())
        self.assertTrue((sampled["token_ids"] < 40481).all())

    def test_max_new_tokens_is_clamped_and_settings_are_checked(self):
        capped = self.out("capped")
        self.assertEqual(capped["token_ids"].shape, (2, 8))  # max_new_tokens_limit=8
        self.assertTrue((capped["token_ids"][0] >= 0).all())
        self.assertTrue((capped["token_ids"][1] == -1).all())
        self.assertEqual(capped["completion"][1], b"")
        empty = self.out("empty_batch")
        self.assertEqual(empty["token_ids"].shape, (0, 0))
        self.assertIn("`seed` must have 1 entry or one per prompt",
                      self.served["bad_settings_error"])

    def test_random_requests_get_an_answer_or_a_utf8_error(self):
        counts = self.served["random"]
        self.assertEqual(counts["other_errors"], [])
        self.assertEqual(counts["answers"] + counts["utf8_errors"], 400)
        self.assertGreater(counts["answers"], 200)  # every random-Unicode request

    def test_saved_model_cli_lists_the_signatures(self):
        signatures = lib.parse_saved_model_cli(lib.saved_model_cli_show(self.path))
        self.assertEqual(signatures["generate"], {
            "inputs": {"prompt": ("DT_STRING", "(-1)"),
                       "max_new_tokens": ("DT_INT32", "(-1)"),
                       "temperature": ("DT_FLOAT", "(-1)"),
                       "top_k": ("DT_INT32", "(-1)"),
                       "top_p": ("DT_FLOAT", "(-1)"),
                       "seed": ("DT_INT64", "(-1)")},
            "outputs": {"completion": ("DT_STRING", "(-1)"), "text": ("DT_STRING", "(-1)"),
                        "token_ids": ("DT_INT32", "(-1, -1)")},
            "method": "tensorflow/serving/predict",
        })
        for name in ("score", "serving_default"):
            self.assertEqual(signatures[name]["inputs"], {"text": ("DT_STRING", "(-1)")})
            self.assertEqual(signatures[name]["outputs"], {
                "mean_log_prob": ("DT_FLOAT", "(-1)"), "sum_log_prob": ("DT_FLOAT", "(-1)"),
                "num_tokens": ("DT_INT32", "(-1)")})
        self.assertEqual(signatures["score_continuation"]["inputs"], {
            "context": ("DT_STRING", "(-1)"), "text": ("DT_STRING", "(-1)")})
        with open(os.path.join(self.path, "assets.extra", "gpt1_keras_export.json")) as f:
            info = json.load(f)
        self.assertEqual((info["model_class"], info["context"], info["max_new_tokens_limit"]),
                         ("GPT1CausalLM", 64, 8))

    def test_the_tokenizer_is_stored_once(self):
        # Four signatures tokenize (score_continuation twice) and generate detokenizes
        # twice; traced into each, the tokenizer's ops were stored four times (15.7 MB
        # for this model, 10.9 MB since). Through one shared function the
        # export is barely bigger than a SavedModel of `score` alone.
        module = CausalLMServingModule(self.lm, self.tokenizer, max_new_tokens_limit=8)
        alone = os.path.join(self.create_tempdir().full_path, "score_alone")
        tf.saved_model.save(module, alone, signatures={"score": module.signatures()["score"]})
        self.assertLess(_size(self.path), 1.3 * _size(alone),
                        f"export {_size(self.path)} bytes, `score` alone {_size(alone)}")


if __name__ == "__main__":
    absltest.main()
