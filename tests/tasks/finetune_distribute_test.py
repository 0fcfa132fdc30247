"""finetune(strategy="mirrored") over 2 logical CPU devices == one device.

TensorFlow backend: `MirroredStrategy` over 2 logical CPUs, each replica fed its half
of every global batch by the task dataset's `input_context`. Same losses update by
update and the same final weights and predictions, within float32 reduction order.
"""

import tensorflow as tf

# Before TensorFlow initialises its devices: 2 logical CPUs.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import json  # noqa: E402
import os  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
from absl.testing import absltest  # noqa: E402

from gpt1_keras.models import GPT1CausalLM  # noqa: E402
from gpt1_keras.tasks.finetuning import FinetuneConfig  # noqa: E402
from gpt1_keras.tasks.finetuning import finetune  # noqa: E402
from gpt1_keras.tokenizers import GPT1Tokenizer  # noqa: E402


class MirroredFinetuneTest(absltest.TestCase):
    def test_two_replicas_match_one_device(self):
        root = self.create_tempdir().full_path
        keras.utils.set_random_seed(0)
        # No dropout anywhere: replicas would draw other masks than one device.
        checkpoint = os.path.join(root, "lm.keras")
        GPT1CausalLM.from_preset("gpt1_tiny", dropout=0.0).save(checkpoint)
        data = os.path.join(root, "data")
        os.makedirs(data)
        for name, n in (("train.tsv", 8), ("dev.tsv", 4)):
            with open(os.path.join(data, name), "w") as f:
                f.write("sentence\tlabel\n" + "".join(
                    f"{('a fine', 'a dull')[i % 2]} film number {i}\t{1 - i % 2}\n"
                    for i in range(n)))
        tokenizer = GPT1Tokenizer()

        def run(strategy):
            config = FinetuneConfig(
                task="sst2", data_dir=data, output_dir=os.path.join(root, strategy),
                init_checkpoint=checkpoint, batch_size=4, epochs=2, learning_rate=1e-2,
                sequence_length=12, classifier_dropout=0.0, eval_batch_size=4,
                # The auxiliary LM loss is a mean over each replica's tokens, not the
                # global batch's: with unequal lengths it differs by design.
                lm_coef=0.0, strategy=strategy, verbose=0)
            results = finetune(config, tokenizer=tokenizer)
            with open(os.path.join(config.output_dir, "history.jsonl")) as f:
                losses = [json.loads(line)["loss"] for line in f]
            model = keras.saving.load_model(os.path.join(config.output_dir, "model.keras"),
                                            compile=False)
            weights = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
            return results, losses, weights

        two, two_losses, two_weights = run("mirrored")
        one, one_losses, one_weights = run("default")
        self.assertLen(one_losses, 2)  # one entry per epoch of 2 updates
        np.testing.assert_allclose(two_losses, one_losses, rtol=1e-5)
        initial = keras.saving.load_model(checkpoint).backbone.trainable_variables
        moved = max(float(np.abs(keras.ops.convert_to_numpy(a) - b).max())
                    for a, b in zip(initial, one_weights))
        self.assertGreater(moved, 1e-3)  # training changed the weights
        for a, b in zip(one_weights, two_weights):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=2e-6)
        self.assertEqual(two["splits"], one["splits"])
        self.assertEqual(two["train_steps"], 4)


if __name__ == "__main__":
    absltest.main()
