"""One run per model directory: an advisory `flock` held for the whole run.

    with RunLock(model_dir, "pretrain"):
        ...  # train, checkpoint, write artifacts

The lock file `<directory>/.gpt1_keras.lock` records the holder's pid, host, purpose
and start time. The lock itself is the kernel's `flock` on that file, so it is released
when the process exits for any reason (SIGKILL included): a killed run never blocks its
own restart. A second `RunLock` on the same directory, from any process on a host that
shares the file system's lock semantics (local disks; NFS with lock support), fails at
once with `RunDirectoryLockedError` naming the holder; with `wait=True` it waits for
the holder to finish instead (what `export` does while it picks a version number).
"""

import datetime
import fcntl
import json
import os
import socket
import time

from absl import logging

from gpt1_keras.errors import RunDirectoryLockedError
from gpt1_keras.errors import UserError

LOCK_NAME = ".gpt1_keras.lock"


class RunLock:
    """An exclusive, process-lifetime lock on a run directory.

    Args:
        directory: the model/output/export directory; created if missing.
        purpose: what holds it (e.g. `"pretrain"`), written into the lock file.
        wait: when another process holds it, wait for it (polling) instead of
            failing at once. Default False: a second run fails fast.
        timeout: with `wait=True`, the most seconds to wait (None: no limit).

    Raises (on `acquire` / `__enter__`):
        RunDirectoryLockedError: another live process holds the directory (and,
            with `wait=True`, still held it after `timeout` seconds).
        UserError: the directory cannot be created or the lock file opened
            (e.g. the path names an existing file).
    """

    _POLL_SECONDS = 0.05

    def __init__(self, directory, purpose="run", wait=False, timeout=None):
        self.directory = os.path.abspath(directory)
        self.purpose = purpose
        self.path = os.path.join(self.directory, LOCK_NAME)
        self.wait = wait
        self.timeout = timeout
        self._fd = None

    def acquire(self):
        if self._fd is not None:
            return self
        try:
            os.makedirs(self.directory, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as e:
            raise UserError(
                f"{self.directory} cannot be used as a {self.purpose} directory: "
                f"{e.strerror} ({e.filename}); pass a directory path."
            ) from None
        except PermissionError as e:
            raise UserError(
                f"{self.directory} is not writable ({e.strerror}); pass a writable directory."
            ) from None
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        logged = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_holder(fd)
                if self.wait and (deadline is None or time.monotonic() < deadline):
                    if not logged:
                        logging.info("Waiting for %s to release %s.", holder, self.path)
                        logged = True
                    time.sleep(self._POLL_SECONDS)
                    continue
                os.close(fd)
                waited = f" after waiting {self.timeout:g} s" if self.wait else ""
                raise RunDirectoryLockedError(
                    f"{self.directory} is in use by {holder}{waited} (lock file "
                    f"{self.path}); wait for that run to finish or stop it, or use "
                    "another directory."
                ) from None
        os.ftruncate(fd, 0)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "purpose": self.purpose,
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self):
        if self._fd is None:
            return
        # The file stays (unlinking it would race a waiting acquirer onto another inode).
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self):
        return self._fd is not None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False


def _read_holder(fd):
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process (no holder recorded yet)"
    return (f"{info.get('purpose', 'a run')} pid {info.get('pid', '?')} on host "
            f"{info.get('host', '?')} since {info.get('started', '?')}")
