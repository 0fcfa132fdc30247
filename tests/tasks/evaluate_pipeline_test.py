"""pipelines/evaluate.py: flags -> config -> library calls."""

import json
import os

import keras
from absl import flags
from absl.testing import absltest
from absl.testing import flagsaver

from gpt1_keras.errors import ConfigError
from pipelines import evaluate
from tests.tasks import fixtures
from tests.tasks.fixtures import DigitTokenizer

FLAGS = flags.FLAGS


class EvaluatePipelineTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        FLAGS.mark_as_parsed()
        keras.utils.set_random_seed(0)
        cls.lm_path = fixtures.save_tiny_lm(absltest.get_default_test_tmpdir())

    def test_evaluate_winograd(self):
        data = self.create_tempdir().full_path
        with open(os.path.join(data, "dev.jsonl"), "w") as f:
            for answer in ("1", "2"):
                f.write(json.dumps({"sentence": "1 _ 2", "option1": "3", "option2": "4 5",
                                    "answer": answer, "qID": f"q{answer}"}) + "\n")
        out = self.create_tempdir().full_path
        with flagsaver.flagsaver(zero_shot="winograd", data_dir=data,
                                 checkpoint=self.lm_path, output_dir=out):
            config = evaluate.parse_flags()
        result = evaluate.run(config, tokenizer=DigitTokenizer())
        self.assertEqual(result["accuracy"], 0.5)  # same prediction for both
        with open(os.path.join(out, "metrics.json")) as f:
            self.assertEqual(json.load(f)["num_examples"], 2)
        with open(os.path.join(out, "predictions_winograd_dev.tsv")) as f:
            lines = f.read().splitlines()
        self.assertEqual([line.split("\t")[0] for line in lines], ["index", "q1", "q2"])
        with flagsaver.flagsaver(zero_shot="sst2", data_dir=data, output_dir=out,
                                 checkpoint=self.lm_path, preset="gpt1_tiny"):
            with self.assertRaisesRegex(ConfigError, "exactly one of --checkpoint"):
                evaluate.parse_flags()


if __name__ == "__main__":
    absltest.main()
