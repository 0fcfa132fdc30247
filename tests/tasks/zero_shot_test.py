"""Zero-shot heuristics against direct log-softmax computations on a tiny LM."""

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.evaluation import zero_shot
from gpt1_keras.tasks import metrics
from tests import test_case
from tests.data.fake_tokenizer import FakeTokenizer

START = FakeTokenizer.start_token_id


class ZeroShotTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        keras.utils.set_random_seed(0)
        cls.tok = FakeTokenizer()
        cls.lm = test_case.tiny_lm(cls.tok.vocabulary_size(), max_sequence_length=12)

    def _direct(self, ids):
        """log p(ids[t] | ids[:t]) for t >= 1, from the logits."""
        return test_case.sequence_log_probs(self.lm, ids)

    def test_span_scores_average_only_the_span(self):
        got = zero_shot.span_log_probs(self.lm, [[START, 1, 2], [START]],
                                       [[3, 4], [5, 6, 7]], batch_size=1)
        np.testing.assert_allclose(got[0], self._direct([START, 1, 2, 3, 4])[-2:].mean(),
                                   rtol=1e-5)
        np.testing.assert_allclose(got[1], self._direct([START, 5, 6, 7]).mean(), rtol=1e-5)
        # Too long for the 12-token context: the last 12 tokens are kept.
        long = zero_shot.span_log_probs(self.lm, [[START] + [1] * 20], [[3, 4]])
        np.testing.assert_allclose(long[0], self._direct([1] * 10 + [3, 4])[-2:].mean(),
                                   rtol=1e-5)

    def test_cola_scores_and_threshold(self):
        scores = zero_shot.cola_scores(self.lm, self.tok, ["1 2 3", "4"])
        np.testing.assert_allclose(scores[1], self._direct([START, 4]).mean(), rtol=1e-5)
        labels = np.array([0, 0, 1, 1, 1])
        fake = np.array([-5.0, -4.0, -3.0, -2.0, -1.0])
        # The only threshold that separates the classes: the midpoint -3.5.
        self.assertEqual(zero_shot.fit_threshold(fake, labels), -3.5)
        # One class only: every threshold ties (MCC 0); the lowest is kept.
        self.assertEqual(
            zero_shot.fit_threshold(np.array([-1.0, -2.0]), np.array([0, 0])), -3.0)

    def test_sst2_compares_the_two_words_after_very(self):
        preds, lp = zero_shot.sst2_predict(self.lm, self.tok, ["1 2", "8"], cue="7",
                                           words=("3", "4"))
        for i, review in enumerate([[1, 2], [8]]):
            ids = [START] + review + [7]
            logits = test_case.to_numpy(self.lm(
                {"token_ids": np.array([ids], "int32"),
                 "padding_mask": np.ones((1, len(ids)), "int32")}))[0, -1]
            expected = test_case.log_softmax(logits)[[3, 4]]
            np.testing.assert_allclose(lp[i], expected, rtol=1e-5)
            self.assertEqual(preds[i], int(expected[1] > expected[0]))

    def test_multiple_choice_and_winograd(self):
        preds, scores = zero_shot.multiple_choice_predict(
            self.lm, self.tok, ["1 2"], [["3", "4 5"]], questions=["6"])
        expected = [self._direct([START, 1, 2, 6, 3])[-1:].mean(),
                    self._direct([START, 1, 2, 6, 4, 5])[-2:].mean()]
        np.testing.assert_allclose(scores[0], expected, rtol=1e-5)
        self.assertEqual(preds[0], int(np.argmax(expected)))

        preds, scores = zero_shot.winograd_predict(
            self.lm, self.tok, ["1 _ 2 3"], [["4", "5 6"]])
        expected = [self._direct([START, 1, 4, 2, 3])[-2:].mean(),
                    self._direct([START, 1, 5, 6, 2, 3])[-2:].mean()]
        np.testing.assert_allclose(scores[0], expected, rtol=1e-5)
        with self.assertRaisesRegex(ValueError, "exactly one '_'"):
            zero_shot.winograd_predict(self.lm, self.tok, ["no blank"], [["1", "2"]])

    def test_evaluate_on_task_files(self):
        import csv
        import json
        import os

        from gpt1_keras.tasks.story_cloze import TEST_FILE

        d = self.create_tempdir().full_path
        for name, rows in [("train.tsv", [("c", "1", "", "1 2 3"), ("c", "0", "*", "3 2 1"),
                                          ("c", "1", "", "1 2")]),
                           ("dev.tsv", [("c", "1", "", "1 2 3"), ("c", "0", "*", "9")])]:
            with open(os.path.join(d, name), "w") as f:
                f.write("".join("\t".join(r) + "\n" for r in rows))
        cola = zero_shot.evaluate_zero_shot(self.lm, self.tok, "cola", d, "dev")
        self.assertEqual(cola["num_examples"], 2)
        # The threshold is the one fit on train's scores (computed directly here).
        train = [self._direct([START] + ids).mean() for ids in ([1, 2, 3], [3, 2, 1], [1, 2])]
        np.testing.assert_allclose(
            cola["threshold"], zero_shot.fit_threshold(np.array(train), np.array([1, 0, 1])),
            rtol=1e-5)
        # Dev predictions follow it; the metrics are those of the predictions.
        dev = [self._direct([START] + ids).mean() for ids in ([1, 2, 3], [9])]
        predictions = [int(s > cola["threshold"]) for s in dev]
        self.assertEqual(cola["predictions"], predictions)
        self.assertEqual(cola["matthews_corrcoef"], metrics.matthews_corrcoef([1, 0], predictions))
        self.assertEqual(cola["accuracy"], np.mean(np.array(predictions) == [1, 0]))

        with open(os.path.join(d, TEST_FILE), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["InputStoryid", "InputSentence1", "InputSentence2", "InputSentence3",
                        "InputSentence4", "RandomFifthSentenceQuiz1",
                        "RandomFifthSentenceQuiz2", "AnswerRightEnding"])
            w.writerow(["s1", "1", "2", "3", "4", "5", "6 7", "2"])
        story = zero_shot.evaluate_zero_shot(self.lm, self.tok, "story_cloze", d, "test")
        _, expected = zero_shot.multiple_choice_predict(self.lm, self.tok, ["1 2 3 4"],
                                                        [["5", "6 7"]])
        self.assertEqual(story["predictions"], [int(np.argmax(expected[0]))])
        self.assertEqual(story["accuracy"], float(story["predictions"][0] == 1))

        with open(os.path.join(d, "dev.jsonl"), "w") as f:
            f.write(json.dumps({"sentence": "1 _ 2", "option1": "3", "option2": "4",
                                "answer": "2"}) + "\n")
        wino = zero_shot.evaluate_zero_shot(self.lm, self.tok, "winograd", d, "dev")
        self.assertEqual(wino["num_examples"], 1)
        expected = [self._direct([START, 1, 3, 2])[-1], self._direct([START, 1, 4, 2])[-1]]
        self.assertEqual(wino["predictions"], [int(np.argmax(expected))])
        self.assertEqual(wino["accuracy"], float(np.argmax(expected) == 1))
        with self.assertRaisesRegex(FileNotFoundError, "'winograd': looked for .*test.jsonl"):
            zero_shot.evaluate_zero_shot(self.lm, self.tok, "winograd", d, "test")


if __name__ == "__main__":
    absltest.main()
