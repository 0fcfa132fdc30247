"""Task readers on small files in each real format, and their error messages."""

import csv
import json
import os
import re

from absl.testing import absltest

from gpt1_keras.tasks import DataError
from gpt1_keras.tasks import csv_task
from gpt1_keras.tasks import get_task
from gpt1_keras.tasks.csv_task import csv_labels
from gpt1_keras.tasks.story_cloze import TEST_FILE
from gpt1_keras.tasks.story_cloze import TEST_FILE_SHORT
from gpt1_keras.tasks.story_cloze import VAL_FILE
from gpt1_keras.tasks.story_cloze import VAL_FILE_SHORT


def _write(directory, name, lines):
    path = os.path.join(directory, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def _tsv(*rows):
    return ["\t".join(r) for r in rows]


def _story_cloze_file(d, name, n, answer="1"):
    path = os.path.join(d, name)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["InputStoryid", "InputSentence1", "InputSentence2",
                    "InputSentence3", "InputSentence4", "RandomFifthSentenceQuiz1",
                    "RandomFifthSentenceQuiz2", "AnswerRightEnding"])
        for i in range(n):
            w.writerow([f"id{i}", "Rick grew up.", "He was poor, sadly.", "S3.",
                        "S4.", "He is happy.", "He is sad.", answer if i else "2"])
    return path


