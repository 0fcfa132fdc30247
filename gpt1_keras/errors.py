"""The project's expected, user-fixable errors.

Library code raises a `UserError` (or a subclass) for anything the user can fix: a bad
setting, a malformed or missing file, a model directory in use, a full disk. Its
message is one line that names the setting, file, line or tensor at fault and says what
to do. The binaries (`gpt1_keras.cli.run`) print it as one `ERROR:` line and exit
non-zero; any other exception is a bug and keeps its traceback.
"""

import os


class UserError(Exception):
    """An expected error the user can fix; the message is one self-contained line."""


class ConfigError(UserError, ValueError):
    """An invalid setting (a config field or, from a binary, its flag)."""


class RunDirectoryLockedError(UserError):
    """Another live process holds the model directory (see `gpt1_keras.run_lock`)."""


class CheckpointWriteError(UserError, OSError):
    """A checkpoint or artifact could not be written (disk full, read-only, ...).

    The message names the file being written, its directory and the last good
    checkpoint, which is left untouched. Raise it as `CheckpointWriteError(message)`
    or, keeping the cause's errno, `CheckpointWriteError(e.errno, message)`; either
    way `str()` is the message alone.
    """

    def __str__(self):
        return self.strerror if self.strerror else super().__str__()


def write_error(error, target, what=None):
    """The `CheckpointWriteError` for an `OSError` raised while replacing `target`.

    Args:
        error: the `OSError` (its errno is kept).
        target: the file or directory being written; whether it still exists says
            if the previous version survived.
        what: how the message names it (default: `target`).
    """
    kept = ("the previous version is unchanged" if os.path.exists(target)
            else "nothing was written")
    return CheckpointWriteError(
        error.errno,
        f"Could not write {what or target}: {error.strerror or error} ({kept}); free "
        "some space or fix the directory, then rerun.")
