"""The project's expected, user-fixable errors.

Library code raises a `UserError` (or a subclass) for anything the user can fix: a bad
setting, a malformed or missing file, a model directory in use, a full disk. Its
message is one line that names the setting, file, line or tensor at fault and says what
to do. The binaries (`gpt1_keras.cli.run`) print it as one `ERROR:` line and exit
non-zero; any other exception is a bug and keeps its traceback.
"""


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