class GlueTest(absltest.TestCase):
    def setUp(self):
        self.dir = self.create_tempdir().full_path

    def test_cola_headerless_train_and_test_with_header(self):
        _write(self.dir, "train.tsv", _tsv(
            ("gj04", "1", "", "Our friends won't buy this analysis."),
            ("gj04", "0", "*", "They drank the pub.")))
        _write(self.dir, "test.tsv", _tsv(("index", "sentence"), ("0", "Bill left."),
                                          ("1", 'He said "hi".')))
        task = get_task("cola")
        train = task.read(self.dir, "train")
        self.assertEqual(train.text_a, ["Our friends won't buy this analysis.",
                                        "They drank the pub."])
        self.assertEqual(train.labels, [1, 0])
        self.assertIsNone(train.text_b)
        test = task.read(self.dir, "test")
        self.assertIsNone(test.labels)
        self.assertEqual(test.ids, ["0", "1"])
        self.assertEqual(test.text_a[1], 'He said "hi".')  # quotes are not quoting
        self.assertEqual((task.head, task.metrics[0]), ("classification",
                                                             "matthews_corrcoef"))

    def test_sst2_mrpc_qqp_stsb_qnli_rte(self):
        _write(self.dir, "sst/train.tsv", _tsv(("sentence", "label"), ("a fine film ", "1")))
        x = get_task("sst2").read(os.path.join(self.dir, "sst"), "train")
        self.assertEqual((x.text_a, x.labels), (["a fine film "], [1]))

        _write(self.dir, "mrpc/dev.tsv", _tsv(
            ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
            ("1", "702876", "702977", "He said so .", "So he said .")))
        x = get_task("mrpc").read(os.path.join(self.dir, "mrpc"), "dev")
        self.assertEqual((x.text_a, x.text_b, x.labels),
                         (["He said so ."], ["So he said ."], [1]))
        self.assertEqual(get_task("mrpc").head, "similarity")
        self.assertEqual(get_task("mrpc").model_task, "similarity")  # the deprecated name

        _write(self.dir, "qqp/train.tsv", _tsv(
            ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
            ("133273", "213221", "213222", "How is life?", "How's life?", "0"),
            ("201359", "303345", "303346", "Why?"),  # GLUE's QQP has a few such rows
        ))
        x = get_task("qqp").read(os.path.join(self.dir, "qqp"), "train")
        self.assertEqual((x.ids, x.labels), (["133273"], [0]))

        _write(self.dir, "sts/train.tsv", _tsv(
            ("index", "genre", "filename", "year", "old_index", "source1", "source2",
             "sentence1", "sentence2", "score"),
            ("0", "main-captions", "MSRvid", "2012test", "0001", "none", "none",
             "A plane is taking off.", "An air plane is taking off.", "5.000")))
        x = get_task("stsb").read(os.path.join(self.dir, "sts"), "train")
        self.assertEqual(x.labels, [5.0])
        self.assertTrue(get_task("stsb").regression)
        self.assertEqual(get_task("stsb").num_classes, 1)

        _write(self.dir, "qnli/dev.tsv", _tsv(("index", "question", "sentence", "label"),
                                              ("0", "What?", "That.", "not_entailment")))
        x = get_task("qnli").read(os.path.join(self.dir, "qnli"), "dev")
        self.assertEqual((x.text_a, x.text_b, x.labels), (["What?"], ["That."], [1]))

        _write(self.dir, "rte/test.tsv", _tsv(("index", "sentence1", "sentence2"),
                                              ("7", "P.", "H.")))
        x = get_task("rte").read(os.path.join(self.dir, "rte"), "test")
        self.assertEqual((x.ids, x.labels), (["7"], None))

    def test_mnli_keeps_premise_first(self):
        header = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse",
                  "sentence2_binary_parse", "sentence1_parse", "sentence2_parse",
                  "sentence1", "sentence2", "label1", "label2", "label3", "label4",
                  "label5", "gold_label")
        _write(self.dir, "dev_mismatched.tsv", _tsv(header, (
            "0", "63735", "63735n", "slate", "( ( The ...", "( ( The ...", "(ROOT ...",
            "(ROOT ...", "The premise .", "The hypothesis .", "neutral", "entailment",
            "neutral", "neutral", "neutral", "neutral")))
        x = get_task("mnli").read(self.dir, "dev_mismatched")
        self.assertEqual((x.text_a, x.text_b), (["The premise ."], ["The hypothesis ."]))
        self.assertEqual(x.labels, [get_task("mnli").labels.index("neutral")])
        self.assertEqual(get_task("mnli").split("test_matched").submission, "MNLI-m.tsv")

    def test_bad_files_name_file_and_line(self):
        _write(self.dir, "train.tsv", _tsv(("sentence", "label"), ("good", "1"),
                                           ("bad", "2")))
        with self.assertRaisesRegex(DataError, r"train.tsv:3: label .*'2'.*\['0', '1'\]"):
            get_task("sst2").read(self.dir, "train")
        _write(self.dir, "train.tsv", _tsv(("sentence", "label"), ("good", "1"),
                                           ("missing a column",)))
        with self.assertRaisesRegex(DataError, r"train.tsv:3: expected 2 .*found 1"):
            get_task("sst2").read(self.dir, "train")
        _write(self.dir, "train.tsv", _tsv(("text", "label"), ("good", "1")))
        with self.assertRaisesRegex(DataError, r"train.tsv:1: the header lacks .*'sentence'"):
            get_task("sst2").read(self.dir, "train")
        _write(self.dir, "train.tsv", _tsv(("sentence", "label")))
        with self.assertRaisesRegex(DataError, r"train.tsv: no examples"):
            get_task("sst2").read(self.dir, "train")
        _write(self.dir, "dev.tsv", _tsv(("index", "sentence1", "sentence2", "score"),
                                         ("0", "a", "b", "high")))
        with self.assertRaisesRegex(DataError, r"dev.tsv:2: .*'high'.*not a number"):
            get_task("stsb").read(self.dir, "dev")

    def test_absent_files_are_listed(self):
        with self.assertRaisesRegex(FileNotFoundError,
                                    r"'mnli': looked for .*dev_matched.tsv"):
            get_task("mnli").read(self.dir, "dev_matched")
        with self.assertRaisesRegex(ValueError, "Unknown task 'glue'"):
            get_task("glue")


