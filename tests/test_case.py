"""Shared test helpers, keras-hub style: tiny fixtures and `TestCase.run_*_test`.

`run_backbone_test` and `run_task_test` check what every backbone and task must
do: a config and `.keras` round trip with equal outputs, variable sequence
lengths, `fit` / `predict` on a `tf.data.Dataset`, and `mixed_bfloat16` within a
bfloat16 tolerance of float32. A test file then holds only its model's own
behaviour and tiny inline inputs.

The fixtures every test shares: `TINY_BACKBONE` / `TINY_LSTM_BACKBONE` (tiny
configs), `tiny_backbone` / `tiny_lm` (built on `TINY_BACKBONE`), `random_inputs`
(NumPy model inputs), `padded_lm_batch` and `sgd_step` (one training step's
gradients), `assign_random_weights` (the same NumPy-drawn weights on
every backend), the NumPy references `log_softmax` / `sequence_log_probs`, and
`to_numpy`. The one stand-in tokenizer is
`tests.data.fake_tokenizer.FakeTokenizer` (decimal words are their own ids).
"""

import os

import keras
import numpy as np
import tensorflow as tf
from absl.testing import parameterized

# A GPT-1 backbone that builds in milliseconds (the real presets are in
# `gpt1_keras.models.backbone_presets`; `gpt1_tiny` keeps the real vocabulary).
TINY_VOCABULARY_SIZE = 60
TINY_BACKBONE = dict(
    vocabulary_size=TINY_VOCABULARY_SIZE,
    num_layers=2,
    num_heads=2,
    hidden_dim=16,
    intermediate_dim=32,
    max_sequence_length=16,
)

# The LSTM baseline (`LSTMBackbone`) of the same size.
TINY_LSTM_BACKBONE = dict(
    vocabulary_size=TINY_VOCABULARY_SIZE,
    hidden_dim=16,
    lstm_units=24,
    max_sequence_length=16,
)


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def log_softmax(z):
    """NumPy float64 log-softmax over the last axis (a reference for model outputs)."""
    z = np.asarray(z, np.float64)
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def sequence_log_probs(lm, ids):
    """`log p(ids[t] | ids[:t])` for `t >= 1` of one unpadded id list, in float64.

    From `lm`'s logits on the whole sequence and `log_softmax`: a reference
    independent of `GPT1CausalLM.score`.
    """
    x = np.asarray([ids], "int32")
    logits = to_numpy(lm({"token_ids": x, "padding_mask": np.ones_like(x)}, training=False))[0]
    log_probs = log_softmax(logits)
    return np.array([log_probs[t - 1, ids[t]] for t in range(1, len(ids))])


def random_inputs(shape, lengths=None, vocabulary_size=TINY_VOCABULARY_SIZE, seed=0,
                  junk_padding=False):
    """`{"token_ids", "padding_mask"}` of int32 ids, right-padded.

    Args:
        shape: `(..., T)`.
        lengths: real tokens per sequence, shape `shape[:-1]` (default: all `T`).
        vocabulary_size: ids are drawn from `[1, vocabulary_size)`.
        seed: NumPy seed.
        junk_padding: keep random ids in the padding (a model must ignore
            them) instead of 0.
    """
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocabulary_size, size=shape).astype("int32")
    if lengths is None:
        lengths = np.full(shape[:-1], shape[-1])
    mask = (np.arange(shape[-1]) < np.asarray(lengths)[..., None]).astype("int32")
    return {"token_ids": ids if junk_padding else ids * mask, "padding_mask": mask}


def padded_lm_batch(seed=0):
    """An LM training batch `(x, y, sample_weight)` of 3 x 7 positions (21), two rows
    padded: `random_inputs` of 3 x 8 (lengths 8, 5, 2) shifted by one position."""
    x = random_inputs((3, 8), lengths=[8, 5, 2], seed=seed)
    ids, mask = x["token_ids"], x["padding_mask"]
    x = {"token_ids": ids[:, :-1], "padding_mask": mask[:, :-1]}
    return x, ids[:, 1:], mask[:, 1:].astype("float32")


def sgd_step(lm, batch, jit_compile, **compile_kwargs):
    """One SGD(1) `train_on_batch` of `lm` on `batch`: the loss and each trainable
    variable's gradient (its value before minus after). `lm` keeps the update."""
    before = [to_numpy(v) for v in lm.trainable_variables]
    lm.compile(optimizer=keras.optimizers.SGD(1.0), jit_compile=jit_compile, **compile_kwargs)
    loss = lm.train_on_batch(*batch, return_dict=True)["loss"]
    return loss, [b - to_numpy(v) for b, v in zip(before, lm.trainable_variables)]


