"""Every task reader on the real training files of `../shared/data`, as distributed.

Each file is also parsed here, independently, with the `csv` module and by counting its
lines, and the reader's output is compared with that: row counts (equal to the counts
in `shared/data/SOURCES.md`), every text and label, and the label balance. The data
is located by `tests/shared_data.py` (Bazel: `@shared_data`); a missing file fails
the test, it is never skipped.
"""

import collections
import csv
import os
import sys

from absl.testing import absltest

from gpt1_keras.tasks import DataError
from gpt1_keras.tasks import get_task
from tests import shared_data

csv.field_size_limit(sys.maxsize)

# SOURCES.md: the official GLUE / Story Cloze training-split sizes.
EXPECTED_ROWS = {
    "sst2": 67349, "cola": 8551, "mrpc": 3668, "rte": 2490, "stsb": 5749, "wnli": 635,
    "story_cloze": 1871,
}


def _raw(*parts):
    path = shared_data.path(*parts)
    with open(path, "rb") as f:
        return path, f.read()


def _data_lines(data, header=True):
    """Non-blank lines of the file, less the header: a count independent of any parser."""
    lines = [line for line in data.split(b"\n") if line.strip()]
    return len(lines) - (1 if header else 0)


def _tsv_rows(path):
    # Universal newlines (not the readers' newline=""), BOM dropped by the codec.
    with open(path, encoding="utf-8-sig") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


