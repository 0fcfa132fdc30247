"""GPT1ClassifierPreprocessor: token layouts by task, eager and inside tf.data."""

import numpy as np
import tensorflow as tf
from absl.testing import absltest

from gpt1_keras.preprocessing import GPT1ClassifierPreprocessor
from tests.data.fake_tokenizer import FakeTokenizer

S, D, C = 901, 902, 903  # FakeTokenizer's _start_, _delimiter_, _classify_


class GPT1ClassifierPreprocessorTest(absltest.TestCase):
    def _run(self, task, x, length=8, **kwargs):
        out = GPT1ClassifierPreprocessor(FakeTokenizer(), task, length)(x, **kwargs)
        return out

    def test_classification_layout(self):
        x = self._run("classification", ["5 6 7", "8"])
        np.testing.assert_array_equal(
            x["token_ids"], [[S, 5, 6, 7, C, 0, 0, 0], [S, 8, C, 0, 0, 0, 0, 0]])
        np.testing.assert_array_equal(
            x["padding_mask"], [[1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0]])
        self.assertEqual(x["padding_mask"].dtype, tf.int32)

    def test_entailment_keeps_premise_first_and_trims_longest(self):
        x = self._run("entailment", (["1 2 3 4 5 6 7", "1"], ["8 9", "2"]))
        np.testing.assert_array_equal(
            x["token_ids"], [[S, 1, 2, 3, D, 8, 9, C], [S, 1, D, 2, C, 0, 0, 0]])

    def test_similarity_both_orders(self):
        x = self._run("similarity", (["1 2"], ["3"]))
        np.testing.assert_array_equal(
            x["token_ids"],
            [[[S, 1, 2, D, 3, C, 0, 0], [S, 3, D, 1, 2, C, 0, 0]]])

    def test_multiple_choice_with_question(self):
        x = self._run("multiple_choice", (["1 2"], ["3"], [["4", "5 6"]]), length=9)
        np.testing.assert_array_equal(
            x["token_ids"],
            [[[S, 1, 2, 3, D, 4, C, 0, 0], [S, 1, 2, 3, D, 5, 6, C, 0]]])
        self.assertEqual(x["padding_mask"].shape, (1, 2, 9))

    def test_labels_pass_through_and_single_example(self):
        x, y, sw = self._run("classification", tf.constant("5"), y=tf.constant(1),
                             sample_weight=tf.constant(0.5))
        np.testing.assert_array_equal(x["token_ids"], [S, 5, C, 0, 0, 0, 0, 0])
        self.assertEqual(int(y), 1)
        self.assertEqual(float(sw), 0.5)

    def test_token_ids_pass_through(self):
        given = {"token_ids": tf.constant([[1, 2]]), "padding_mask": tf.constant([[1, 1]])}
        self.assertIs(self._run("classification", given), given)

    def test_wrong_number_of_fields(self):
        with self.assertRaisesRegex(ValueError, "'entailment' takes 2 text field"):
            self._run("entailment", (["a"], ["b"], ["c"]))
        with self.assertRaisesRegex(ValueError, "head='ranking'"):
            GPT1ClassifierPreprocessor(FakeTokenizer(), "ranking")
        with self.assertRaisesRegex(ValueError, "at least 2 names"):
            GPT1ClassifierPreprocessor(FakeTokenizer(), label_names=["only"])

    def test_head_names(self):
        from gpt1_keras.preprocessing import packing

        self.assertEqual(packing.HEADS, ("classification", "entailment", "similarity",
                                         "multiple_choice"))
        with self.assertRaisesRegex(ValueError, "`head` must be one of .*head='ranking'"):
            packing.head_inputs(FakeTokenizer(), "ranking", tf.constant(["1"]))
        with self.assertRaisesRegex(ValueError, "The 'entailment' head needs `text_b`"):
            packing.head_inputs(FakeTokenizer(), "entailment", tf.constant(["1"]))

    def test_config_round_trip_keeps_label_names(self):
        from gpt1_keras.tokenizers import GPT1Tokenizer

        preprocessor = GPT1ClassifierPreprocessor(GPT1Tokenizer(), "entailment", 12,
                                                  label_names=["entailment", "other"])
        config = preprocessor.get_config()
        self.assertEqual(config["label_names"], ["entailment", "other"])
        restored = GPT1ClassifierPreprocessor.from_config(config)
        self.assertEqual((restored.head, restored.sequence_length, restored.label_names),
                         ("entailment", 12, ("entailment", "other")))
        x = (["A man sleeps."], ["A person rests."])
        np.testing.assert_array_equal(restored(x)["token_ids"], preprocessor(x)["token_ids"])
        # Configs saved before the head type had its own name (`task`) still load.
        old = {k: v for k, v in config.items() if k not in ("head", "label_names")}
        self.assertEqual(
            GPT1ClassifierPreprocessor.from_config({**old, "task": "similarity"}).head,
            "similarity")

    def test_inside_dataset_map(self):
        preprocessor = GPT1ClassifierPreprocessor(FakeTokenizer(), "entailment", 6)
        ds = preprocessor.make_dataset((["1", "2 3", "4"], ["5", "6", "7 8"]), [0, 1, 2],
                                       batch_size=2)
        batches = list(ds)
        self.assertLen(batches, 2)
        x, y = batches[0]
        np.testing.assert_array_equal(
            x["token_ids"], [[S, 1, D, 5, C, 0], [S, 2, 3, D, 6, C]])
        np.testing.assert_array_equal(y, [0, 1])
        # A dataset of raw batches maps the same way (num_parallel_calls=AUTOTUNE).
        raw = tf.data.Dataset.from_tensor_slices(((["4"], ["7 8"]), [2])).batch(1)
        x, y = next(iter(preprocessor.make_dataset(raw)))
        np.testing.assert_array_equal(x["token_ids"], [[S, 4, D, 7, 8, C]])
        # A static batch size survives the map (drop_remainder=True, replicas).
        fixed = tf.data.Dataset.from_tensor_slices(((["4"] * 4, ["7"] * 4), [2] * 4))
        fixed = fixed.batch(2, drop_remainder=True).map(preprocessor)
        self.assertEqual(fixed.element_spec[0]["token_ids"].shape.as_list(), [2, 6])
        self.assertEqual(fixed.element_spec[0]["padding_mask"].dtype, tf.int32)


