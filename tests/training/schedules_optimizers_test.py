"""Learning-rate schedules and GPT1Adam against the original GPT-1 update, per backend."""

import math

import keras
import numpy as np
from absl.testing import absltest
from keras import ops

from gpt1_keras.training import optimizers
from gpt1_keras.training import schedules


def _lr(schedule, step):
    return float(ops.convert_to_numpy(schedule(step)))


class SchedulesTest(absltest.TestCase):
    def test_warmup_cosine_phases(self):
        s = schedules.WarmupCosineDecay(1e-3, warmup_steps=10, total_steps=110)
        self.assertAlmostEqual(_lr(s, 0), 1e-4, places=9)  # 1. first update: peak/10
        self.assertAlmostEqual(_lr(s, 4), 5e-4, places=9)
        self.assertAlmostEqual(_lr(s, 9), 1e-3, places=9)  # end of warm-up: the peak
        self.assertAlmostEqual(_lr(s, 10), 1e-3, places=9)  # 2. cosine starts at the peak
        self.assertAlmostEqual(_lr(s, 60), 5e-4, places=7)  # halfway: half
        self.assertAlmostEqual(_lr(s, 35), 1e-3 * 0.5 * (1 + math.cos(math.pi / 4)), places=7)
        self.assertLess(_lr(s, 109), 1e-6)
        self.assertEqual(_lr(s, 110), 0.0)  # 3. zero at and past the end
        self.assertEqual(_lr(s, 500), 0.0)

    def test_warmup_linear_is_clamped(self):
        s = schedules.WarmupLinearDecay(6.25e-5, warmup_steps=2, total_steps=1000)
        self.assertEqual(_lr(s, 0), 0.0)  # the original formula: 0 at x = 0
        np.testing.assert_allclose(_lr(s, 1), 6.25e-5 * 0.5 * (1 - 0.001), rtol=1e-6)
        np.testing.assert_allclose(_lr(s, 500), 6.25e-5 * 0.5, rtol=1e-6)
        # The unclamped original is negative here (trap 6).
        self.assertEqual(_lr(s, 1500), 0.0)

    def test_schedules_serialize(self):
        s = schedules.WarmupCosineDecay(3e-4, 5, 50)
        restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(s))
        self.assertEqual(restored.get_config(), s.get_config())

    def test_bad_arguments_are_named(self):
        with self.assertRaisesRegex(ValueError, "warmup_steps"):
            schedules.WarmupCosineDecay(1e-3, warmup_steps=20, total_steps=10)
        with self.assertRaisesRegex(ValueError, "schedule='step'"):
            schedules.make_schedule("step", 1e-3, 0, 10)


def _reference_adam(params, grads_per_step, lr, l2, clip, b1=0.9, b2=0.999, eps=1e-8):
    """OpenAI's opt.py `adam`, in numpy (schedule already folded into `lr`)."""
    params = [p.astype(np.float64).copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_per_step, start=1):
        norm = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
        scale = min(1.0, clip / norm) if clip else 1.0
        lrt = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        for i, (p, g) in enumerate(zip(params, grads)):
            g = g * scale
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            decay = l2 * p if p.ndim > 1 else 0.0
            params[i] = p - lrt * (m[i] / (np.sqrt(v[i]) + eps) + decay)
    return params


class GPT1AdamTest(absltest.TestCase):
    def _run(self, clip):
        rng = np.random.default_rng(0)
        init = [rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=(4,)).astype("float32")]
        grads = [[rng.normal(size=p.shape).astype("float32") * 5 for p in init] for _ in range(3)]
        variables = [keras.Variable(p) for p in init]
        optimizer = optimizers.build_optimizer(1e-2, weight_decay=0.1, clip_norm=clip)
        for step_grads in grads:
            optimizer.apply_gradients(
                zip([ops.convert_to_tensor(g) for g in step_grads], variables)
            )
        got = [ops.convert_to_numpy(v) for v in variables]
        want = _reference_adam(init, grads, lr=1e-2, l2=0.1, clip=clip)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
        return init, got

    def test_matches_original_update_with_clipping(self):
        self._run(clip=1.0)

    def test_matches_original_update_without_clipping(self):
        self._run(clip=0.0)

    def test_rank_one_variables_are_not_decayed(self):
        # With zero gradients Adam's step is 0, so only the decay moves a variable.
        matrix, vector = keras.Variable(np.ones((2, 2), "float32")), keras.Variable(
            np.ones((2,), "float32"))
        optimizer = optimizers.build_optimizer(0.1, weight_decay=0.5, clip_norm=0.0)
        optimizer.apply_gradients(
            [(ops.zeros((2, 2)), matrix), (ops.zeros((2,)), vector)]
        )
        lrt = 0.1 * math.sqrt(1 - 0.999) / (1 - 0.9)  # bias-corrected, unlike Keras AdamW
        np.testing.assert_allclose(ops.convert_to_numpy(matrix), 1 - lrt * 0.5, rtol=1e-6)
        np.testing.assert_array_equal(ops.convert_to_numpy(vector), np.ones(2))

    def test_refuses_keras_weight_decay(self):
        with self.assertRaisesRegex(ValueError, "weight_decay"):
            optimizers.GPT1Adam(weight_decay=0.01)

    def test_serializes(self):
        optimizer = optimizers.build_optimizer(
            schedules.WarmupCosineDecay(1e-3, 2, 10), weight_decay=0.01
        )
        restored = optimizers.GPT1Adam.from_config(optimizer.get_config())
        self.assertEqual(restored.l2, 0.01)
        self.assertEqual(restored.epsilon, 1e-8)
        self.assertEqual(restored.global_clipnorm, 1.0)


if __name__ == "__main__":
    absltest.main()
