"""`GPT1Backbone.get_layout_map` with `keras.distribution.ModelParallel` (JAX, 2 x 2 mesh).

Four virtual CPU devices (`--xla_force_host_platform_device_count=4`, set before JAX
starts) form a (batch 2, model 2) mesh. One SGD(1) step of a `GPT1CausalLM` built under
`ModelParallel` with the layout map gives the same loss and every variable's gradient
as the same model, same weights, on one device; and its kernels are really laid out
as the map says (each variable's `jax.sharding.NamedSharding` spec).
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=4").strip()

import keras  # noqa: E402  (after XLA_FLAGS)
import numpy as np  # noqa: E402
from absl.testing import absltest  # noqa: E402

from gpt1_keras.models import GPT1Backbone  # noqa: E402
from tests import test_case  # noqa: E402
from tests.test_case import to_numpy  # noqa: E402


def _lm(weights=None):
    keras.utils.set_random_seed(0)
    lm = test_case.tiny_lm(dropout=0.0)
    if weights is None:
        test_case.assign_random_weights(lm, seed=1, stddev=0.2)
    else:
        for variable, value in zip(lm.weights, weights):
            variable.assign(value)
    return lm


class LayoutMapTest(test_case.TestCase):
    def setUp(self):
        super().setUp()
        if keras.config.backend() != "jax":
            self.fail("run with KERAS_BACKEND=jax (keras.distribution is JAX's)")
        devices = keras.distribution.list_devices("cpu")
        self.assertLen(devices, 4, "XLA_FLAGS did not give 4 virtual CPU devices")
        self.mesh = keras.distribution.DeviceMesh((2, 2), ("batch", "model"), devices)

    def test_model_parallel_step_equals_one_device(self):
        x = test_case.random_inputs((4, 8), lengths=[8, 5, 8, 2], seed=3)
        ids, mask = x["token_ids"], x["padding_mask"]
        batch = ({"token_ids": ids[:, :-1], "padding_mask": mask[:, :-1]}, ids[:, 1:],
                 mask[:, 1:].astype("float32"))
        lm = _lm()
        weights = [to_numpy(v) for v in lm.weights]
        want_loss, want_grads = test_case.sgd_step(lm, batch, jit_compile=True)

        distribution = keras.distribution.ModelParallel(
            layout_map=GPT1Backbone.get_layout_map(self.mesh), batch_dim_name="batch")
        with distribution.scope():
            sharded = _lm(weights)
            specs = {v.path: tuple(v.value.sharding.spec) for v in sharded.weights}
            loss, grads = test_case.sgd_step(sharded, batch, jit_compile=True)
        # The layout: what the map says, padded with None to the variable's rank.
        for path, want in (
                ("token_embedding/embeddings", ("model", "batch")),
                ("transformer_layer_0/attn/c_attn/kernel", ("batch", "model")),
                ("transformer_layer_0/attn/c_attn/bias", ("model",)),
                ("transformer_layer_1/attn/c_proj/kernel", ("model", "batch")),
                ("transformer_layer_1/c_fc/kernel", ("batch", "model")),
                ("transformer_layer_1/c_proj/kernel", ("model", "batch"))):
            self.assertEqual(specs[path][:len(want)], want, path)
        self.assertEqual(set(specs["position_embedding/embeddings"]) - {None}, set())
        # Measured: losses 4.8e-7 apart, gradients 3e-8 (sums in another order); ~10x.
        self.assertAllClose(loss, want_loss, atol=5e-6)
        for got, want in zip(grads, want_grads):
            self.assertAllClose(got, want, atol=5e-7)

    def test_bad_mesh_axes_are_named(self):
        with self.assertRaisesRegex(ValueError, "'tensor' is not an axis"):
            GPT1Backbone.get_layout_map(self.mesh, model_parallel_dim_name="tensor")
        with self.assertRaisesRegex(ValueError, "DeviceMesh"):
            GPT1Backbone.get_layout_map(object())


if __name__ == "__main__":
    absltest.main()