class AttachedPreprocessorTest(absltest.TestCase):
    def test_classifier_fits_raw_pairs_with_validation(self):
        import keras

        from gpt1_keras.models import GPT1Backbone
        from gpt1_keras.models.gpt1_classifier import GPT1Classifier

        keras.utils.set_random_seed(0)
        backbone = GPT1Backbone(vocabulary_size=904, num_layers=1, num_heads=2,
                                hidden_dim=16, intermediate_dim=32, max_sequence_length=8)
        preprocessor = GPT1ClassifierPreprocessor(FakeTokenizer(), "entailment", 8)
        model = GPT1Classifier(backbone, num_classes=2, head="entailment",
                               preprocessor=preprocessor)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        x = (["1 2", "3", "1", "3 4"], ["5", "6", "5 5", "6"])
        y = np.array([0, 1, 0, 1])
        history = model.fit(x, y, batch_size=2, epochs=3, verbose=0,
                            validation_data=(x, y))
        self.assertLen(history.history["val_sparse_categorical_accuracy"], 3)
        # Raw texts go through the attached preprocessor: the same outputs as
        # preprocessing by hand.
        by_hand = keras.ops.convert_to_numpy(model(preprocessor(x), training=False))
        np.testing.assert_allclose(model.predict(x, batch_size=3, verbose=0), by_hand,
                                   atol=1e-6)
        loss = model.evaluate(x, y, verbose=0, return_dict=True)["loss"]
        expected = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, by_hand)
        np.testing.assert_allclose(loss, keras.ops.convert_to_numpy(expected), atol=1e-5)


if __name__ == "__main__":
    absltest.main()
