"""Backend-aware data parallelism for the trainer.

`make_distribution(name)` returns a `Distribution` that the trainer uses the same way
on every backend: `scope()` around model and optimizer creation, `dataset(...)` for
the (sharded, positioned) input, `num_replicas`, `num_input_pipelines`, `is_chief`,
and `check(batch_size, jit_compile)` for the settings it cannot run.

- TensorFlow backend: a `tf.distribute` strategy (see `tf_distribute`): `"default"`,
  `"mirrored"`, `"multi_worker"` (from `TF_CONFIG`), `"tpu"`.
- JAX backend: `"default"`, or `"mirrored"`/`"data_parallel"` =
  `keras.distribution.DataParallel` over all local JAX devices (set
  `XLA_FLAGS=--xla_force_host_platform_device_count=N` for N CPU devices). It is
  active only inside `scope()` / `fit_scope()`, never set globally, so a later
  one-device run in the same process stays on one device.
- torch backend: `"default"` only.
"""

import contextlib
import dataclasses

import keras

from gpt1_keras.errors import ConfigError

STRATEGIES = ("default", "mirrored", "data_parallel", "multi_worker", "tpu")


@dataclasses.dataclass
class Distribution:
    """How training is spread over devices; build with `make_distribution`.

    Attributes:
        name: the strategy name.
        num_replicas: replicas in sync (the global batch is split between them).
        is_chief: whether this process writes checkpoints and artifacts.
        num_input_pipelines: input pipelines (processes) reading the data; each
            reads a disjoint 1/num_input_pipelines of the windows.
        task: this process in the cluster, e.g. `"worker-1"` (`"chief"` for a
            single-process strategy).
        tf_strategy: the `tf.distribute.Strategy` on the TensorFlow backend, else None.
        keras_distribution: the `keras.distribution.Distribution` on the JAX
            backend, else None.
    """

    name: str
    num_replicas: int = 1
    is_chief: bool = True
    num_input_pipelines: int = 1
    task: str = "chief"
    tf_strategy: object = None
    keras_distribution: object = None

    def scope(self):
        """The context to create the model and optimizer in."""
        if self.tf_strategy is not None:
            return self.tf_strategy.scope()
        return self.fit_scope()

    def fit_scope(self):
        """The context to call `fit` in (Keras' JAX trainer shards batches and
        compiles the step for the distribution active at call time)."""
        if self.keras_distribution is not None:
            return self.keras_distribution.scope()
        return contextlib.nullcontext()

    def check(self, batch_size, jit_compile):
        """Raises `ConfigError` naming the setting this distribution cannot run with.

        - `batch_size` (global) must split evenly over the replicas.
        - On JAX with a `keras.distribution`, `jit_compile` must be on: Keras' JAX
          trainer without it runs the step op by op, and with arrays sharded over
          XLA:CPU devices those single-op programs' all-reduces intermittently
          deadlock (XLA aborts: "Expected 2 threads to join the rendezvous, but only
          1 of them arrived"). The compiled step does not.
        """
        if batch_size % self.num_replicas:
            raise ConfigError(
                f"batch_size={batch_size} is not divisible by the {self.num_replicas} "
                f"replicas of strategy={self.name}."
            )
        if self.keras_distribution is not None and not jit_compile:
            raise ConfigError(
                f"jit_compile=False with strategy={self.name} on the JAX backend: it needs "
                "a compiled train step (jit_compile=True); the op-by-op step deadlocks in "
                "XLA's cross-device all-reduce."
            )

    def prepare_model(self, model):
        """Applies strategy-specific fixes to a freshly built model."""
        if self.tf_strategy is not None and self.name == "multi_worker":
            from gpt1_keras.training import tf_distribute

            tf_distribute.fix_multi_worker_symbolic_build(model, self.tf_strategy)
        elif self.tf_strategy is not None and self.name != "default":
            from gpt1_keras.training import tf_distribute

            # Keras would otherwise read a batch before training, moving seeded
            # shuffles to their second permutation (see `fix_symbolic_build`).
            tf_distribute.fix_symbolic_build(model)
        return model

    def dataset(self, dataset_fn, skip_steps=0, take_steps=None):
        """Input for `fit`/`evaluate` from `dataset_fn(input_context)`.

        `dataset_fn(None)` must return global batches; with a context it must return
        that pipeline's per-replica batches. The result starts after `skip_steps`
        global batches; with `take_steps`, it repeats its first `take_steps` batches.
        """
        if self.tf_strategy is not None and self.name != "default":
            from gpt1_keras.training import tf_distribute

            return tf_distribute.distribute_per_replica(
                self.tf_strategy, dataset_fn, skip_steps, take_steps
            )
        ds = dataset_fn(None)
        if skip_steps:
            ds = ds.skip(skip_steps)
        if take_steps is not None:
            ds = ds.take(take_steps).repeat()
        return ds


def make_distribution(name="default", tpu_address=None):
    """Builds the `Distribution` for the current Keras backend; see the module docstring."""
    backend = keras.backend.backend()
    if name not in STRATEGIES:
        raise ConfigError(
            f"strategy={name!r} is unknown; expected one of {STRATEGIES}."
        )
    if backend == "tensorflow":
        from gpt1_keras.training import tf_distribute

        tf_name = "mirrored" if name == "data_parallel" else name
        strategy = tf_distribute.make_strategy(tf_name, tpu_address)
        pipelines, task = 1, "chief"
        if tf_name == "multi_worker":
            tf_config = tf_distribute.read_tf_config()
            cluster = tf_config["cluster"]
            pipelines = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
            task = f"{tf_config['task']['type']}-{tf_config['task']['index']}"
        return Distribution(
            name=tf_name,
            num_replicas=strategy.num_replicas_in_sync,
            is_chief=tf_distribute.is_chief(strategy),
            num_input_pipelines=pipelines,
            task=task,
            tf_strategy=strategy,
        )
    if backend == "jax":
        if name == "default":
            return Distribution(name="default")
        if name in ("mirrored", "data_parallel"):
            import jax

            devices = keras.distribution.list_devices()
            return Distribution(
                name="data_parallel",
                num_replicas=len(devices),
                is_chief=jax.process_index() == 0,
                keras_distribution=keras.distribution.DataParallel(devices=devices),
            )
        raise ConfigError(
            f"strategy={name!r} needs the TensorFlow backend; on JAX use 'default' or "
            "'data_parallel'."
        )
    if name != "default":
        raise ConfigError(
            f"strategy={name!r} is not available on the {backend} backend; use 'default' "
            "(or the TensorFlow/JAX backend for data parallelism)."
        )
    return Distribution(name="default")
