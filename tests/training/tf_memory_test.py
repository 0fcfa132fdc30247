"""On TensorFlow, a model trained with GPT1Adam leaves no traced graph behind once dropped.

Keras' update step all-reduces the gradients even with one replica; traced, TF's
`ReplicaContext.all_reduce` registers a `tf.custom_gradient` function in a process-wide
registry that is never cleared, holding the train step's graph (and the weights it
captured). Every fine-tuning run of a sweep or of the paper driver then stayed in memory.
"""

import gc
import weakref

import keras
import numpy as np
from absl.testing import absltest
from tensorflow.python.framework.func_graph import FuncGraph

from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.training.optimizers import build_optimizer


def _func_graphs():
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, FuncGraph)]


def _train_and_drop(optimizer):
    """Weak references to the graphs `fit` traced for a model that is then dropped."""
    before = {id(g) for g in _func_graphs()}
    keras.utils.set_random_seed(0)
    model = GPT1CausalLM.from_architecture("gpt1_tiny")
    model.compile(optimizer=optimizer, jit_compile=False,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ids = np.random.default_rng(0).integers(0, 100, (4, 9)).astype("int32")
    x = {"token_ids": ids[:, :-1], "padding_mask": np.ones_like(ids[:, :-1])}
    model.fit(x, ids[:, 1:], batch_size=2, epochs=1, verbose=0)
    traced = [weakref.ref(g) for g in _func_graphs() if id(g) not in before]
    del model, optimizer
    gc.collect()
    return traced


class TrainStepReleaseTest(absltest.TestCase):
    def test_gpt1_adam_keeps_no_train_step_alive(self):
        traced = _train_and_drop(build_optimizer(1e-3))
        self.assertNotEmpty(traced)  # `fit` did trace its step.
        alive = [ref().name for ref in traced if ref() is not None]
        self.assertEqual(alive, [])

    def test_repeated_runs_do_not_accumulate(self):
        # What the paper driver does: one model after another in one process.
        for _ in range(3):
            _train_and_drop(build_optimizer(1e-3))
        names = [g.name for g in _func_graphs() if "step_on" in g.name]
        self.assertEqual(names, [])


if __name__ == "__main__":
    absltest.main()
