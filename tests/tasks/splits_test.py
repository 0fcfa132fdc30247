"""Seeded held-out validation splits (`gpt1_keras.tasks.splits`), on the real RTE and
SST-2 training files and on small inline examples."""

import os
import shutil

from absl.testing import absltest

from gpt1_keras.tasks import Examples
from gpt1_keras.tasks import get_task
from gpt1_keras.tasks.splits import holdout_split
from gpt1_keras.tasks.splits import read_train_and_holdout
from tests import shared_data


def _examples(texts, labels=None):
    labels = labels if labels is not None else [i % 2 for i in range(len(texts))]
    return Examples(list(texts), None, labels, [str(i) for i in range(len(texts))],
                    source="inline")


class HoldoutSplitTest(absltest.TestCase):
    def test_real_rte_fraction_disjoint_complete_reproducible(self):
        rte = get_task("rte").read(shared_data.path("glue", "RTE"), "train")
        train, validation = holdout_split(rte, 0.1, seed=0)
        self.assertLen(validation, 249)  # round(0.1 * 2,490)
        self.assertLen(train, len(rte) - 249)
        self.assertEmpty(set(train.ids) & set(validation.ids))
        self.assertCountEqual(train.ids + validation.ids, rte.ids)
        # Each part keeps the file's order and its examples' own fields.
        for part in (train, validation):
            self.assertEqual(part.ids, sorted(part.ids, key=int))
            position = {i: k for k, i in enumerate(rte.ids)}
            for k in (0, len(part) - 1):
                j = position[part.ids[k]]
                self.assertEqual((part.text_a[k], part.text_b[k], part.labels[k]),
                                 (rte.text_a[j], rte.text_b[j], rte.labels[j]))
        again_train, again_validation = holdout_split(rte, 0.1, seed=0)
        self.assertEqual(again_validation.ids, validation.ids)
        self.assertEqual(again_train.ids, train.ids)
        other = holdout_split(rte, 0.1, seed=1)[1]
        self.assertNotEqual(other.ids, validation.ids)
        # Not the first or last rows: spread over the file.
        self.assertNotEqual(validation.ids, rte.ids[:249])
        self.assertNotEqual(validation.ids, rte.ids[-249:])
        self.assertIn("249 of 2490 held out with seed 0", validation.source)
        self.assertTrue(validation.source.startswith(rte.source))

    def test_real_sst2_duplicates_stay_on_one_side(self):
        sst2 = get_task("sst2").read(shared_data.path("sst2"), "train")
        self.assertLess(len(set(sst2.text_a)), len(sst2))  # the file repeats phrases
        train, validation = holdout_split(sst2, 2000, seed=3)
        self.assertLen(validation, 2000)
        self.assertEmpty(set(train.text_a) & set(validation.text_a))
        self.assertEqual(len(train) + len(validation), len(sst2))

    def test_count_and_groups_inline(self):
        texts = ["a", "b", "a", "c", "d", "a", "e", "f"]
        for seed in range(20):
            train, validation = holdout_split(_examples(texts), 3, seed=seed)
            self.assertLen(validation, 3)  # "a" x3 or three singles: always reachable
            self.assertEmpty(set(train.text_a) & set(validation.text_a))
            self.assertCountEqual(train.ids + validation.ids, [str(i) for i in range(8)])
        # Pairs are grouped by the whole pair, not the first text.
        pairs = Examples(["p", "p", "p", "p"], ["h1", "h1", "h2", "h3"], [0, 0, 1, 1],
                         ["0", "1", "2", "3"])
        for seed in range(10):
            train, validation = holdout_split(pairs, 2, seed=seed)
            self.assertEqual(("0" in train.ids), ("1" in train.ids))

    def test_multiple_choice_columns_follow(self):
        x = Examples(["c0", "c1", "c2", "c3"], [["a", "b"], ["c", "d"], ["e", "f"], ["g", "h"]],
                     [0, 1, 0, 1], ["s0", "s1", "s2", "s3"], question=["q0", "q1", "q2", "q3"])
        train, validation = holdout_split(x, 0.5, seed=5)
        for part in (train, validation):
            for k, i in enumerate(part.ids):
                n = int(i[1:])
                self.assertEqual((part.text_a[k], part.text_b[k], part.question[k]),
                                 (f"c{n}", x.text_b[n], f"q{n}"))

    def test_bad_holdout(self):
        x = _examples(["a", "b", "c", "d"])
        for bad in (0.0, 1.0, 1.5, -0.1):
            with self.assertRaisesRegex(ValueError, r"fraction must be in \(0, 1\)"):
                holdout_split(x, bad)
        for bad in (0, 4, 10):
            with self.assertRaisesRegex(ValueError, r"at least one example on each side"):
                holdout_split(x, bad)
        for bad in ("0.1", None, True):
            with self.assertRaisesRegex(ValueError, r"fraction in \(0, 1\) or a count"):
                holdout_split(x, bad)
        with self.assertRaisesRegex(ValueError, r"holdout=0.1 \(0 examples\)"):
            holdout_split(x, 0.1)  # rounds to no example


class TrainOnlyFolderTest(absltest.TestCase):
    def test_folder_with_only_train_tsv(self):
        d = self.create_tempdir().full_path
        shutil.copy(shared_data.path("glue", "MRPC", "train.tsv"), d)  # BOM and all
        task = get_task("mrpc")
        self.assertEqual(task.present_eval_splits(d), ())
        train, validation = read_train_and_holdout(task, d, 0.2, seed=7)
        self.assertEqual((len(train), len(validation)), (2934, 734))
        self.assertEmpty(set(zip(train.text_a, train.text_b))
                         & set(zip(validation.text_a, validation.text_b)))
        # The same run's scoring folder: one with the official dev.tsv.
        with open(os.path.join(d, "dev.tsv"), "w", encoding="utf-8") as f:
            f.write("\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
                    "1\t1\t2\tHe left .\tHe went away .\n")
        self.assertEqual([s.name for s in task.present_eval_splits(d)], ["dev"])
        self.assertEqual(task.read(d, "dev").labels, [1])
        with self.assertRaisesRegex(FileNotFoundError, r"looked for .*train\.tsv"):
            read_train_and_holdout(task, self.create_tempdir().full_path, 0.1)


if __name__ == "__main__":
    absltest.main()