def assign_random_weights(model, seed=0, stddev=0.3, min_rank=0):
    """Overwrites `model`'s trainable weights with NumPy `N(0, stddev)` draws.

    Keras' initializers draw differently on each backend; after this the same
    model holds the same weights on TF, JAX and torch. A wide `stddev` keeps
    next-token logits well separated (no near-ties in greedy decoding).

    Args:
        model: a built layer or model.
        seed: NumPy seed.
        stddev: of the draws.
        min_rank: only variables of at least this rank (2: kernels and
            embeddings, leaving LayerNorms and biases at their init).
    """
    rng = np.random.default_rng(seed)
    for variable in model.trainable_weights:
        if len(variable.shape) >= min_rank:
            variable.assign(rng.normal(0, stddev, variable.shape).astype(variable.dtype))
    return model


def tiny_backbone(vocabulary_size=TINY_VOCABULARY_SIZE, **overrides):
    """A `GPT1Backbone` of `TINY_BACKBONE` (its arguments overridable).

    `vocabulary_size=FakeTokenizer().vocabulary_size()` (904) fits the fake
    tokenizer's ids.
    """
    from gpt1_keras.models import GPT1Backbone

    return GPT1Backbone(**{**TINY_BACKBONE, "vocabulary_size": vocabulary_size, **overrides})


def tiny_lm(vocabulary_size=TINY_VOCABULARY_SIZE, **overrides):
    """A `GPT1CausalLM` on `tiny_backbone(vocabulary_size, **overrides)`."""
    from gpt1_keras.models import GPT1CausalLM

    return GPT1CausalLM(tiny_backbone(vocabulary_size, **overrides))


def tiny_pretrain_config(test, **fields):
    """A `PretrainConfig` of the `small` recipe on a 200-line corpus written in `test`'s
    temporary directory (with its own `model_dir`), XLA off; `fields` override."""
    from gpt1_keras.training.pretraining import PretrainConfig

    corpus = test.create_tempfile(
        "corpus.txt",
        "".join(f"line {i} : the quick brown fox jumps over the lazy dog .\n"
                for i in range(200)),
    ).full_path
    values = dict(train_files=(corpus,), model_dir=test.create_tempdir().full_path,
                  batch_size=4, sequence_length=16, steps_per_epoch=3, checkpoint_every=3,
                  num_samples=1, jit_compile=False)
    return PretrainConfig.from_recipe("small", **{**values, **fields})


def _max_difference(a, b):
    a = to_numpy(keras.ops.cast(a, "float32")).astype("float64")
    b = to_numpy(keras.ops.cast(b, "float32")).astype("float64")
    if a.shape != b.shape:
        raise AssertionError(f"shapes differ: {a.shape} != {b.shape}")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