class GlueRealFilesTest(absltest.TestCase):
    def _check_clean(self, examples):
        for column in (examples.text_a, examples.text_b or []):
            self.assertFalse([t for t in column if "\r" in t or "\ufeff" in t])

    def test_sst2(self):
        path, data = _raw("sst2", "train.tsv")
        x = get_task("sst2").read(shared_data.path("sst2"), "train")
        rows = _tsv_rows(path)
        header, body = rows[0], rows[1:]
        self.assertEqual(header, ["label", "sentence"])  # label first in this copy
        self.assertLen(x, EXPECTED_ROWS["sst2"])
        self.assertLen(x, _data_lines(data))
        self.assertEqual(x.text_a, [r[1] for r in body])
        self.assertEqual(x.labels, [int(r[0]) for r in body])
        self.assertEqual((x.text_a[0], x.labels[0]), (body[0][1], int(body[0][0])))
        self.assertIsNone(x.text_b)
        self._check_clean(x)  # the file's \r\n line ends are not text
        self.assertEqual(sum(x.labels), 37569)  # 55.8% positive

    def test_cola_no_header_four_columns(self):
        path, data = _raw("glue", "CoLA", "train.tsv")
        x = get_task("cola").read(shared_data.path("glue", "CoLA"), "train")
        rows = _tsv_rows(path)
        self.assertEqual({len(r) for r in rows}, {4})
        self.assertLen(x, EXPECTED_ROWS["cola"])
        self.assertLen(x, _data_lines(data, header=False))  # the first line is data
        self.assertEqual(x.text_a[0], rows[0][3])
        self.assertEqual(x.text_a, [r[3] for r in rows])
        self.assertEqual(x.labels, [int(r[1]) for r in rows])
        # Label 1 (acceptable) rows carry no original mark; unacceptable ones mostly '*'.
        marks = collections.Counter((y, r[2]) for y, r in zip(x.labels, rows))
        self.assertEqual({m for (y, m) in marks if y == 1}, {""})
        self.assertGreater(marks[(0, "*")], 0.9 * x.labels.count(0))
        self.assertEqual(sum(x.labels), 6023)  # 70.4% acceptable

    def test_mrpc_with_byte_order_mark(self):
        path, data = _raw("glue", "MRPC", "train.tsv")
        self.assertTrue(data.startswith(b"\xef\xbb\xbf"))  # the case being tested
        x = get_task("mrpc").read(shared_data.path("glue", "MRPC"), "train")
        rows = _tsv_rows(path)
        self.assertEqual(rows[0], ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"])
        body = rows[1:]
        self.assertLen(x, EXPECTED_ROWS["mrpc"])
        self.assertLen(x, _data_lines(data))
        self.assertEqual((x.text_a[0], x.text_b[0], x.labels[0]),
                         (body[0][3], body[0][4], int(body[0][0])))
        self.assertEqual(x.text_a, [r[3] for r in body])
        self.assertEqual(x.text_b, [r[4] for r in body])
        self.assertEqual(x.labels, [int(r[0]) for r in body])
        self._check_clean(x)
        self.assertEqual(sum(x.labels), 2474)  # 67.4% paraphrases

    def _pair_task(self, task_name, folder, raw_labels):
        path, data = _raw("glue", folder, "train.tsv")
        task = get_task(task_name)
        x = task.read(shared_data.path("glue", folder), "train")
        rows = _tsv_rows(path)
        self.assertEqual(rows[0], ["index", "sentence1", "sentence2", "label"])
        body = rows[1:]
        self.assertLen(x, EXPECTED_ROWS[task_name])
        self.assertLen(x, _data_lines(data))
        self.assertEqual((x.ids[0], x.text_a[0], x.text_b[0]), tuple(body[0][:3]))
        self.assertEqual(x.text_a, [r[1] for r in body])
        self.assertEqual(x.text_b, [r[2] for r in body])
        self.assertEqual([task.labels[y] for y in x.labels], [r[3] for r in body])
        self.assertEqual(set(task.labels), raw_labels)
        self._check_clean(x)
        return x

    def test_rte(self):
        x = self._pair_task("rte", "RTE", {"entailment", "not_entailment"})
        counts = collections.Counter(x.labels)
        self.assertEqual((counts[0], counts[1]), (1249, 1241))  # entailment, not_entailment

    def test_wnli(self):
        x = self._pair_task("wnli", "WNLI", {"0", "1"})
        self.assertEqual(get_task("wnli").head, "entailment")
        self.assertEqual(sum(x.labels), 312)  # 312 of 635 entailed

    def test_stsb_ten_columns_score_last(self):
        path, data = _raw("glue", "STS-B", "train.tsv")
        x = get_task("stsb").read(shared_data.path("glue", "STS-B"), "train")
        rows = _tsv_rows(path)
        self.assertEqual({len(r) for r in rows}, {10})
        self.assertEqual(rows[0][-1], "score")
        body = rows[1:]
        self.assertLen(x, EXPECTED_ROWS["stsb"])
        self.assertLen(x, _data_lines(data))
        self.assertEqual((x.text_a[0], x.text_b[0], x.labels[0]),
                         (body[0][7], body[0][8], float(body[0][9])))
        self.assertEqual(x.labels, [float(r[9]) for r in body])
        self.assertEqual((min(x.labels), max(x.labels)), (0.0, 5.0))
        self.assertAlmostEqual(sum(x.labels) / len(x), 2.701, places=3)


class StoryClozeRealFileTest(absltest.TestCase):
    def test_validation_csv_short_name(self):
        path, data = _raw("story_cloze", "cloze_test_val__spring2016.csv")
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        task = get_task("story_cloze")
        folder = shared_data.path("story_cloze")
        train, dev = task.read(folder, "train"), task.read(folder, "dev")
        self.assertLen(rows, EXPECTED_ROWS["story_cloze"])
        self.assertEqual(len(train) + len(dev), _data_lines(data))
        self.assertEqual(len(train) + len(dev), EXPECTED_ROWS["story_cloze"])
        self.assertLen(dev, len(range(0, len(rows), 5)))  # every fifth story, from the first
        self.assertEqual(sorted(train.ids + dev.ids), sorted(r["InputStoryid"] for r in rows))
        first = rows[0]
        self.assertEqual(dev.ids[0], first["InputStoryid"])
        self.assertEqual(dev.text_a[0],
                         " ".join(first[f"InputSentence{k}"] for k in range(1, 5)))
        self.assertEqual(dev.text_b[0], [first["RandomFifthSentenceQuiz1"],
                                         first["RandomFifthSentenceQuiz2"]])
        self.assertEqual(dev.labels[0], int(first["AnswerRightEnding"]) - 1)
        by_id = {r["InputStoryid"]: int(r["AnswerRightEnding"]) - 1 for r in rows}
        self.assertEqual(train.labels, [by_id[i] for i in train.ids])
        labels = train.labels + dev.labels
        self.assertEqual(set(labels), {0, 1})
        self.assertEqual(labels.count(0), 962)  # 962 of 1,871: the first ending


class BadInputOnRealCopiesTest(absltest.TestCase):
    """Copies of a real file's first lines, intact or damaged, in a temporary folder."""

    def _copy(self, folder, lines, edit=None, name="train.tsv"):
        _, data = _raw("glue", folder, "train.tsv")
        head = data.split(b"\n")[:lines]
        if edit:
            head = edit(head)
        d = self.create_tempdir().full_path
        with open(os.path.join(d, name), "wb") as f:
            f.write(b"\n".join(head) + b"\n")
        return d

    def test_byte_order_mark_any_reader(self):
        # MRPC's own first lines (BOM kept) and RTE's with a BOM added.
        x = get_task("mrpc").read(self._copy("MRPC", 6), "train")
        self.assertLen(x, 5)
        x = get_task("rte").read(self._copy("RTE", 6, lambda h: [b"\xef\xbb\xbf" + h[0]] + h[1:]),
                                 "train")
        self.assertEqual(x.ids, ["0", "1", "2", "3", "4"])
        # Headerless CoLA: the BOM must not stick to the first row.
        d = self._copy("CoLA", 3, lambda h: [b"\xef\xbb\xbf" + h[0]] + h[1:])
        self.assertLen(get_task("cola").read(d, "train"), 3)
        # The same MRPC lines scored as another labelled split (`dev.tsv`).
        x = get_task("mrpc").read(self._copy("MRPC", 4, name="dev.tsv"), "dev")
        self.assertLen(x, 3)

    def test_malformed_line_names_file_and_line(self):
        def drop_a_field(head):
            head[3] = head[3].rsplit(b"\t", 1)[0]  # line 4 loses its label
            return head
        d = self._copy("RTE", 6, drop_a_field)
        with self.assertRaisesRegex(
                DataError, r"/train\.tsv:4: expected 4 tab-separated fields, found 3\.$"):
            get_task("rte").read(d, "train")

        def bad_byte(head):
            head[2] = head[2] + b"\xff"
            return head
        d = self._copy("STS-B", 5, bad_byte)
        with self.assertRaisesRegex(DataError, r"train\.tsv:3: not valid UTF-8 \(byte 0xff"):
            get_task("stsb").read(d, "train")

        def bad_label(head):
            head[1] = head[1].rsplit(b"\t", 1)[0] + b"\tentails"
            return head
        d = self._copy("RTE", 4, bad_label)
        with self.assertRaisesRegex(DataError, r"train\.tsv:2: label .*'entails' is not one of"):
            get_task("rte").read(d, "train")

    def test_missing_split(self):
        d = self._copy("WNLI", 4)
        self.assertLen(get_task("wnli").read(d, "train"), 3)
        self.assertEqual(get_task("wnli").present_eval_splits(d), ())
        with self.assertRaisesRegex(FileNotFoundError,
                                    r"Task 'wnli': looked for .*dev\.tsv.*missing: .*dev\.tsv"):
            get_task("wnli").read(d, "dev")


if __name__ == "__main__":
    absltest.main()
