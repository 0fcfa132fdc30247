"""Build macros shared by the project's BUILD files."""

KERAS_BACKENDS = ["tensorflow", "jax", "torch"]

def py_test_all_backends(
        name,
        srcs = None,
        backends = KERAS_BACKENDS,
        size = "medium",
        env = {},
        tags = [],
        **kwargs):
    """One `py_test` per Keras backend: `<name>_tensorflow`, `<name>_jax`, `<name>_torch`.

    Each sets `KERAS_BACKEND` for its process; a `test_suite` named `<name>` groups them.

    Args:
      name: base name; the test file defaults to `<name>.py`.
      srcs: test sources (default `[name + ".py"]`); the first is the main file.
      backends: the Keras backends to fan out to.
      size: Bazel test size (TF/JAX/torch imports need "medium" or more).
      env: extra environment variables.
      tags: extra tags; each target is also tagged with its backend.
      **kwargs: passed to every `py_test` (deps, data, shard_count, ...).
    """
    srcs = srcs or [name + ".py"]
    targets = []
    for backend in backends:
        target = "%s_%s" % (name, backend)
        test_env = dict(env)
        test_env["KERAS_BACKEND"] = backend
        native.py_test(
            name = target,
            srcs = srcs,
            main = srcs[0],
            size = size,
            env = test_env,
            tags = tags + [backend],
            python_version = "PY3",
            **kwargs
        )
        targets.append(":" + target)
    native.test_suite(name = name, tests = targets, tags = tags)
