"""finetune(): a tiny end-to-end run on SST-2/STS-B-format files, transfer ablations."""

import json
import os

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.models import GPT1Backbone
from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.tasks import get_task
from gpt1_keras.tasks.finetuning import FinetuneConfig
from gpt1_keras.tasks.finetuning import build_backbone
from gpt1_keras.tasks.finetuning import finetune
from tests.data.fake_tokenizer import FakeTokenizer

TINY = dict(vocabulary_size=904, num_layers=2, num_heads=2, hidden_dim=16,
            intermediate_dim=32, max_sequence_length=16)


def _write(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join("\t".join(r) + "\n" for r in rows))


class FinetuneTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        keras.utils.set_random_seed(1)
        cls.checkpoint = os.path.join(absltest.get_default_test_tmpdir(), "lm.keras")
        GPT1CausalLM(GPT1Backbone(**TINY)).save(cls.checkpoint)

    def test_sst2_end_to_end(self):
        data = self.create_tempdir().full_path
        # Label 1 iff the text starts with 5: learnable from the classify state.
        rows = [("5 1 2", "1"), ("6 1 2", "0"), ("5 3", "1"), ("6 3", "0")] * 4
        _write(f"{data}/train.tsv", [("sentence", "label")] + rows)
        _write(f"{data}/dev.tsv", [("sentence", "label")] + rows[:4])
        _write(f"{data}/test.tsv", [("index", "sentence"), ("0", "5 2"), ("1", "6 2")])
        out = self.create_tempdir().full_path
        config = FinetuneConfig(data_dir=data, output_dir=out,
                                init_checkpoint=self.checkpoint, learning_rate=1e-2,
                                batch_size=4, epochs=10, sequence_length=8, verbose=0,
                                # The aux loss dominates a 904-token toy LM; it has
                                # its own tests (gpt1_classifier_test).
                                lm_coef=0.0)
        results = finetune(config, get_task("sst2"), tokenizer=FakeTokenizer())
        with open(os.path.join(out, "metrics.json")) as f:
            written = json.load(f)
        self.assertEqual(written["splits"], results["splits"])
        self.assertEqual(written["train_steps"], 40)  # 16 examples / 4 * 10 epochs
        self.assertEqual(written["splits"]["dev"]["num_examples"], 4)
        self.assertGreaterEqual(written["splits"]["dev"]["accuracy"], 0.75)
        with open(os.path.join(out, "predictions", "SST-2.tsv")) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], "index\tprediction")
        self.assertEqual([line.split("\t")[0] for line in lines[1:]], ["0", "1"])
        self.assertTrue(all(line.split("\t")[1] in ("0", "1") for line in lines[1:]))
        model = keras.saving.load_model(os.path.join(out, "model.keras"), compile=False)
        self.assertEqual(model.task, "classification")

    def test_story_cloze_and_stsb_run(self):
        import csv

        from gpt1_keras.tasks.story_cloze import TEST_FILE
        from gpt1_keras.tasks.story_cloze import VAL_FILE

        sc = self.create_tempdir().full_path
        for name in (VAL_FILE, TEST_FILE):
            with open(os.path.join(sc, name), "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["InputStoryid", "InputSentence1", "InputSentence2",
                            "InputSentence3", "InputSentence4", "RandomFifthSentenceQuiz1",
                            "RandomFifthSentenceQuiz2", "AnswerRightEnding"])
                for i in range(10):
                    w.writerow([f"s{i}", "1", "2", "3", "4", "5", "6 7", str(1 + i % 2)])
        base = dict(init_checkpoint=self.checkpoint, batch_size=4, epochs=1,
                    sequence_length=12, verbose=0)
        out = self.create_tempdir().full_path
        results = finetune(FinetuneConfig(data_dir=sc, output_dir=out, **base),
                           get_task("story_cloze"), tokenizer=FakeTokenizer())
        self.assertEqual(results["splits"]["dev"]["num_examples"], 2)
        self.assertEqual(results["splits"]["test"]["num_examples"], 10)
        with open(os.path.join(out, "predictions", "story_cloze.tsv")) as f:
            rows = [line.split("\t") for line in f.read().splitlines()[1:]]
        self.assertEqual([r[0] for r in rows], [f"s{i}" for i in range(10)])
        self.assertTrue(all(r[1] in ("1", "2") for r in rows))

        sts = self.create_tempdir().full_path
        header = ("index", "genre", "filename", "year", "old_index", "source1", "source2",
                  "sentence1", "sentence2")
        for split in ("train", "dev"):
            _write(f"{sts}/{split}.tsv", [header + ("score",)] + [
                (str(i), "g", "f", "y", "o", "s", "s", "1 2", "3", f"{i % 5}.0")
                for i in range(6)])
        _write(f"{sts}/test.tsv", [header, ("0", "g", "f", "y", "o", "s", "s", "1", "2")])
        out = self.create_tempdir().full_path
        results = finetune(FinetuneConfig(data_dir=sts, output_dir=out, **base),
                           get_task("stsb"), tokenizer=FakeTokenizer())
        self.assertEqual(set(results["splits"]["dev"]), {"pearson", "spearman",
                                                         "num_examples"})
        with open(os.path.join(out, "predictions", "STS-B.tsv")) as f:
            lines = f.read().splitlines()
        self.assertLen(lines, 2)
        float(lines[1].split("\t")[1])  # a score, not a class

    def test_missing_files_fail_before_training(self):
        data = self.create_tempdir().full_path
        _write(f"{data}/train.tsv", [("sentence", "label"), ("1", "1")])
        config = FinetuneConfig(data_dir=data, output_dir=self.create_tempdir().full_path,
                                init_checkpoint=self.checkpoint)
        with self.assertRaisesRegex(FileNotFoundError, r"'sst2': looked for .*dev.tsv"):
            finetune(config, get_task("sst2"), tokenizer=FakeTokenizer())
        with self.assertRaisesRegex(ValueError, "init_checkpoint.*required"):
            FinetuneConfig(data_dir=data, output_dir=data)

    def test_layers_to_transfer_and_no_pretraining(self):
        pretrained = keras.saving.load_model(self.checkpoint).backbone

        def same(a, b):
            return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))

        base = dict(data_dir="", output_dir="", init_checkpoint=self.checkpoint)
        full = build_backbone(FinetuneConfig(**base))
        self.assertTrue(same(full, pretrained))
        one = build_backbone(FinetuneConfig(**base, layers_to_transfer=1))
        self.assertTrue(same(one.token_embedding, pretrained.token_embedding))
        self.assertTrue(same(one.position_embedding, pretrained.position_embedding))
        self.assertTrue(same(one.transformer_layers[0], pretrained.transformer_layers[0]))
        self.assertFalse(same(one.transformer_layers[1], pretrained.transformer_layers[1]))
        scratch = build_backbone(FinetuneConfig(**base, no_pretraining=True))
        self.assertFalse(same(scratch.token_embedding, pretrained.token_embedding))
        self.assertEqual(scratch.num_layers, 2)
        with self.assertRaisesRegex(ValueError, "layers_to_transfer=5 .* 2 layers"):
            build_backbone(FinetuneConfig(**base, layers_to_transfer=5))


if __name__ == "__main__":
    absltest.main()
