"""The Keras internals that `gpt1_keras.training.tf_distribute` and `optimizers` rely on.

Keras 3 does not support `tf.distribute` multi-worker training (keras-team/keras#20585);
our `mirrored` / `multi_worker` strategies work through instance-level patches of
Keras' TensorFlow trainer and optimizer (`fix_symbolic_build`,
`fix_multi_worker_symbolic_build`, `all_reduce_then_clip_update`,
`update_without_all_reduce`, `GPT1Adam._backend_update_step`). Each test pins one
internal they call or replace (that it exists, its signature, and the behaviour the
patch works around), and fails with a message naming it, the patch and the Keras
version, so that a Keras upgrade that changes one fails here, not silently in a
distributed run.
"""

import inspect

import keras
import tensorflow as tf
from absl.testing import absltest
from keras.src.backend.tensorflow import optimizer as tf_optimizer
from keras.src.backend.tensorflow import trainer as tf_trainer


def _changed(internal, patch, detail):
    return (f"Keras {keras.__version__} changed {internal}, which gpt1_keras.training."
            f"{patch} relies on: {detail}. Check the patch against the new Keras code "
            "(or drop it if Keras now does this itself).")


class KerasInternalsTest(absltest.TestCase):
    def assertSignature(self, function, expected, internal, patch):
        got = list(inspect.signature(function).parameters)
        self.assertEqual(got, expected, _changed(internal, patch, f"its parameters are {got}"))

    def test_trainer_symbolic_build(self):
        internal = "TensorFlowTrainer._maybe_symbolic_build"
        patch = "tf_distribute.fix_symbolic_build"
        self.assertSignature(tf_trainer.TensorFlowTrainer._maybe_symbolic_build,
                             ["self", "iterator", "data_batch"], internal, patch)
        # fit and evaluate build from an epoch iterator, which holds the distributed
        # dataset whose element_spec the patch reads instead of a batch.
        for method in ("fit", "evaluate"):
            source = inspect.getsource(getattr(tf_trainer.TensorFlowTrainer, method))
            self.assertIn("self._maybe_symbolic_build(iterator=epoch_iterator)", source,
                          _changed(f"TensorFlowTrainer.{method}", patch,
                                   "it no longer calls _maybe_symbolic_build(iterator=...)"))
        iterator = tf_trainer.TFEpochIterator(
            x=tf.data.Dataset.range(4).batch(2), distribute_strategy=tf.distribute.get_strategy())
        self.assertTrue(hasattr(iterator, "_distributed_dataset"), _changed(
            "TFEpochIterator", patch, "it has no _distributed_dataset attribute"))
        # What the patch avoids: reading a batch and reducing it over the replicas.
        source = inspect.getsource(tf_trainer.TensorFlowTrainer._maybe_symbolic_build)
        self.assertIn("distribute_strategy.reduce(", source, _changed(
            internal, patch, "it no longer reduces a batch over the replicas (the patch "
            "may be unnecessary)"))

    def test_train_and_test_steps(self):
        patch = "tf_distribute.fix_multi_worker_symbolic_build"
        for name in ("train_step", "test_step"):
            self.assertSignature(getattr(tf_trainer.TensorFlowTrainer, name), ["self", "data"],
                                 f"TensorFlowTrainer.{name}", patch)

    def test_optimizer_update_step(self):
        patch = "optimizers.GPT1Adam._backend_update_step / tf_distribute"
        self.assertSignature(tf_optimizer.TFOptimizer._backend_update_step,
                             ["self", "grads", "trainable_variables", "learning_rate"],
                             "TFOptimizer._backend_update_step", patch)
        self.assertSignature(tf_optimizer.TFOptimizer._all_reduce_sum_gradients,
                             ["self", "grads_and_vars"],
                             "TFOptimizer._all_reduce_sum_gradients", patch)
        self.assertSignature(tf_optimizer.TFOptimizer._distributed_tf_update_step,
                             ["self", "distribution", "grads_and_vars", "learning_rate"],
                             "TFOptimizer._distributed_tf_update_step", patch)
        # What `all_reduce_then_clip_update` / `update_without_all_reduce` mirror: Keras'
        # step all-reduces, then applies in a merge call of the optimizer's strategy.
        source = inspect.getsource(tf_optimizer.TFOptimizer._backend_update_step)
        for piece in ("self._all_reduce_sum_gradients(", "maybe_merge_call(",
                      "self._distributed_tf_update_step", "self._distribution_strategy"):
            self.assertIn(piece, source, _changed(
                "TFOptimizer._backend_update_step", patch, f"it no longer uses {piece}"))
        self.assertTrue(hasattr(keras.optimizers.Adam(), "_distribution_strategy"), _changed(
            "TFOptimizer", patch, "an optimizer has no _distribution_strategy"))
        self.assertTrue(callable(tf.__internal__.distribute.interim.maybe_merge_call))

    def test_global_norm_clipping(self):
        from keras.src.optimizers import base_optimizer

        patch = "tf_distribute.all_reduce_then_clip_update"
        self.assertSignature(base_optimizer.clip_by_global_norm, ["value_list", "clip_norm"],
                             "base_optimizer.clip_by_global_norm", patch)
        clipped = base_optimizer.clip_by_global_norm([tf.constant([3.0, 4.0])], 1.0)
        self.assertAlmostEqual(float(tf.norm(clipped[0])), 1.0, places=6)
        # Keras clips per replica, before the backend step's all-reduce (what
        # `GPT1Adam._clip_gradients` skips and the patch does after it).
        source = inspect.getsource(base_optimizer.BaseOptimizer._backend_apply_gradients)
        clip, step = source.find("self._clip_gradients("), source.find("self._backend_update_step(")
        self.assertTrue(0 <= clip < step, _changed(
            "BaseOptimizer._backend_apply_gradients", patch,
            "it no longer clips before calling _backend_update_step"))


if __name__ == "__main__":
    absltest.main()