class OfficialDevFormatsTest(absltest.TestCase):
    """A run scored on another folder holding GLUE's official `dev.tsv` files: each
    task's dev format, as GLUE distributes it, read through the registry."""

    def setUp(self):
        self.dir = self.create_tempdir().full_path

    def _dev(self, task, lines, bom=False):
        d = os.path.join(self.dir, task)
        path = _write(d, "dev.tsv", lines)
        if bom:
            with open(path, "rb") as f:
                data = f.read()
            with open(path, "wb") as f:
                f.write(b"\xef\xbb\xbf" + data)
        self.assertEqual([s.name for s in get_task(task).present_eval_splits(d)], ["dev"])
        return get_task(task).read(d, "dev")

    def test_each_glue_dev_format(self):
        x = self._dev("cola", _tsv(("gj04", "1", "", "The sailors rode the breeze clear."),
                                   ("clc95", "0", "*", "Sue gave to Bill a book.")))
        self.assertEqual((x.text_a[1], x.labels), ("Sue gave to Bill a book.", [1, 0]))
        x = self._dev("sst2", _tsv(("sentence", "label"), ("it 's a charming journey . ", "1"),
                                   ("unflinchingly bleak ", "0")))
        self.assertEqual((x.text_a[0], x.labels), ("it 's a charming journey . ", [1, 0]))
        x = self._dev("mrpc", _tsv(("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                                   ("1", "1355540", "1355592", "He said A .", "A , he said ."),
                                   ("0", "2029631", "2029565", "B rose .", "C fell .")),
                      bom=True)
        self.assertEqual((x.text_b, x.labels), (["A , he said .", "C fell ."], [1, 0]))
        x = self._dev("rte", _tsv(("index", "sentence1", "sentence2", "label"),
                                  ("0", "Dana Reeve died.", "Reeve is dead.", "entailment")))
        self.assertEqual((x.ids, x.labels), (["0"], [0]))
        x = self._dev("wnli", _tsv(("index", "sentence1", "sentence2", "label"),
                                   ("0", "The drain is clogged with hair. It has to be cleaned.",
                                    "The hair has to be cleaned.", "0")))
        self.assertEqual((x.text_b, x.labels), (["The hair has to be cleaned."], [0]))
        x = self._dev("stsb", _tsv(
            ("index", "genre", "filename", "year", "old_index", "source1", "source2",
             "sentence1", "sentence2", "score"),
            ("0", "main-captions", "MSRvid", "2012test", "0000", "none", "none",
             "A man with a hard hat is dancing.", "A man wearing a hard hat is dancing.",
             "5.000"),
            ("1", "main-captions", "MSRvid", "2012test", "0002", "none", "none",
             "A young child is riding a horse.", "A child is riding a horse.", "4.750")))
        self.assertEqual(x.labels, [5.0, 4.75])

    def test_wnli_registered_with_test_split(self):
        task = get_task("wnli")
        self.assertEqual((task.labels, task.head, task.metrics[0]),
                         (("0", "1"), "entailment", "accuracy"))
        _write(self.dir, "test.tsv", _tsv(("index", "sentence1", "sentence2"),
                                          ("0", "P.", "H.")))
        self.assertEqual(task.read(self.dir, "test").ids, ["0"])
        self.assertEqual(task.split("test").submission, "WNLI.tsv")


class ByteOrderMarkAndBadBytesTest(absltest.TestCase):
    """Every reader drops a leading UTF-8 BOM (as GLUE's MRPC files start with) and
    names the file and line of bytes that are not UTF-8 or rows csv refuses."""

    def _bom(self, path):
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(b"\xef\xbb\xbf" + data)
        return path

    def test_every_reader(self):
        d = self.create_tempdir().full_path
        self._bom(_write(d, "sst/train.tsv", _tsv(("label", "sentence"), ("1", "fine"))))
        self.assertEqual(get_task("sst2").read(os.path.join(d, "sst"), "train").labels, [1])
        self._bom(_write(d, "snli_1.0_dev.jsonl", [json.dumps(
            {"gold_label": "neutral", "sentence1": "A.", "sentence2": "B."})]))
        self.assertEqual(get_task("snli").read(d, "dev").labels, [1])
        doc = {"answers": ["C"], "options": [["a", "b", "c", "d"]], "questions": ["Q?"],
               "article": "Text."}
        self._bom(_write(d, "dev/high/1.txt", [json.dumps(doc)]))
        self.assertEqual(get_task("race").read(d, "dev").labels, [2])
        self._bom(_write(d, "train.csv", ["stars,review", "pos,good"]))
        self.assertEqual(csv_task(["review"], "stars", ["neg", "pos"]).read(d, "train").labels,
                         [1])
        self.assertEqual(csv_labels(os.path.join(d, "train.csv"), "stars"), ["pos"])
        _story_cloze_file(d, VAL_FILE_SHORT, 5)
        self._bom(os.path.join(d, VAL_FILE_SHORT))
        self.assertEqual(get_task("story_cloze").read(d, "dev").ids, ["id0"])

    def test_bad_bytes_and_line_of_a_runaway_quote(self):
        d = self.create_tempdir().full_path
        record = {"gold_label": "neutral", "sentence1": "A.", "sentence2": "B."}
        path = _write(d, "snli_1.0_train.jsonl", [json.dumps(record)] * 2)
        with open(path, "ab") as f:
            f.write(b'{"gold_label": "caf\xe9"}\n')
        with self.assertRaisesRegex(DataError, r"train.jsonl:3: not valid UTF-8 \(byte 0xe9 "
                                               r"at column 20"):
            get_task("snli").read(d, "train")
        # An unclosed quote on line 3 swallows the rest: the error names line 3.
        _write(d, "train.csv", ["review,stars", "ok,pos", 'a "quoted" word,"pos', "bad,neg"])
        with self.assertRaisesRegex(DataError, r"train.csv:3: label .*'pos\\nbad,neg\\n'"):
            csv_task(["review"], "stars", ["neg", "pos"]).read(d, "train")


class JsonlTest(absltest.TestCase):
    def test_snli_skips_no_consensus_and_scitail(self):
        d = self.create_tempdir().full_path
        records = [
            {"gold_label": "neutral", "sentence1": "A person on a horse.",
             "sentence2": "A person is training.", "pairID": "3416050480.jpg#4r1n"},
            {"gold_label": "-", "sentence1": "x", "sentence2": "y", "pairID": "2"},
            {"gold_label": "contradiction", "sentence1": "A.", "sentence2": "B.",
             "pairID": "3"},
        ]
        _write(d, "snli_1.0_train.jsonl", [json.dumps(r) for r in records])
        x = get_task("snli").read(d, "train")
        self.assertEqual(x.labels, [1, 2])
        self.assertEqual(x.ids, ["3416050480.jpg#4r1n", "3"])
        _write(d, "scitail_1.0_dev.txt", [json.dumps(
            {"gold_label": "entails", "sentence1": "P.", "sentence2": "H."})])
        self.assertEqual(get_task("scitail").read(d, "dev").labels, [0])
        _write(d, "scitail_1.0_test.txt", [
            json.dumps({"gold_label": "entails", "sentence1": "P.", "sentence2": "H."}),
            json.dumps({"gold_label": "contradicts", "sentence1": "P.", "sentence2": "H."}),
            "{not json"])
        with self.assertRaisesRegex(DataError, r"scitail_1.0_test.txt:2: gold_label "
                                               r"'contradicts' is not one of"):
            get_task("scitail").read(d, "test")
        _write(d, "scitail_1.0_test.txt", ['{"sentence1": "P."}'])
        with self.assertRaisesRegex(DataError, r"test.txt:1: missing field 'sentence2'"):
            get_task("scitail").read(d, "test")


class RaceTest(absltest.TestCase):
    def test_one_example_per_question_and_levels(self):
        d = self.create_tempdir().full_path
        doc = {"answers": ["B", "D"], "options": [["a", "b", "c", "d"], ["e", "f", "g", "h"]],
               "questions": ["Why?", "Who _ ?"], "article": "Once upon a time.",
               "id": "middle1.txt"}
        _write(d, "test/middle/1.txt", [json.dumps(doc)])
        _write(d, "test/high/2.txt", [json.dumps({**doc, "answers": ["A", "A"],
                                                  "id": "high2.txt"})])
        task = get_task("race")
        x = task.read(d, "test")
        self.assertLen(x, 4)
        self.assertEqual(x.labels, [0, 0, 1, 3])  # high first (sorted paths)
        self.assertEqual(x.text_b[2], ["a", "b", "c", "d"])
        self.assertEqual(x.question[3], "Who _ ?")
        self.assertEqual(x.ids[2], "middle1.txt-0")
        self.assertEqual(task.read(d, "test_middle").labels, [1, 3])
        self.assertEqual(task.format_prediction(3), "D")
        _write(d, "dev/high/3.txt", [json.dumps({**doc, "answers": ["B", "E"]})])
        with self.assertRaisesRegex(DataError, r"3.txt: answers\[1\] 'E' is not one of"):
            task.read(d, "dev")
        with self.assertRaisesRegex(FileNotFoundError, r"looked for .*train/middle"):
            task.read(d, "train")


class StoryClozeTest(absltest.TestCase):
    def _file(self, d, name, n, answer="1"):
        return _story_cloze_file(d, name, n, answer)

    def test_val_file_splits_and_test(self):
        d = self.create_tempdir().full_path
        self._file(d, VAL_FILE, 10)
        self._file(d, TEST_FILE, 3)
        task = get_task("story_cloze")
        train, dev = task.read(d, "train"), task.read(d, "dev")
        self.assertEqual(dev.ids, ["id0", "id5"])
        self.assertLen(train, 8)
        self.assertEqual(dev.labels, [1, 0])
        self.assertEqual(dev.text_a[0], "Rick grew up. He was poor, sadly. S3. S4.")
        self.assertEqual(dev.text_b[0], ["He is happy.", "He is sad."])
        self.assertLen(task.read(d, "test"), 3)
        self._file(d, TEST_FILE, 3, answer="3")
        with self.assertRaisesRegex(DataError, r"test.csv:3: AnswerRightEnding '3'"):
            task.read(d, "test")

    def test_short_file_names_and_missing_file(self):
        d = self.create_tempdir().full_path
        task = get_task("story_cloze")
        with self.assertRaisesRegex(FileNotFoundError, re.escape(
                f"{os.path.join(d, VAL_FILE)} or {os.path.join(d, VAL_FILE_SHORT)}")):
            task.read(d, "train")
        self.assertEqual(task.present_eval_splits(d), ())
        self._file(d, VAL_FILE_SHORT, 10)
        self._file(d, TEST_FILE_SHORT, 4)
        self.assertLen(task.read(d, "train"), 8)
        self.assertLen(task.read(d, "test"), 4)  # a labelled split to score on
        self.assertEqual([s.name for s in task.present_eval_splits(d)], ["dev", "test"])
        self.assertEqual(task.files(d, "test"), [os.path.join(d, TEST_FILE_SHORT)])
        self._file(d, TEST_FILE, 2)  # both names present: the authors' wins
        self.assertLen(task.read(d, "test"), 2)


class CsvTaskTest(absltest.TestCase):
    def test_user_csv(self):
        d = self.create_tempdir().full_path
        _write(d, "train.csv", ["id,review,stars", '1,"great, really",pos', "2,meh,neg"])
        _write(d, "dev.csv", ["review,stars", "ok,pos", "bad,neutral"])
        _write(d, "test.csv", ["review", "fine"])
        labels = csv_labels(os.path.join(d, "train.csv"), "stars")
        self.assertEqual(labels, ["neg", "pos"])
        task = csv_task(["review"], "stars", labels)
        x = task.read(d, "train")
        self.assertEqual((x.text_a, x.labels), (["great, really", "meh"], [1, 0]))
        self.assertIsNone(task.read(d, "test").labels)
        with self.assertRaisesRegex(DataError, r"dev.csv:3: label .*'neutral'"):
            task.read(d, "dev")
        with self.assertRaisesRegex(DataError, r"train.csv:1: the header lacks .*'title'"):
            csv_task(["title", "review"], "stars", labels).read(d, "train")
        with self.assertRaisesRegex(ValueError, "head='entailment' does not fit 1 text column"):
            csv_task(["review"], "stars", labels, head="entailment")


if __name__ == "__main__":
    absltest.main()
