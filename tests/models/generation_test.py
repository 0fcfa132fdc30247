"""GPT1CausalLM.generate (keras-hub samplers on our cached loop) against full recomputation."""

import keras
import keras_hub
import numpy as np
from absl.testing import absltest

from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.models import LSTMBackbone
from gpt1_keras.preprocessing.gpt1_causal_lm_preprocessor import GPT1CausalLMPreprocessor
from gpt1_keras.tokenizers import GPT1Tokenizer
from tests.test_case import TINY_BACKBONE
from tests.test_case import TINY_VOCABULARY_SIZE as VOCAB
from tests.test_case import TestCase
from tests.test_case import to_numpy

CONTEXT = TINY_BACKBONE["max_sequence_length"]
PROMPTS = [[1, 2, 3, 4, 5], [6, 7], [8, 9, 10]]  # unequal lengths, batched together
samplers = keras_hub.samplers


def _separated(lm, seed=0):
    """Kernels and embeddings drawn wide enough that the next-token logits are
    well separated (no near-ties between backends); LayerNorms and biases keep
    their init. The same NumPy draw on every backend."""
    rng = np.random.default_rng(seed)
    for variable in lm.trainable_weights:
        if len(variable.shape) >= 2:
            variable.assign(rng.normal(0, 0.3, variable.shape).astype(variable.dtype))
    return lm


def _tiny_lm(seed=0, preprocessor=None, **overrides):
    backbone = GPT1Backbone(**{**TINY_BACKBONE, **overrides})
    return _separated(GPT1CausalLM(backbone, preprocessor), seed)


def _buffer(prompts, total):
    """Right-padded `{"token_ids", "padding_mask"}` of shape (batch, total)."""
    token_ids = np.zeros((len(prompts), total), "int32")
    for row, prompt in enumerate(prompts):
        token_ids[row, : len(prompt)] = prompt
    mask = np.arange(total)[None, :] < np.array([len(p) for p in prompts])[:, None]
    return {"token_ids": token_ids, "padding_mask": mask}


def _generate(lm, prompts, total, **kwargs):
    out = lm.generate(_buffer(prompts, total), **kwargs)
    return np.asarray(out["token_ids"]).tolist()


def _full_logits(lm, ids):
    """(T, V) float64 logits of one unpadded sequence from a full forward pass."""
    x = np.asarray([ids], "int32")
    return to_numpy(lm({"token_ids": x, "padding_mask": np.ones_like(x)})).astype("float64")[0]


def _greedy_by_recomputation(lm, prompt, total):
    """Argmax of a full forward pass over the whole sequence at every step."""
    ids = list(prompt)
    while len(ids) < total:
        ids.append(int(_full_logits(lm, ids)[-1].argmax()))
    return ids


def _softmax(logits):
    e = np.exp(logits - logits.max())
    return e / e.sum()


class CacheTest(TestCase):
    def test_cached_logits_equal_full_forward_at_every_step(self):
        lm = _tiny_lm()
        ids = np.random.default_rng(1).integers(0, VOCAB, size=(2, 12)).astype("int32")
        prefill = 4
        cache = lm.backbone.empty_cache(2, CONTEXT)
        self.assertLen(cache, 2)  # one (B, 2, heads, positions, head_dim) per block
        self.assertEqual(tuple(cache[0].shape), (2, 2, 2, CONTEXT, 8))
        logits, hidden, cache = lm.call_with_cache(ids[:, :prefill], cache, 0)
        full = to_numpy(lm({"token_ids": ids, "padding_mask": np.ones_like(ids)}))
        self.assertAllClose(logits, full[:, :prefill], atol=1e-5)
        self.assertEqual(tuple(hidden.shape), (2, prefill, 16))
        for index in range(prefill, ids.shape[1]):
            logits, _, cache = lm.call_with_cache(ids[:, index : index + 1], cache, index)
            self.assertAllClose(to_numpy(logits)[:, 0], full[:, index], atol=1e-5,
                                msg=f"step {index}")

    def test_cache_longer_than_context_is_an_error(self):
        with self.assertRaisesRegex(ValueError, f"context of {CONTEXT}.*max_length=17"):
            _tiny_lm().backbone.empty_cache(1, CONTEXT + 1)


class GreedyTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lm = _tiny_lm()
        cls.lm.compile(sampler="greedy")
        cls.expected = [_greedy_by_recomputation(cls.lm, p, 11) for p in PROMPTS]

    def test_ragged_prompts_equal_recomputation(self):
        self.assertEqual(_generate(self.lm, PROMPTS, 11), self.expected)
        # The reference is not degenerate: continuations differ between prompts.
        self.assertGreater(len({tuple(e[-6:]) for e in self.expected}), 1)

    def test_unpadded_prompts_and_single_prompts_agree(self):
        prompts = [[3, 1, 4], [1, 5, 9]]
        self.assertEqual(_generate(self.lm, prompts, 9),
                         [_greedy_by_recomputation(self.lm, p, 9) for p in prompts])
        self.assertEqual(_generate(self.lm, PROMPTS[1:2], 11), self.expected[1:2])  # alone

    def test_generating_up_to_the_context_is_allowed(self):
        got = _generate(self.lm, [[1, 2]], CONTEXT)
        self.assertEqual(got, [_greedy_by_recomputation(self.lm, [1, 2], CONTEXT)])

    def test_top_k_1_tiny_top_p_and_one_beam_are_greedy(self):
        lm = _tiny_lm()
        for sampler in (samplers.TopKSampler(k=1, seed=7),
                        samplers.TopKSampler(k=1, seed=7, temperature=3.0),
                        samplers.TopPSampler(p=1e-6, seed=7),
                        samplers.BeamSampler(num_beams=1)):
            lm.compile(sampler=sampler)
            self.assertEqual(_generate(lm, PROMPTS, 11), self.expected, type(sampler))

    def test_jit_compiled_loop_agrees(self):
        # XLA on TensorFlow (off by default on CPU); JAX always jits; torch is eager.
        lm = _tiny_lm()
        lm.compile(sampler="greedy", jit_compile=True)
        self.assertEqual(_generate(lm, PROMPTS, 11), self.expected)

    def test_stop_token_ends_rows(self):
        stop = self.expected[1][3]  # the second new token of prompt 1
        out = self.lm.generate(_buffer(PROMPTS, 11), stop_token_ids=[stop])
        mask = np.asarray(out["padding_mask"])
        ids = np.asarray(out["token_ids"])
        # Row 1 ends right after its first new `stop`; positions after are masked.
        first = 2 + self.expected[1][2:].index(stop)
        self.assertEqual(mask[1].tolist(), [True] * (first + 1) + [False] * (10 - first))
        self.assertEqual(ids[1, : first + 1].tolist(), self.expected[1][: first + 1])

    def test_lstm_backbone_greedy_equals_recomputation(self):
        backbone = LSTMBackbone(vocabulary_size=VOCAB, hidden_dim=16, lstm_units=24,
                                max_sequence_length=CONTEXT)
        lm = _separated(GPT1CausalLM(backbone))
        lm.compile(sampler="greedy")
        self.assertEqual(_generate(lm, PROMPTS, 11),
                         [_greedy_by_recomputation(lm, p, 11) for p in PROMPTS])


class SamplingTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lm = _tiny_lm(seed=2)
        cls.prompt = [4, 8, 15]
        cls.logits = _full_logits(cls.lm, cls.prompt)[-1]

    def _first_token_frequencies(self, sampler, num_samples=3000):
        self.lm.compile(sampler=sampler)
        out = _generate(self.lm, [self.prompt] * num_samples, 4)
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
            (samplers.RandomSampler(seed=3), probs),
            (samplers.RandomSampler(seed=3, temperature=2.0), _softmax(self.logits / 2.0)),
            (samplers.TopKSampler(k=5, seed=3, temperature=0.7), top_k_5),
            (samplers.TopPSampler(p=0.6, seed=3), top_p_06),
        ]
        for sampler, expected in cases:
            frequencies = self._first_token_frequencies(sampler)
            # Never outside the allowed set; close to the expected distribution.
            self.assertEqual(frequencies[expected == 0].sum(), 0.0, sampler.get_config())
            total_variation = 0.5 * np.abs(frequencies - expected).sum()
            self.assertLess(total_variation, 0.07, sampler.get_config())

    def test_every_step_samples_within_the_top_k(self):
        self.lm.compile(sampler=samplers.TopKSampler(k=3, seed=11))
        out = _generate(self.lm, PROMPTS, 13)
        for row, prompt in zip(out, PROMPTS):
            self.assertEqual(row[: len(prompt)], prompt)
            for t in range(len(prompt), len(row)):
                top3 = np.argsort(-_full_logits(self.lm, row[:t])[-1])[:3]
                self.assertIn(row[t], top3.tolist())

    def test_seeded_samplers_are_reproducible(self):
        def run(seed, calls=1):
            self.lm.compile(sampler=samplers.TopPSampler(p=0.95, k=20, seed=seed))
            return [_generate(self.lm, PROMPTS, 13) for _ in range(calls)]

        first, second = run(5, calls=2)
        self.assertEqual(run(5), [first])  # a fresh sampler, same seed: same tokens
        self.assertNotEqual(second, first)  # the seed state advances between calls
        self.assertNotEqual(run(6), [first])


class TextTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        vocab = {"<unk>": 0, "a": 1, "b": 2, "a</w>": 3, "b</w>": 4, "ab": 5, "ab</w>": 6,
                 "\n</w>": 7}
        cls.tokenizer = GPT1Tokenizer(vocabulary=vocab, merges=["a b</w>", "a b"])
        cls.preprocessor = GPT1CausalLMPreprocessor(cls.tokenizer, sequence_length=CONTEXT)
        cls.lm = _tiny_lm(preprocessor=cls.preprocessor,
                          vocabulary_size=cls.tokenizer.vocabulary_size())
        cls.lm.compile(sampler="greedy")

    def _text(self, ids):
        return self.tokenizer.detokenize([ids]).numpy()[0].decode()

    def test_strings_in_strings_out(self):
        prompts = ["ab a", "b"]
        texts = self.lm.generate(prompts, max_length=7)
        expected = [self._text(_greedy_by_recomputation(self.lm, ids, 7))
                    for ids in self.tokenizer(prompts).to_list()]
        self.assertEqual(texts, expected)
        self.assertTrue(texts[0].startswith("ab a"))
        self.assertEqual(self.lm.generate("ab a", max_length=7), texts[0])
        # Only the new tokens: the generated ids after the prompt's 2.
        new = _greedy_by_recomputation(self.lm, [6, 3], 7)[2:]
        self.assertEqual(self.lm.generate("ab a", max_length=7, strip_prompt=True),
                         self._text(new))

    def test_long_prompts_keep_their_last_tokens_and_empty_starts_from_newline(self):
        long_ids = [6] * 30  # "ab ab ab ...": 30 tokens, more than the context
        texts = self.lm.generate([" ".join(["ab"] * 30), ""], max_length=CONTEXT)
        # The last 15 prompt tokens and one new one fill the 16 positions.
        self.assertEqual(texts[0], self._text(_greedy_by_recomputation(
            self.lm, long_ids[-(CONTEXT - 1):], CONTEXT)))
        self.assertEqual(texts[1], self._text(_greedy_by_recomputation(self.lm, [7], CONTEXT)))

    def test_keras_round_trip_keeps_preprocessor_and_generation(self):
        expected = self.lm.generate(["ab a", "b"], max_length=9)
        path = self.create_tempdir().full_path + "/lm.keras"
        self.lm.save(path)
        loaded = keras.saving.load_model(path)
        self.assertIsInstance(loaded, GPT1CausalLM)
        self.assertIsInstance(loaded.preprocessor, GPT1CausalLMPreprocessor)
        self.assertLen(loaded.weights, len(self.lm.weights))
        loaded.compile(sampler="greedy")
        self.assertEqual(loaded.generate(["ab a", "b"], max_length=9), expected)


    def test_preset_round_trip_through_keras_hub(self):
        expected = self.lm.generate(["ab a", "b"], max_length=9)
        preset = self.create_tempdir().full_path + "/preset"
        self.lm.save_to_preset(preset)
        loaded = keras_hub.models.CausalLM.from_preset(preset)
        self.assertIsInstance(loaded, GPT1CausalLM)
        self.assertIsInstance(loaded.preprocessor, GPT1CausalLMPreprocessor)
        self.assertEqual(loaded.preprocessor.sequence_length, CONTEXT)
        loaded.compile(sampler="greedy")
        self.assertEqual(loaded.generate(["ab a", "b"], max_length=9), expected)


class InputErrorsTest(TestCase):
    def test_bad_inputs_name_the_problem(self):
        lm = _tiny_lm()
        lm.compile(sampler="greedy")
        left_padded = _buffer(PROMPTS, 8)
        left_padded["padding_mask"] = left_padded["padding_mask"][:, ::-1]
        cases = [
            (_buffer(PROMPTS, CONTEXT + 1), f"context of {CONTEXT}.*max_length=17"),
            (left_padded, r"right-padded.*rows \[0, 1, 2\]"),
            (_buffer([[1], []], 4), r"empty rows \[1\]"),
            (_buffer([[1, VOCAB]], 4), rf"outside \[0, {VOCAB}\).*\[{VOCAB}\]"),
            ([[1, 2]], "a dict of `token_ids` and `padding_mask`"),
        ]
        for inputs, message in cases:
            with self.assertRaisesRegex(ValueError, message):
                lm.generate(inputs)
        with self.assertRaisesRegex(ValueError, "A `preprocessor` must be attached"):
            keras_hub.models.CausalLM.generate(lm, _buffer(PROMPTS, 8))

    def test_mixed_precision_generation(self):
        lm = _tiny_lm(dtype="mixed_bfloat16")
        lm.compile(sampler="greedy")
        cache = lm.backbone.empty_cache(3, CONTEXT)
        self.assertEqual(keras.backend.standardize_dtype(cache[0].dtype), "bfloat16")
        out = _generate(lm, PROMPTS, 9)
        # The bf16 cached loop decodes what the bf16 model computes over the whole
        # sequence at every step.
        self.assertEqual(out, [_greedy_by_recomputation(lm, p, 9) for p in PROMPTS])


if __name__ == "__main__":
    absltest.main()
