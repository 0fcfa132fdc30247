"""`tf.distribute` strategies for training on the TensorFlow backend (TF-only module).

- `"default"`: the default strategy (one device).
- `"mirrored"`: `MirroredStrategy` over all local devices (GPUs, or logical CPU
  devices made with `split_cpu`).
- `"multi_worker"`: `MultiWorkerMirroredStrategy`, cluster from the `TF_CONFIG`
  environment variable (every worker runs the same program with its own
  `task.index`).
- `"tpu"`: `TPUStrategy` on the TPU at `tpu_address` (`"local"` for a TPU VM).
"""

import json
import os

import tensorflow as tf

from gpt1_keras.errors import ConfigError

TF_STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def split_cpu(num_devices):
    """Splits the first CPU into `num_devices` logical devices (before TF starts).

    Lets `MirroredStrategy` run with several replicas on one CPU (tests, debugging).
    """
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * num_devices
    )


def read_tf_config():
    """Parses and checks `TF_CONFIG`; errors name the variable and the problem."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError(
            "--strategy=multi_worker needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
            '"task": {"type": "worker", "index": 0}}'
        )
    try:
        config = json.loads(raw)
    except ValueError as e:
        raise ConfigError(
            f"TF_CONFIG is not valid JSON ({e}). Received: TF_CONFIG={raw}") from None
    try:
        cluster = config["cluster"]
        workers = cluster["worker"]
        task = config["task"]
        task_type, index = task["type"], task["index"]
    except (KeyError, TypeError) as e:
        raise ConfigError(
            f"TF_CONFIG lacks {e} (it needs cluster.worker, task.type and task.index). "
            f"Received: TF_CONFIG={raw}") from None
    if not isinstance(workers, list) or not workers:
        raise ConfigError(f"TF_CONFIG lists no workers (cluster.worker must be a non-empty "
                          f"list of host:port). Received: TF_CONFIG={raw}")
    tasks = cluster.get(task_type)
    if not isinstance(tasks, list):
        raise ConfigError(f"TF_CONFIG task.type={task_type!r} is not a job of the cluster "
                          f"{sorted(cluster)}. Received: TF_CONFIG={raw}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(tasks):
        raise ConfigError(
            f"TF_CONFIG task.index={index!r} is out of range: cluster.{task_type} has "
            f"{len(tasks)} task(s), so it must be 0..{len(tasks) - 1}. Received: TF_CONFIG={raw}")
    return config


def make_strategy(name="default", tpu_address=None):
    """Builds a `tf.distribute.Strategy` by name (see the module docstring)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        read_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        if not tpu_address:
            raise ConfigError(
                "--strategy=tpu needs --tpu (a TPU name, grpc:// address or 'local').")
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ConfigError(
        f"Unknown strategy; expected one of {TF_STRATEGIES}. Received: strategy={name!r}"
    )


