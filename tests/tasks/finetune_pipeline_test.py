"""pipelines/finetune.py: flags -> config -> library calls."""

import json
import os

import keras
from absl import flags
from absl.testing import absltest
from absl.testing import flagsaver

from pipelines import finetune
from tests.data.fake_tokenizer import FakeTokenizer
from tests.tasks import fixtures

FLAGS = flags.FLAGS


class FinetunePipelineTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        FLAGS.mark_as_parsed()
        keras.utils.set_random_seed(0)
        cls.lm_path = fixtures.save_tiny_lm(absltest.get_default_test_tmpdir())

    def test_finetune_csv_flags(self):
        data = self.create_tempdir().full_path
        with open(os.path.join(data, "train.csv"), "w") as f:
            f.write("a,b,y\n1 2,3,yes\n4,5 6,no\n1,2,yes\n4,5,no\n")
        with open(os.path.join(data, "dev.csv"), "w") as f:
            f.write("a,b,y\n1 3,3,yes\n4,6,no\n")
        out = self.create_tempdir().full_path
        with flagsaver.flagsaver(task="csv", data_dir=data, output_dir=out,
                                 init_checkpoint=self.lm_path, text_columns=["a", "b"],
                                 label_column="y", batch_size=2, epochs=1,
                                 sequence_length=12, layers_to_transfer=0):
            name, config, csv_flags = finetune.parse_flags()
            task = finetune.make_task(name, config, csv_flags)
        self.assertEqual((config.learning_rate, config.batch_size, config.lm_coef,
                          config.classifier_dropout, config.warmup_fraction),
                         (6.25e-5, 2, 0.5, 0.1, 0.002))
        self.assertEqual(config.layers_to_transfer, 0)
        self.assertEqual((task.model_task, task.labels), ("entailment", ("no", "yes")))
        from gpt1_keras.tasks.finetuning import finetune as run_finetune

        results = run_finetune(dataclasses_replace(config, verbose=0), task,
                               tokenizer=FakeTokenizer())
        self.assertEqual(results["splits"]["dev"]["num_examples"], 2)
        with open(os.path.join(out, "metrics.json")) as f:
            self.assertIn("accuracy", json.load(f)["splits"]["dev"])

    def test_finetune_flag_errors(self):
        with flagsaver.flagsaver(task="sst2", data_dir="/d", output_dir="/o"):
            with self.assertRaisesRegex(Exception, "init_checkpoint.*required"):
                finetune.parse_flags()
        with flagsaver.flagsaver(task="csv", data_dir="/d", output_dir="/o",
                                 no_pretraining=True, text_columns=None):
            with self.assertRaisesRegex(Exception, "--text_columns"):
                finetune.parse_flags()


def dataclasses_replace(config, **changes):
    import dataclasses

    return dataclasses.replace(config, **changes)


if __name__ == "__main__":
    absltest.main()
