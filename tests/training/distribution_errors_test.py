"""`make_distribution`'s refusals: each bad strategy setting is one `ConfigError`
naming the problem (so the binaries print it as one `ERROR:` line), on every backend.

TensorFlow: `TF_CONFIG` missing, not JSON, lacking a field, with no workers, a task
type not in the cluster or a task index out of range (all refused before
`MultiWorkerMirroredStrategy` would try to reach the cluster), `tpu` without a TPU
address. JAX: the TF-only strategies. torch: any strategy but `default`.
"""

import json
import os
from unittest import mock

import keras
from absl.testing import absltest

from gpt1_keras.errors import ConfigError
from gpt1_keras.training import make_distribution

_BACKEND = keras.backend.backend()
_WORKERS = ["127.0.0.1:1", "127.0.0.1:2"]


def _tf_config(task_type="worker", index=0, cluster=None):
    return json.dumps({"cluster": {"worker": _WORKERS} if cluster is None else cluster,
                       "task": {"type": task_type, "index": index}})


class DistributionErrorsTest(absltest.TestCase):
    def assert_refused(self, name, expected, tf_config=None, tpu_address=None):
        env = {} if tf_config is None else {"TF_CONFIG": tf_config}
        with mock.patch.dict(os.environ, env):
            if tf_config is None:
                os.environ.pop("TF_CONFIG", None)
            with self.assertRaises(ConfigError) as raised:
                make_distribution(name, tpu_address=tpu_address)
        message = str(raised.exception)
        self.assertNotIn("\n", message)
        self.assertIn(expected, message)
        return message

    def test_unknown_strategy(self):
        self.assert_refused("mirrorred", "strategy='mirrorred' is unknown; expected one of")

    @absltest.skipIf(_BACKEND != "tensorflow", "TF_CONFIG is read on the TF backend only")
    def test_tf_config_errors(self):
        cases = [
            (None, "--strategy=multi_worker needs the TF_CONFIG environment variable"),
            ('{"cluster": {"worker": [', "TF_CONFIG is not valid JSON (Expecting value"),
            ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG lacks 'task'"),
            ('["a:1"]', "TF_CONFIG lacks"),
            (_tf_config(cluster={"worker": []}), "TF_CONFIG lists no workers"),
            (_tf_config(task_type="chief"),
             "TF_CONFIG task.type='chief' is not a job of the cluster ['worker']"),
            (_tf_config(index=2), "TF_CONFIG task.index=2 is out of range: cluster.worker "
                                  "has 2 task(s), so it must be 0..1"),
            (_tf_config(index=-1), "TF_CONFIG task.index=-1 is out of range"),
            (_tf_config(index="0"), "TF_CONFIG task.index='0' is out of range"),
        ]
        for tf_config, expected in cases:
            with self.subTest(tf_config=tf_config):
                message = self.assert_refused("multi_worker", expected, tf_config)
                if tf_config is not None:
                    self.assertIn(f"Received: TF_CONFIG={tf_config}", message)

    @absltest.skipIf(_BACKEND != "tensorflow", "TPUStrategy is TF-only")
    def test_tpu_needs_an_address(self):
        self.assert_refused("tpu", "--strategy=tpu needs --tpu")

    @absltest.skipIf(_BACKEND != "jax", "JAX backend")
    def test_tf_only_strategies_on_jax(self):
        for name in ("multi_worker", "tpu"):
            with self.subTest(name):
                self.assert_refused(name, f"strategy={name!r} needs the TensorFlow backend; "
                                          "on JAX use 'default' or 'data_parallel'",
                                    tf_config=_tf_config())

    @absltest.skipIf(_BACKEND != "torch", "torch backend")
    def test_only_default_on_torch(self):
        for name in ("mirrored", "data_parallel", "multi_worker", "tpu"):
            with self.subTest(name):
                self.assert_refused(name, f"strategy={name!r} is not available on the torch "
                                          "backend; use 'default'")


if __name__ == "__main__":
    absltest.main()