def is_chief(strategy):
    """True on the process that writes checkpoints and artifacts.

    The chief is task `chief` if the cluster has one, else `worker` 0; single-process
    strategies are always chief.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def distribute_per_replica(strategy, dataset_fn, skip_steps=0, take_steps=None):
    """A `DistributedDataset` from `dataset_fn(input_context)`, positioned at a step.

    `dataset_fn` returns per-replica batches for its input pipeline (e.g.
    `make_lm_dataset(..., input_context=ctx)`). Each global step takes one batch per
    local replica from each pipeline, so skipping `skip_steps` global steps skips
    `skip_steps * replicas_per_pipeline` batches. `take_steps` (then repeated)
    pins the dataset to the same first `take_steps` global batches on every pass
    (validation).
    """

    def fn(input_context):
        per_pipeline = max(
            input_context.num_replicas_in_sync // input_context.num_input_pipelines, 1
        )
        ds = dataset_fn(input_context)
        if skip_steps:
            ds = ds.skip(skip_steps * per_pipeline)
        if take_steps is not None:
            ds = ds.take(take_steps * per_pipeline).repeat()
        return ds

    return strategy.distribute_datasets_from_function(fn)


def in_multi_replica_context():
    """True inside `strategy.run` of a strategy with more than one replica."""
    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return False
    return tf.distribute.get_replica_context().num_replicas_in_sync > 1


def all_reduce_then_clip_update(optimizer, grads, trainable_variables, learning_rate):
    """The TF backend's distributed update step, with global-norm clipping moved after
    the gradient all-reduce (Keras 3.15 clips the per-replica gradients instead).

    Mirrors `keras/src/backend/tensorflow/optimizer.py::_backend_update_step`.
    """
    from keras.src.optimizers.base_optimizer import clip_by_global_norm

    grads_and_vars = optimizer._all_reduce_sum_gradients(
        list(zip(grads, _tf_variables(trainable_variables))))
    grads = clip_by_global_norm([g for g, _ in grads_and_vars], optimizer.global_clipnorm)
    _apply_update(optimizer, grads, [v for _, v in grads_and_vars], learning_rate)


def update_without_all_reduce(optimizer, grads, trainable_variables, learning_rate):
    """The TF backend's update step for one replica: Keras' step minus its all-reduce.

    Keras 3.15 all-reduces the gradients even with one replica, where the sum is the
    identity. Traced in a train step, `ReplicaContext.all_reduce` wraps itself in
    `tf.custom_gradient`, which registers a gradient function in TF's process-wide
    gradient registry and never removes it; that function holds the traced step's
    graph and, through it, the model's weights and optimizer slots. Every model trained
    in a process stayed in memory (~375 MB per `gpt1_small` fine-tuning run, so a
    sweep or the paper driver grew until the machine ran out). Same update otherwise.

    Mirrors `keras/src/backend/tensorflow/optimizer.py::_backend_update_step`.
    """
    _apply_update(optimizer, grads, _tf_variables(trainable_variables), learning_rate)


def _tf_variables(variables):
    """Keras variables -> the `tf.Variable`s under them (others unchanged)."""
    import keras

    return [v.value if isinstance(v, keras.Variable) else v for v in variables]


def _apply_update(optimizer, grads, variables, learning_rate):
    """Keras' per-variable update of the TF backend, in the strategy's merge call."""
    tf.__internal__.distribute.interim.maybe_merge_call(
        optimizer._distributed_tf_update_step,
        optimizer._distribution_strategy,
        list(zip(grads, variables)),
        learning_rate,
    )


def _one_replica_spec(spec):
    """The `tf.TypeSpec` of one replica's value (a `PerReplicaSpec` holds one per replica)."""
    value_specs = getattr(spec, "_value_specs", None)
    return value_specs[0] if value_specs else spec


def fix_symbolic_build(model):
    """Builds a model for `fit`/`evaluate` under a strategy without reading the data.

    Keras 3.15's TF trainer, when the model was made in a strategy's scope, starts
    every `fit`/`evaluate` with `_maybe_symbolic_build`, which opens an iterator on
    the distributed dataset and takes one batch, only to learn its shapes and
    dtypes. That extra pass is not free: a seeded
    `shuffle(reshuffle_each_iteration=True)` (every fine-tuning task dataset) gives
    the training iterator opened next its *second* permutation, so a mirrored run
    trained on other batches than one device (whose trainer builds lazily, from the
    first training batch) and its weights differed by a whole Adam step. This
    instance-level override takes the shapes and dtypes from the dataset's
    `element_spec` instead (one replica's), so training sees the first permutation,
    as on one device. It also avoids `strategy.reduce("MEAN", batch)`, which
    `MultiWorkerMirroredStrategy` rejects ("Attempt to convert a value
    ({'token_ids': PerReplica...").
    """
    original = type(model)._maybe_symbolic_build

    def _maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None and data_batch is None:
            dataset = getattr(iterator, "_distributed_dataset", None)
            if dataset is not None:
                data_batch = tf.nest.map_structure(_one_replica_spec, dataset.element_spec)
                iterator = None
        return original(model, iterator=iterator, data_batch=data_batch)

    object.__setattr__(model, "_maybe_symbolic_build", _maybe_symbolic_build)


def fix_multi_worker_symbolic_build(model, strategy):
    """Lets `model.fit` start under `MultiWorkerMirroredStrategy` (Keras 3.15 workaround).

    The symbolic build reads no data (`fix_symbolic_build`; Keras' own
    `strategy.reduce("MEAN", batch)` of the first batch fails under this strategy),
    and each worker's scalar logs get shape [1] (below).
    """
    fix_symbolic_build(model)

    # The same Keras version reduces each worker's scalar logs with
    # `strategy.reduce("MEAN", v, axis=0)`, which fails on rank-0 tensors ("Invalid
    # reduction dimension 0 for input with 0 dimensions"): give the logs shape [1].
    for name in ("train_step", "test_step"):
        step_fn = getattr(type(model), name)

        def rank_one_logs(data, step_fn=step_fn):
            logs = step_fn(model, data)
            return {k: tf.reshape(v, [1]) if getattr(v, "shape", None) == () else v
                    for k, v in logs.items()}

        object.__setattr__(model, name, rank_one_logs)
