"""RunLock across processes: one holder per directory, released by the kernel on death."""

import os
import signal
import subprocess
import sys
import textwrap
import time

from absl.testing import absltest

from gpt1_keras.errors import RunDirectoryLockedError
from gpt1_keras.errors import UserError
from gpt1_keras.run_lock import RunLock

# A child that takes the lock, says so on stdout, then waits for a line on stdin (or
# to be killed), then for `delay` more seconds, before releasing it.
_HOLDER = textwrap.dedent("""
    import sys, time
    from gpt1_keras.run_lock import RunLock
    lock = RunLock(sys.argv[1], "pretrain").acquire()
    print("HELD", flush=True)
    sys.stdin.readline()
    time.sleep(float(sys.argv[2]))
    lock.release()
    print("RELEASED", flush=True)
""")


def _start_holder(test, directory, delay=0.0):
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, directory, str(delay)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    line = child.stdout.readline()  # Blocks until the child holds the lock.
    if line.strip() != "HELD":
        child.kill()
        raise AssertionError(f"the holder did not take the lock: {line!r}")
    test.addCleanup(child.stdout.close)
    test.addCleanup(child.stdin.close)
    test.addCleanup(child.wait)
    test.addCleanup(child.kill)
    return child


class RunLockTest(absltest.TestCase):
    def test_second_process_fails_at_once_naming_the_holder(self):
        directory = self.create_tempdir().full_path
        child = _start_holder(self, directory)
        start = time.monotonic()
        with self.assertRaises(RunDirectoryLockedError) as caught:
            RunLock(directory, "finetune").acquire()
        self.assertLess(time.monotonic() - start, 2.0)  # no waiting by default
        message = str(caught.exception)
        self.assertIn(f"pid {child.pid}", message)
        self.assertIn(f"host {os.uname().nodename}", message)
        self.assertIn("pretrain", message)
        self.assertIn(directory, message)
        # The first holder keeps it: a failed attempt changes nothing, and only
        # once it releases can another process take it.
        with self.assertRaisesRegex(RunDirectoryLockedError, f"pid {child.pid}"):
            RunLock(directory, "finetune").acquire()
        child.stdin.write("\n")
        child.stdin.flush()
        self.assertEqual(child.stdout.readline().strip(), "RELEASED")
        self.assertEqual(child.wait(timeout=60), 0)
        with RunLock(directory, "finetune") as lock:
            self.assertTrue(lock.held)

    def test_sigkilled_holder_releases_the_lock(self):
        directory = self.create_tempdir().full_path
        child = _start_holder(self, directory)
        with self.assertRaises(RunDirectoryLockedError):
            RunLock(directory).acquire()
        os.kill(child.pid, signal.SIGKILL)
        self.assertEqual(child.wait(timeout=60), -signal.SIGKILL)
        with RunLock(directory, "pretrain") as lock:  # the restart
            self.assertTrue(lock.held)
            with open(lock.path) as f:
                self.assertIn(f'"pid": {os.getpid()}', f.read())

    def test_wait_takes_the_lock_once_the_holder_releases_it(self):
        directory = self.create_tempdir().full_path
        child = _start_holder(self, directory, delay=1.0)
        with self.assertRaisesRegex(RunDirectoryLockedError, r"after waiting 0\.2 s"):
            RunLock(directory, wait=True, timeout=0.2).acquire()
        # The holder releases it 1 s after this line, while this process waits.
        child.stdin.write("\n")
        child.stdin.flush()
        start = time.monotonic()
        with RunLock(directory, "export", wait=True, timeout=60) as lock:
            self.assertTrue(lock.held)
            self.assertGreater(time.monotonic() - start, 0.5)
            self.assertEqual(child.stdout.readline().strip(), "RELEASED")
        self.assertEqual(child.wait(timeout=60), 0)

    def test_same_process_twice_is_refused(self):
        directory = self.create_tempdir().full_path
        with RunLock(directory):
            with self.assertRaises(RunDirectoryLockedError):
                RunLock(directory).acquire()
        with RunLock(directory):  # released on exit
            pass

    def test_directory_that_is_a_file_or_under_a_file(self):
        path = self.create_tempfile("model.keras").full_path
        for directory in (path, os.path.join(path, "run")):
            with self.assertRaises(UserError) as caught:
                RunLock(directory, "pretrain").acquire()
            message = str(caught.exception)
            self.assertIn(directory, message)
            self.assertIn("pass a directory path", message)
            self.assertNotIsInstance(caught.exception, RunDirectoryLockedError)

    def test_missing_directory_is_created(self):
        directory = os.path.join(self.create_tempdir().full_path, "a", "b")
        with RunLock(directory) as lock:
            self.assertTrue(os.path.isfile(lock.path))


if __name__ == "__main__":
    absltest.main()
