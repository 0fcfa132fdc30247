"""What every binary (`//pipelines:*`, the `gpt1-*` console scripts) shares at its edge.

    from gpt1_keras import cli

    def main(argv):
        ...

    if __name__ == "__main__":
        cli.run(main)

`run(main)` is `absl.app.run(main)` that turns the project's expected errors into one
`ERROR: ...` line on stderr and a non-zero exit instead of a traceback:

| error                                    | exit |
| ---------------------------------------- | ---- |
| `app.UsageError` (bad flag)              | 1, with absl's usage hint |
| `gpt1_keras.errors.UserError` and subclasses (bad data, bad setting, directory in use, checkpoint not written, a missing extra such as `KERAS_BACKEND=jax` without the `jax` extra) | 2 |
| `FileNotFoundError`, `IsADirectoryError`, `NotADirectoryError`, `PermissionError` | 2 |
| `OSError` ENOSPC / EDQUOT / EROFS (disk full, quota, read-only) | 2 |
| `NonFiniteLossError` from training        | 3 |
| `--help` (absl itself exits 1)            | 0 |

Anything else is a bug and keeps its traceback.

The same `main` runs as `python pipelines/x.py` (Bazel) and as a console script
(`gpt1-x`, whose entry point calls `console_main()` of the installed module
`gpt1_keras.pipelines.x`): `run` makes `--help` list the binary's flags either way.
"""

import errno
import importlib
import sys

from absl import app
from absl import flags

from gpt1_keras import extras
from gpt1_keras.errors import UserError

EXIT_USER_ERROR = 2
EXIT_NON_FINITE = 3

_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def error_line(e):
    """The one line a binary prints for an expected error `e`, or None for a bug."""
    if isinstance(e, UserError):
        return str(e)
    if isinstance(e, (FileNotFoundError, IsADirectoryError, NotADirectoryError,
                      PermissionError)):
        name = f" ({e.filename})" if getattr(e, "filename", None) else ""
        return f"{e.strerror or e}{name}" if e.strerror else str(e)
    if isinstance(e, OSError) and e.errno in _DISK_ERRNOS:
        name = f" while writing {e.filename}" if e.filename else ""
        return f"{e.strerror}{name}: free some space (or fix the mount) and rerun to resume."
    return None


def _is_non_finite(e):
    # Checked by name: importing the trainer here would import Keras in every binary.
    return type(e).__name__ == "NonFiniteLossError"


def _guarded(main):
    def wrapped(argv):
        try:
            return main(argv)
        except app.UsageError:
            raise
        except Exception as e:  # noqa: BLE001 (expected errors become one line)
            line = str(e) if _is_non_finite(e) else error_line(e)
            if line is None:
                raise
            print(f"ERROR: {line}", file=sys.stderr, flush=True)
            sys.exit(EXIT_NON_FINITE if _is_non_finite(e) else EXIT_USER_ERROR)

    return wrapped


def _adopt_main_module_flags(main):
    # absl's --help lists the flags of the module named sys.argv[0]: that is the
    # binary's own file under `python x.py`, but a console script's wrapper when
    # installed. Show the flags of the module that defines `main` in both cases.
    module = getattr(main, "__module__", "__main__")
    if module in ("__main__", sys.argv[0]):
        return
    # absl's usage text is __main__'s docstring: the wrapper's is none, or (for a
    # venv path too long for a shebang) pip's `exec` trampoline.
    main_module = sys.modules.get("__main__")
    if main_module is not None:
        main_module.__doc__ = sys.modules[module].__doc__
    for flag in flags.FLAGS.get_key_flags_for_module(module):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def _console_script(binary):
    """The entry point of the console script `gpt1-<binary>` (`pyproject.toml`).

    A backend that is not installed (`KERAS_BACKEND=jax` without the `jax` extra)
    is one `ERROR:` line naming the extra, checked before the binary's module (which
    imports Keras, and so the backend) is imported.
    """
    def main():
        backend = extras.missing_backend()
        if backend is not None:
            print(f"ERROR: {extras.missing_backend_error(backend)}", file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR)
        importlib.import_module(f"gpt1_keras.pipelines.{binary}").console_main()

    main.__name__ = f"{binary}_main"
    return main


pretrain_main = _console_script("pretrain")
finetune_main = _console_script("finetune")
convert_main = _console_script("convert")
export_main = _console_script("export")
evaluate_main = _console_script("evaluate")

_HELP_FLAGS = ("-?", "-h", "-help", "--help", "--helpshort", "--helpfull", "--helpxml")


def run(main, **kwargs):
    """`absl.app.run(main)` with the project's expected errors as one line (see above).

    `--help` (and absl's other help flags) exits 0, not absl's 1: the help asked for
    was printed.
    """
    _adopt_main_module_flags(main)
    try:
        app.run(_guarded(main), **kwargs)
    except SystemExit as e:
        argv = sys.argv[1:sys.argv.index("--")] if "--" in sys.argv else sys.argv[1:]
        if e.code == 1 and any(arg in _HELP_FLAGS for arg in argv):
            sys.exit(0)
        raise
