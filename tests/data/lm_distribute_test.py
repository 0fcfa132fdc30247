"""The LM and task pipelines under `tf.distribute` with 2 logical CPUs."""

import os

import tensorflow as tf

# Must run before anything initialises the TF runtime.
_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _CPU, [tf.config.LogicalDeviceConfiguration()] * 2
)


from gpt1_keras.data import lm_dataset  # noqa: E402
from gpt1_keras.data import task_dataset  # noqa: E402
from tests.data.fake_tokenizer import FakeTokenizer  # noqa: E402


class DistributeTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        self.assertEqual(self.strategy.num_replicas_in_sync, 2)

    def test_lm_replicas_get_distinct_windows(self):
        path = os.path.join(self.create_tempdir().full_path, "a.txt")
        with open(path, "w") as f:
            f.write("\n".join(" ".join(map(str, range(i, i + 5)))
                              for i in range(1, 2000, 5)))
        global_batch, T = 8, 16
        dist = self.strategy.distribute_datasets_from_function(
            lambda ctx: lm_dataset.make_lm_dataset(
                path, FakeTokenizer(), sequence_length=T,
                batch_size=global_batch, seed=0, input_context=ctx))
        seen = []
        for x, y, w in dist:
            ids, masks, ys, ws = (
                self.strategy.experimental_local_results(t)
                for t in (x["token_ids"], x["padding_mask"], y, w)
            )
            self.assertLen(ids, 2)
            self.assertIn("CPU:0", ids[0].device)
            self.assertIn("CPU:1", ids[1].device)
            for r in range(2):
                self.assertEqual(ids[r].shape, (global_batch // 2, T))
                real = masks[r].numpy()[:, 1:]
                self.assertAllEqual(ids[r].numpy()[:, 1:][real],
                                    ys[r].numpy()[:, :-1][real])
                self.assertAllEqual(ws[r], tf.cast(masks[r], tf.float32))
            rows = [tuple(row) for r in range(2) for row in ids[r].numpy()]
            self.assertLen(set(rows), global_batch)  # distinct in the step
            seen += rows
        self.assertLen(set(seen), len(seen))  # never the same window twice
        self.assertGreater(len(seen), 40)

    def test_lm_step_runs_under_strategy(self):
        path = os.path.join(self.create_tempdir().full_path, "a.txt")
        with open(path, "w") as f:
            f.write("\n".join(str(i) for i in range(1, 600)))
        dist = self.strategy.distribute_datasets_from_function(
            lambda ctx: lm_dataset.make_lm_dataset(
                path, FakeTokenizer(), sequence_length=8, batch_size=4,
                seed=0, input_context=ctx))

        @tf.function
        def count(x, y, w):
            def step(x, y, w):  # tokens with weight, per replica
                return tf.reduce_sum(w)
            per_replica = self.strategy.run(step, args=(x, y, w))
            return self.strategy.reduce("SUM", per_replica, axis=None)

        x, y, w = next(iter(dist))
        self.assertEqual(float(count(x, y, w)), 4 * 8)  # the global batch

    def test_task_dataset_replicas(self):
        texts = [str(i) for i in range(1, 33)]
        dist = self.strategy.distribute_datasets_from_function(
            lambda ctx: task_dataset.make_task_dataset(
                (texts, list(range(32))), FakeTokenizer(), "classification",
                sequence_length=4, batch_size=8, drop_remainder=True,
                input_context=ctx))
        labels = []
        for x, y in dist:
            ys = self.strategy.experimental_local_results(y)
            self.assertEqual([t.shape[0] for t in ys], [4, 4])
            labels += [int(v) for t in ys for v in t.numpy()]
        self.assertCountEqual(labels, range(32))


if __name__ == "__main__":
    tf.test.main()
