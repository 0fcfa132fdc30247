"""pipelines/evaluate.py: flags -> config -> library calls."""

import json
import os

import keras
import numpy as np
from absl import flags
from absl.testing import absltest
from absl.testing import flagsaver

from gpt1_keras.errors import ConfigError
from pipelines import evaluate
from tests import test_case
from tests.data.fake_tokenizer import FakeTokenizer

FLAGS = flags.FLAGS
START = FakeTokenizer.start_token_id

# Winograd schemas in FakeTokenizer's words (decimal numbers are their own ids).
SCHEMAS = [("1 _ 2 3", "4", "5 6"), ("7 8 _ 9", "10", "11"), ("_ 12 13", "14 15", "16"),
           ("17 _ 18", "19", "20 21"), ("22 _ 23 24", "25", "26")]


class EvaluatePipelineTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        FLAGS.mark_as_parsed()
        keras.utils.set_random_seed(0)
        cls.lm = test_case.tiny_lm(FakeTokenizer().vocabulary_size(), num_layers=1)
        test_case.assign_random_weights(cls.lm, seed=1, min_rank=2)
        cls.lm_path = os.path.join(absltest.get_default_test_tmpdir(), "lm.keras")
        cls.lm.save(cls.lm_path)

    def _winograd_choice(self, sentence, options):
        """The option after which the rest of the sentence is likeliest, from the logits."""
        before, after = sentence.split("_")
        rest = [int(w) for w in after.split()]
        scores = []
        for option in options:
            prefix = [START] + [int(w) for w in f"{before}{option}".split()]
            log_probs = test_case.sequence_log_probs(self.lm, prefix + rest)
            scores.append(log_probs[-len(rest):].mean())  # the rest of the sentence
        return int(np.argmax(scores))

    def test_evaluate_winograd(self):
        expected = [self._winograd_choice(s, (a, b)) for s, a, b in SCHEMAS]
        # The data must tell the pipeline from a constant guess.
        self.assertEqual(set(expected), {0, 1})
        # Every answer right but one of the more frequent choice's: accuracy
        # 4/5, which neither a constant guess nor the reversed choice reaches.
        wrong = expected.index(max((0, 1), key=expected.count))
        answers = [1 - p if i == wrong else p for i, p in enumerate(expected)]
        want = 4 / len(SCHEMAS)
        for guess in ([0] * 5, [1] * 5, [1 - p for p in expected]):
            self.assertNotEqual(np.mean(np.array(guess) == answers), want)

        data = self.create_tempdir().full_path
        with open(os.path.join(data, "dev.jsonl"), "w") as f:
            for i, ((sentence, a, b), answer) in enumerate(zip(SCHEMAS, answers)):
                f.write(json.dumps({"sentence": sentence, "option1": a, "option2": b,
                                    "answer": str(answer + 1), "qID": f"q{i}"}) + "\n")
        out = self.create_tempdir().full_path
        with flagsaver.flagsaver(zero_shot="winograd", data_dir=data,
                                 checkpoint=self.lm_path, output_dir=out):
            config = evaluate.parse_flags()
        result = evaluate.run(config, tokenizer=FakeTokenizer())
        self.assertAlmostEqual(result["accuracy"], want)
        with open(os.path.join(out, "metrics.json")) as f:
            written = json.load(f)
        self.assertEqual(written["num_examples"], len(SCHEMAS))
        self.assertAlmostEqual(written["accuracy"], want)
        with open(os.path.join(out, "predictions_winograd_dev.tsv")) as f:
            rows = [line.split("\t") for line in f.read().splitlines()]
        self.assertEqual(rows, [["index", "prediction"]]
                         + [[f"q{i}", str(p)] for i, p in enumerate(expected)])

    def test_checkpoint_or_preset(self):
        data, out = self.create_tempdir().full_path, self.create_tempdir().full_path
        with flagsaver.flagsaver(zero_shot="sst2", data_dir=data, output_dir=out,
                                 checkpoint=self.lm_path, preset="gpt1_tiny"):
            with self.assertRaisesRegex(ConfigError, "exactly one of --checkpoint"):
                evaluate.parse_flags()


if __name__ == "__main__":
    absltest.main()
