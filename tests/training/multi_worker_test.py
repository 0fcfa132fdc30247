"""Two MultiWorkerMirroredStrategy workers on localhost train in sync."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
from absl.testing import absltest

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _reserve_port():
    """A bound (not listening) SO_REUSEADDR socket on a free port, to hold while the
    workers run.

    Picking a port by binding and closing races with every other process on the machine
    (the kernel may hand the port out again before the worker binds it). Held open, the
    port is never handed out by the kernel to anyone else (`bind(("", 0))` and outgoing
    connections skip bound ports), yet TF's gRPC server still binds and listens on it:
    gRPC sets SO_REUSEADDR on its own sockets, and Linux lets two SO_REUSEADDR sockets
    share a port while neither listens. (Measured: without SO_REUSEADDR on the held
    socket, `tf.distribute.Server` fails with "Could not start gRPC server ... Address
    already in use"; with it, the server starts and accepts connections.) The held socket
    is not inherited by the workers (`subprocess` closes other descriptors).
    """
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


class MultiWorkerTest(absltest.TestCase):
    def test_two_workers_end_with_identical_weights(self):
        tmp = self.create_tempdir().full_path
        model_dir = os.path.join(tmp, "run")
        held = [_reserve_port() for _ in range(2)]
        for s in held:
            self.addCleanup(s.close)
        workers = [f"127.0.0.1:{s.getsockname()[1]}" for s in held]
        procs, outputs = [], []
        for index in range(2):
            env = dict(os.environ, PYTHONPATH=_REPO_ROOT, KERAS_BACKEND="tensorflow",
                       TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                             "task": {"type": "worker", "index": index}}))
            outputs.append(os.path.join(tmp, f"weights{index}.npz"))
            procs.append(subprocess.Popen(
                [sys.executable, os.path.join(_REPO_ROOT, "tests", "training",
                                              "multi_worker_worker.py"), model_dir, outputs[-1]],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            ))
        logs = []
        try:
            for proc in procs:
                logs.append(proc.communicate(timeout=400)[0])
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
        for proc, log in zip(procs, logs):
            self.assertEqual(proc.returncode, 0, log[-4000:])

        chief, other = (np.load(path) for path in outputs)
        self.assertEqual((int(chief["step"]), int(other["step"])), (4, 4))
        self.assertEqual((bool(chief["is_chief"]), bool(other["is_chief"])), (True, False))
        self.assertEqual(int(chief["replicas"]), 2)
        names = [k for k in chief.files if k.startswith("w")]
        self.assertNotEmpty(names)
        for name in names:
            np.testing.assert_array_equal(chief[name], other[name], err_msg=name)
        # Only the chief wrote checkpoints (at steps 2 and 4).
        self.assertEqual(sorted(os.listdir(os.path.join(model_dir, "checkpoints"))),
                         ["ckpt-000000002.json", "ckpt-000000002.npz",
                          "ckpt-000000004.json", "ckpt-000000004.npz"])


if __name__ == "__main__":
    absltest.main()