class TestCase(parameterized.TestCase):
    """`absltest` / `parameterized` test case with the model checks shared by all."""

    def setUp(self):
        super().setUp()
        keras.config.set_dtype_policy("float32")
        keras.utils.set_random_seed(0)

    def tearDown(self):
        keras.config.set_dtype_policy("float32")
        super().tearDown()

    def assertAllClose(self, actual, desired, atol=1e-6, rtol=0.0, msg=None):
        np.testing.assert_allclose(
            to_numpy(actual), to_numpy(desired), atol=atol, rtol=rtol, err_msg=msg or ""
        )

    # === Pieces ===

    def run_serialization_test(self, model, input_data, atol=1e-6):
        """`from_config(get_config())` and a `.keras` file give the same model back."""
        cls = type(model)
        config = model.get_config()
        clone = cls.from_config(config)
        self.assertIsInstance(clone, cls)
        self.assertEqual(keras.saving.serialize_keras_object(clone)["config"],
                         keras.saving.serialize_keras_object(model)["config"])

        expected = model(input_data, training=False)
        path = os.path.join(self.create_tempdir().full_path, "model.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
        self.assertIsInstance(restored, cls)
        self.assertEqual(restored.get_config(), config)
        self.assertLessEqual(_max_difference(restored(input_data, training=False), expected),
                             atol)
        return restored

    def run_precision_test(self, make_model, float32_model, input_data, rtol=0.02):
        """`make_model()` under `mixed_bfloat16` computes what float32 does, roughly.

        `make_model` builds the same architecture as `float32_model`; it is
        called with the global policy set to `mixed_bfloat16` and given
        `float32_model`'s weights. It must keep float32 variables, and its
        outputs must be within `rtol * max|float32 outputs|` of float32's
        (bfloat16 keeps 8 mantissa bits, a relative step of 0.4%; the tiny
        models here stay under 0.6% after two blocks).
        """
        keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            mixed = make_model()
        finally:
            keras.config.set_dtype_policy("float32")
        mixed.set_weights(float32_model.get_weights())
        for variable in mixed.weights:
            self.assertEqual(keras.backend.standardize_dtype(variable.dtype), "float32",
                             variable.path)
        expected = float32_model(input_data, training=False)
        got = mixed(input_data, training=False)
        scale = _max_difference(expected, keras.ops.zeros_like(expected))
        self.assertGreater(scale, 0.0)
        error = _max_difference(got, expected)
        self.assertLessEqual(error, rtol * scale,
                             f"mixed_bfloat16 vs float32 (outputs up to {scale:.3g})")
        return mixed, got

    # === Backbones ===

    def run_backbone_test(self, cls, init_kwargs, input_data, expected_output_shape,
                          variable_lengths=(1, 3), bf16_rtol=0.02, causal=True):
        """Shapes, variable lengths, serialization and mixed precision of a backbone.

        Args:
            cls: the backbone class (inputs a dict of `token_ids`, `padding_mask`).
            init_kwargs: its constructor arguments (plain values).
            input_data: a batch without padding.
            expected_output_shape: of `cls(**init_kwargs)(input_data)`.
            variable_lengths: shorter lengths the same backbone must accept; with
                `causal`, their outputs equal the matching prefix of the full one.
            bf16_rtol: `mixed_bfloat16`'s max abs difference from float32, relative
                to the largest float32 output.
            causal: whether an output depends only on earlier positions.
        """
        backbone = cls(**init_kwargs)
        output = backbone(input_data)
        self.assertEqual(tuple(output.shape), tuple(expected_output_shape))

        for length in variable_lengths:
            prefix = {k: v[:, :length] for k, v in input_data.items()}
            short = backbone(prefix)
            self.assertEqual(tuple(short.shape),
                             (expected_output_shape[0], length) + tuple(expected_output_shape[2:]))
            if causal:
                self.assertLessEqual(_max_difference(short, output[:, :length]), 1e-5, length)

        self.run_serialization_test(backbone, input_data)

        mixed, mixed_output = self.run_precision_test(
            lambda: cls(**init_kwargs, dtype="mixed_bfloat16"), backbone, input_data, bf16_rtol)
        self.assertEqual(keras.backend.standardize_dtype(mixed_output.dtype), "bfloat16")
        # The policy is part of the config, so a reloaded backbone stays mixed.
        self.assertEqual(cls.from_config(mixed.get_config()).dtype_policy.name,
                         "mixed_bfloat16")
        return backbone

    # === Tasks ===

    def run_task_test(self, cls, init_kwargs, train_data, expected_output_shape,
                      batch_size=2, bf16_rtol=0.02, compile_kwargs=None):
        """`fit` / `predict` on a tf.data dataset, serialization, mixed precision.

        Args:
            cls: the task class (`GPT1CausalLM`, `GPT1Classifier`, ...).
            init_kwargs: its constructor arguments, holding a float32 `backbone`.
            train_data: `(x, y)` or `(x, y, sample_weight)` NumPy data, `x` a dict.
            expected_output_shape: of `predict` on all of `x`.
            batch_size: of the dataset.
            bf16_rtol: as in `run_backbone_test`.
            compile_kwargs: for `compile()` (default: the task's own defaults).
        """
        model = cls(**init_kwargs)
        x = train_data[0]
        ds = tf.data.Dataset.from_tensor_slices(tuple(train_data)).batch(batch_size)

        model.compile(**(compile_kwargs or {}))
        history = model.fit(ds, epochs=1, verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]), history.history)
        predicted = model.predict(ds.map(lambda x, *unused: x), verbose=0)
        self.assertEqual(tuple(predicted.shape), tuple(expected_output_shape))
        # Batching through tf.data changes nothing (inference: no dropout).
        self.assertLessEqual(_max_difference(predicted, model(x, training=False)), 1e-5)

        self.run_serialization_test(model, x)

        backbone = init_kwargs["backbone"]

        def make_mixed():
            config = {**backbone.get_config(), "dtype": "mixed_bfloat16"}
            return cls(**{**init_kwargs, "backbone": type(backbone).from_config(config)})

        self.run_precision_test(make_mixed, model, x, bf16_rtol)
        return model
