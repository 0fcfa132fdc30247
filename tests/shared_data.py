"""Where tests and benchmarks find the read-only real data (`../shared/data`).

Under Bazel the data is a declared input: `WORKSPACE` maps `../shared/data` to the
repository `@shared_data`, and a target lists the datasets it reads,
`data = ["@shared_data//:glue"]` (also `:sst2`, `:story_cloze`, `:books`,
`:tinyshakespeare`), which Bazel puts in its runfiles; so a change of the data
re-runs the tests that read it.

Run directly with Python, the data is `$GPT1_SHARED_DIR/data` when that variable is
set, else `shared/data` beside the clone. A missing file raises (tests must fail,
not skip, when the data is absent).
"""

import os

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPOSITORY = "shared_data"  # the WORKSPACE name of ../shared/data


def _runfiles_dir():
    for var in ("TEST_SRCDIR", "RUNFILES_DIR"):
        if os.environ.get(var):
            return os.environ[var]
    # `bazel run`: this file sits at <runfiles>/<workspace>/tests/shared_data.py.
    candidate = os.path.dirname(_REPO_ROOT)
    if os.path.basename(candidate).endswith(".runfiles"):
        return candidate
    return None


def _location():
    """`(folder, how it was chosen)`, unchecked."""
    override = os.environ.get("GPT1_SHARED_DIR")
    runfiles = _runfiles_dir()
    if override:
        return os.path.join(override, "data"), "GPT1_SHARED_DIR/data"
    if runfiles:
        return os.path.join(runfiles, REPOSITORY), (
            "Bazel's runfiles: list the dataset in the target's "
            "`data = [\"@shared_data//:<dataset>\"]`")
    return (os.path.join(os.path.dirname(_REPO_ROOT), "shared", "data"),
            "`shared/data` beside the clone (or set GPT1_SHARED_DIR=/path/to/shared)")


def data_dir():
    """The data folder: `$GPT1_SHARED_DIR/data`, Bazel's runfiles, or `../shared/data`.

    Raises:
        FileNotFoundError: the folder is missing, with what to do.
    """
    path, how = _location()
    if not os.path.isdir(path):
        raise FileNotFoundError(f"The shared data folder {path} is missing; looked in {how}.")
    return path


def path(*parts, must_exist=True):
    """The path of a shared data file, e.g. `path("glue", "MRPC", "train.tsv")`.

    Args:
        *parts: the path under `data/`.
        must_exist: raise if it is missing (tests); `False` for a flag's default
            that the user may replace.

    Raises:
        FileNotFoundError: naming the file and where it was looked for.
    """
    if not must_exist:
        return os.path.join(_location()[0], *parts)
    full = os.path.join(data_dir(), *parts)
    if not os.path.exists(full):
        hint = ""
        if _runfiles_dir() and not os.environ.get("GPT1_SHARED_DIR"):
            hint = (f" Under Bazel, add \"@shared_data//:{parts[0].split('.')[0]}\" "
                    "(or its dataset) to the target's `data`.")
        raise FileNotFoundError(f"Shared data file {full} is missing.{hint}")
    return full
