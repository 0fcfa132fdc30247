"""GPT1CausalLM.generate and the key/value cache, against full recomputation."""

import os
import tempfile

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.tokenizers import GPT1Tokenizer
from gpt1_keras.training import generation

VOCAB = 50
CONTEXT = 16
PROMPTS = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10]]  # unequal lengths, batched together


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _tiny_lm(vocabulary_size=VOCAB, seed=0, **overrides):
    """A tiny LM with the same NumPy-drawn weights on every backend."""
    lm = GPT1CausalLM.from_architecture(
        "gpt1_tiny", vocabulary_size=vocabulary_size, max_sequence_length=CONTEXT, **overrides
    )
    rng = np.random.default_rng(seed)
    for variable in lm.trainable_weights:
        # Kernels and embeddings wide enough that the next-token logits are well
        # separated (no near-ties); LayerNorms and biases keep their init.
        if len(variable.shape) >= 2:
            variable.assign(rng.normal(0, 0.3, variable.shape).astype(variable.dtype))
    return lm


def _full_logits(lm, ids):
    """(T, V) float64 logits of one unpadded sequence from a full forward pass."""
    x = np.asarray([ids], "int32")
    return _np(lm({"token_ids": x, "padding_mask": np.ones_like(x)})).astype("float64")[0]


def _greedy_by_recomputation(lm, prompt, max_new_tokens):
    """Argmax of a full forward pass over the whole sequence at every step."""
    ids = list(prompt)
    for _ in range(max_new_tokens):
        ids.append(int(_full_logits(lm, ids)[-1].argmax()))
    return ids


def _softmax(logits):
    e = np.exp(logits - logits.max())
    return e / e.sum()


class CacheTest(absltest.TestCase):
    def test_cached_logits_equal_full_forward_at_every_step(self):
        lm = _tiny_lm()
        ids = np.random.default_rng(1).integers(0, VOCAB, size=(2, 12)).astype("int32")
        prefill = 4
        cache = lm.backbone.empty_cache(2, CONTEXT)
        self.assertLen(cache, 2)  # one (B, 2, heads, positions, head_dim) per block
        self.assertEqual(tuple(cache[0].shape), (2, 2, 2, CONTEXT, 16))
        logits, hidden, cache = lm.call_with_cache(ids[:, :prefill], cache, 0)
        full = _np(lm({"token_ids": ids, "padding_mask": np.ones_like(ids)}))
        np.testing.assert_allclose(_np(logits), full[:, :prefill], atol=1e-5)
        self.assertEqual(tuple(hidden.shape), (2, prefill, 32))
        for index in range(prefill, ids.shape[1]):
            logits, _, cache = lm.call_with_cache(ids[:, index : index + 1], cache, index)
            np.testing.assert_allclose(
                _np(logits)[:, 0], full[:, index], atol=1e-5, err_msg=f"step {index}"
            )

    def test_cache_and_index_go_together(self):
        layer = _tiny_lm().backbone.transformer_layers[0].attn
        with self.assertRaisesRegex(ValueError, "cache_update_index=3"):
            layer(np.zeros((1, 1, 32), "float32"), cache_update_index=3)

    def test_cache_longer_than_context_is_an_error(self):
        with self.assertRaisesRegex(ValueError, f"context of {CONTEXT}.*max_length=17"):
            _tiny_lm().backbone.empty_cache(1, CONTEXT + 1)


class GreedyTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lm = _tiny_lm()
        cls.expected = [_greedy_by_recomputation(cls.lm, p, 6) for p in PROMPTS]

    def test_batched_unequal_prompts_equal_recomputation(self):
        got = self.lm.generate(PROMPTS, max_new_tokens=6)
        self.assertEqual(got, self.expected)
        # The reference is not degenerate: continuations differ between prompts.
        self.assertGreater(len({tuple(e[-6:]) for e in self.expected}), 1)

    def test_recompute_mode_and_single_prompts_agree(self):
        self.assertEqual(self.lm.generate(PROMPTS, 6, use_cache=False), self.expected)
        self.assertEqual(self.lm.generate(PROMPTS[1], 6), self.expected[1])  # alone

    def test_jit_compiled_loop_agrees(self):
        # XLA on TensorFlow (off by default on CPU); JAX always jits; torch is eager.
        lm = _tiny_lm()
        lm.jit_compile = True
        self.assertEqual(lm.generate(PROMPTS, 6), self.expected)
        self.assertEqual(lm.generate(PROMPTS, 6, strategy="sample", top_k=1), self.expected)

    def test_array_prompts_return_an_array(self):
        prompts = np.array([[3, 1, 4], [1, 5, 9]], "int32")
        got = self.lm.generate(prompts, 4)
        self.assertIsInstance(got, np.ndarray)
        self.assertEqual(got.shape, (2, 7))
        np.testing.assert_array_equal(got[:, :3], prompts)
        self.assertEqual(got[1].tolist(), _greedy_by_recomputation(self.lm, [1, 5, 9], 4))

    def test_generating_up_to_the_context_is_allowed(self):
        got = self.lm.generate([[1, 2]], CONTEXT - 2)
        self.assertEqual(got, [_greedy_by_recomputation(self.lm, [1, 2], CONTEXT - 2)])

    def test_top_k_1_and_tiny_top_p_are_greedy(self):
        for settings in (dict(top_k=1), dict(top_p=1e-6), dict(top_p=1e-6, temperature=3.0)):
            got = self.lm.generate(PROMPTS, 6, strategy="sample", seed=7, **settings)
            self.assertEqual(got, self.expected, settings)


class SamplingTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lm = _tiny_lm(seed=2)
        cls.prompt = [4, 8, 15]
        cls.logits = _full_logits(cls.lm, cls.prompt)[-1]

    def _first_token_frequencies(self, num_samples=4000, **settings):
        out = self.lm.generate([self.prompt] * num_samples, 1, strategy="sample", seed=3,
                               **settings)
        counts = np.bincount([row[-1] for row in out], minlength=VOCAB)
        return counts / num_samples

    def test_samples_follow_the_filtered_distribution(self):
        order = np.argsort(-self.logits)
        probs = _softmax(self.logits)
        top_k_5 = np.zeros(VOCAB)
        top_k_5[order[:5]] = _softmax(self.logits[order[:5]] / 0.7)
        nucleus = order[: int(np.searchsorted(np.cumsum(probs[order]), 0.6)) + 1]
        top_p_06 = np.zeros(VOCAB)
        top_p_06[nucleus] = probs[nucleus] / probs[nucleus].sum()
        self.assertGreater(len(nucleus), 2)
        cases = [
            (dict(), probs),
            (dict(temperature=2.0), _softmax(self.logits / 2.0)),
            (dict(top_k=5, temperature=0.7), top_k_5),
            (dict(top_p=0.6), top_p_06),
        ]
        for settings, expected in cases:
            frequencies = self._first_token_frequencies(**settings)
            # Never outside the allowed set; close to the expected distribution.
            self.assertEqual(frequencies[expected == 0].sum(), 0.0, settings)
            total_variation = 0.5 * np.abs(frequencies - expected).sum()
            self.assertLess(total_variation, 0.06, settings)

    def test_every_step_samples_within_the_top_k(self):
        out = self.lm.generate(PROMPTS, 8, strategy="sample", top_k=3, seed=11)
        for row, prompt in zip(out, PROMPTS):
            for t in range(len(prompt), len(row)):
                top3 = np.argsort(-_full_logits(self.lm, row[:t])[-1])[:3]
                self.assertIn(row[t], top3.tolist())

    def test_seeds_are_reproducible(self):
        settings = dict(strategy="sample", top_k=20, top_p=0.95)
        first = self.lm.generate(PROMPTS, 8, seed=5, **settings)
        self.assertEqual(self.lm.generate(PROMPTS, 8, seed=5, **settings), first)
        self.assertNotEqual(self.lm.generate(PROMPTS, 8, seed=6, **settings), first)

    def test_bad_settings_name_the_value(self):
        lm, p = self.lm, [self.prompt]
        cases = [
            (dict(strategy="beam"), "strategy='beam'"),
            (dict(strategy="sample", top_p=0.0), "top_p=0.0"),
            (dict(strategy="sample", top_p=1.5), "top_p=1.5"),
            (dict(strategy="sample", top_k=0), "top_k=0"),
            (dict(strategy="sample", top_k=VOCAB + 1), f"top_k={VOCAB + 1}"),
            (dict(strategy="sample", temperature=0.0), "temperature=0.0"),
            (dict(top_k=5), "strategy='sample'.*top_k=5"),
            (dict(max_new_tokens=0), "max_new_tokens=0"),
        ]
        for kwargs, message in cases:
            kwargs.setdefault("max_new_tokens", 2)
            with self.assertRaisesRegex(ValueError, message):
                lm.generate(p, **kwargs)

    def test_bad_prompts_are_errors(self):
        with self.assertRaisesRegex(ValueError, "Prompt 1 has 10 tokens.*context of 16"):
            self.lm.generate([[1], list(range(10))], max_new_tokens=7)
        with self.assertRaisesRegex(ValueError, "Prompt 0 is empty"):
            self.lm.generate([[], [1]], 2)
        with self.assertRaisesRegex(ValueError, r"outside \[0, 50\).*\[50\]"):
            self.lm.generate([[1, 50]], 2)
        with self.assertRaisesRegex(ValueError, "need `tokenizer=`"):
            self.lm.generate("hello", 2)


class TextTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        vocab = {"<unk>": 0, "a": 1, "b": 2, "a</w>": 3, "b</w>": 4, "ab": 5, "ab</w>": 6}
        cls.tokenizer = GPT1Tokenizer(vocabulary=vocab, merges=["a b</w>", "a b"])
        cls.lm = _tiny_lm(vocabulary_size=cls.tokenizer.vocabulary_size())

    def test_strings_in_strings_out(self):
        prompts = ["ab a", "b"]
        texts = self.lm.generate(prompts, 3, tokenizer=self.tokenizer)
        expected_ids = [
            _greedy_by_recomputation(self.lm, ids, 3)
            for ids in self.tokenizer(prompts).to_list()
        ]
        expected = [t.decode() for t in self.tokenizer.detokenize(expected_ids).numpy()]
        self.assertEqual(texts, expected)
        self.assertTrue(texts[0].startswith("ab a"))
        single = self.lm.generate("ab a", 3, tokenizer=self.tokenizer)
        self.assertEqual(single, texts[0])

    def test_training_samples_truncate_long_prompts(self):
        long_prompt = " ".join(["ab"] * 30)
        texts = generation.generate_text(
            self.lm, self.tokenizer, ["a b", long_prompt], max_new_tokens=4, top_k=40, seed=1
        )
        self.assertLen(texts, 2)
        self.assertTrue(texts[0].startswith("a b"))
        self.assertTrue(texts[1].startswith("ab ab"))
        # A 30-token prompt keeps its last 12 tokens: 12 + 4 new = the 16 positions.
        prompt = [1, 2, 3, 4, 5, 6] * 5
        ids = generation.sample_tokens(self.lm, prompt, max_new_tokens=4, top_k=1)
        self.assertEqual(ids, _greedy_by_recomputation(self.lm, prompt[-12:], 4))


class SavedModelTest(absltest.TestCase):
    def test_generate_after_keras_round_trip(self):
        lm = _tiny_lm()
        expected = lm.generate(PROMPTS, 4)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "lm.keras")
            lm.save(path)
            loaded = keras.saving.load_model(path)
        self.assertEqual(len(loaded.weights), len(lm.weights))
        self.assertEqual(loaded.generate(PROMPTS, 4), expected)

    def test_mixed_precision_cache(self):
        lm = _tiny_lm(dtype="mixed_bfloat16")
        cache = lm.backbone.empty_cache(3, CONTEXT)
        self.assertEqual(keras.backend.standardize_dtype(cache[0].dtype), "bfloat16")
        out = lm.generate(PROMPTS, 4)
        self.assertEqual([len(r) for r in out], [len(p) + 4 for p in PROMPTS])
        self.assertTrue(all(0 <= t < VOCAB for row in out for t in row))


if __name__ == "__main__":
    absltest.main()
