"""Tests for gpt1_keras.training.pretraining's config: recipes, overrides, the checks.

In-process and fast: no training (`tests/pipelines/pretrain_binary_test.py` runs it).
"""

import os

from absl.testing import absltest

from gpt1_keras.data.lm_dataset import default_corpus_path
from gpt1_keras.errors import ConfigError
from gpt1_keras.training import distribution as distribution_lib
from gpt1_keras.training.pretraining import RECIPES
from gpt1_keras.training.pretraining import PretrainConfig
from tests import test_case


class PretrainConfigTest(absltest.TestCase):

    def test_defaults_are_the_small_recipe(self):
        small = PretrainConfig.from_recipe("small")
        for name, value in RECIPES["small"].items():
            self.assertEqual(getattr(PretrainConfig(), name), value, name)
            self.assertEqual(getattr(small, name), value, name)
        self.assertEqual(small.train_files, (default_corpus_path(),))

    def test_every_recipe_is_valid(self):
        for name in RECIPES:
            config = PretrainConfig.from_recipe(name, model_dir=self.create_tempdir().full_path)
            self.assertEqual(config.batch_size, RECIPES[name]["batch_size"])
        books = PretrainConfig.from_recipe("books")
        self.assertEqual((books.preset, books.validation_books), ("gpt1_small", 250))
        # Every checkpoint of the run is kept (plus the final one).
        self.assertGreaterEqual(books.keep_checkpoints,
                                books.train_steps // books.checkpoint_every + 1)

    def test_train_steps_and_epochs_replace_each_other(self):
        paper = PretrainConfig.from_recipe("paper", train_steps=10)
        self.assertEqual((paper.train_steps, paper.epochs), (10, None))
        small = PretrainConfig.from_recipe("small", epochs=0.5)
        self.assertEqual((small.train_steps, small.epochs), (None, 0.5))
        with self.assertRaisesRegex(ConfigError, "set exactly one"):
            PretrainConfig(train_steps=10, epochs=1.0)

    def test_recipe_warmup_is_cut_to_the_run_an_explicit_one_is_checked(self):
        self.assertEqual(PretrainConfig.from_recipe("small", train_steps=20).warmup_for(20), 20)
        self.assertEqual(PretrainConfig.from_recipe("small", epochs=1.0).warmup_for(7), 7)
        with self.assertRaisesRegex(ConfigError, r"^warmup_steps=30 exceeds train_steps=20"):
            PretrainConfig.from_recipe("small", train_steps=20, warmup_steps=30)
        config = PretrainConfig.from_recipe("small", epochs=1.0, warmup_steps=30)
        with self.assertRaisesRegex(ConfigError,
                                    r"^warmup_steps=30 exceeds the 7 updates of epochs=1.0"):
            config.warmup_for(7)

    def test_model_overrides_are_checked_and_normalised(self):
        config = PretrainConfig(preset="gpt1_tiny", sequence_length=16,
                                model_overrides={"num_layers": 1, "dropout": 0.0})
        self.assertEqual(config.model_overrides, (("dropout", 0.0), ("num_layers", 1)))
        self.assertEqual(config.backbone_arguments()["num_layers"], 1)
        with self.assertRaisesRegex(ConfigError, r"^model_overrides: unknown backbone "
                                                 r"arguments \['layers'\]"):
            PretrainConfig(preset="gpt1_tiny", sequence_length=16, model_overrides={"layers": 1})
        # `remat`, which no preset sets, for the transformer only.
        config = PretrainConfig(preset="gpt1_tiny", sequence_length=16,
                                model_overrides={"remat": True})
        self.assertTrue(config.backbone_arguments()["remat"])
        with self.assertRaisesRegex(ConfigError, r"^model_overrides: unknown backbone "
                                                 r"arguments \['remat'\]"):
            PretrainConfig(architecture="lstm", preset="lstm_tiny", sequence_length=16,
                           model_overrides={"remat": True})
        # The context is the overridden one.
        with self.assertRaisesRegex(ConfigError, r"^sequence_length=16 must be in \[1, 8\]"):
            PretrainConfig(preset="gpt1_tiny", sequence_length=16, sample_tokens=4,
                           model_overrides={"max_sequence_length": 8})

    def test_each_bad_setting_is_named(self):
        tiny = dict(preset="gpt1_tiny", sequence_length=16, sample_tokens=5)
        cases = [
            (dict(preset="gpt9"), r"^preset: Unknown GPT-1 preset 'gpt9'"),
            (dict(train_files=["/no/such/*.txt"]), r"^train_files: The glob '/no/such/\*.txt'"),
            (dict(validation_files=["/no/file"]), r"^validation_files: No such file"),
            (dict(validation_fraction=1.0), r"^validation_fraction=1.0 must be in \(0, 1\)"),
            (dict(validation_books=-1), r"^validation_books=-1 must be >= 0"),
            (dict(batch_size=0), r"^batch_size=0 must be an integer >= 1"),
            (dict(train_steps=0), r"^train_steps=0 must be"),
            (dict(epochs=-1.0, train_steps=None), r"^epochs=-1.0 must be > 0"),
            (dict(learning_rate=0.0), r"^learning_rate=0.0 must be > 0"),
            (dict(schedule="step"), r"^schedule='step' is unknown; known: cosine, linear"),
            (dict(warmup_steps=-1), r"^warmup_steps=-1 must be >= 0"),
            (dict(clip_norm=-1.0), r"^clip_norm=-1.0 must be >= 0"),
            (dict(precision="float16"), r"^precision='float16' is unknown"),
            (dict(strategy="spmd"), r"^strategy='spmd' is unknown"),
            (dict(strategy="tpu"), r"^strategy=tpu needs tpu"),
            (dict(num_samples=-1), r"^num_samples=-1 must be >= 0"),
            (dict(sample_tokens=64), r"^sample_tokens=64 must be below the context"),
        ]
        for overrides, message in cases:
            with self.assertRaisesRegex(ConfigError, message, msg=str(overrides)):
                PretrainConfig(**{**tiny, **overrides})
        # No samples: any sample length is fine.
        PretrainConfig(**{**tiny, "num_samples": 0, "sample_tokens": 64})

    def test_lstm_architecture_takes_the_recipes_equal_size_preset(self):
        self.assertEqual(PretrainConfig.from_recipe("small", architecture="lstm").preset,
                         "lstm_small")
        self.assertEqual(PretrainConfig.from_recipe("books", architecture="lstm").preset,
                         "lstm_small")
        tiny = PretrainConfig.from_recipe("small", architecture="lstm", preset="lstm_tiny",
                                          sequence_length=16)
        self.assertEqual(tiny.backbone_arguments()["lstm_units"], 64)
        self.assertIn("architecture", PretrainConfig.RESUME_KEYS)
        with self.assertRaisesRegex(ConfigError, r"^preset: Preset 'gpt1' has no counterpart "
                                                 r"of architecture='lstm'"):
            PretrainConfig.from_recipe("paper", architecture="lstm")
        with self.assertRaisesRegex(ConfigError, r"^preset: .*'gpt1_tiny' is a preset of "
                                                 r"architecture='transformer'"):
            PretrainConfig.from_recipe("small", architecture="lstm", preset="gpt1_tiny")
        with self.assertRaisesRegex(ConfigError, r"^architecture='gru' is unknown; known: "
                                                 r"transformer, lstm"):
            PretrainConfig.from_recipe("small", architecture="gru")

    def test_unknown_recipe(self):
        with self.assertRaisesRegex(ConfigError, r"^recipe='huge' is unknown; known: small"):
            PretrainConfig.from_recipe("huge")

    def test_model_dir_is_absolute(self):
        config = PretrainConfig(model_dir="relative/run")
        self.assertEqual(config.model_dir, os.path.abspath("relative/run"))


class DistributionCheckTest(absltest.TestCase):

    def test_batch_must_split_over_replicas(self):
        distribution = distribution_lib.Distribution(name="mirrored", num_replicas=2)
        distribution.check(4, jit_compile=False)
        with self.assertRaisesRegex(ConfigError, r"^batch_size=3 is not divisible by the 2 "
                                                 r"replicas of strategy=mirrored"):
            distribution.check(3, jit_compile=False)

    def test_multi_worker_processes_lock_their_own_directories(self):
        from gpt1_keras.run_lock import RunLock
        from gpt1_keras.training.pretraining import lock_directory

        model_dir = self.create_tempdir().full_path
        chief = distribution_lib.Distribution(name="multi_worker", task="worker-0")
        worker = distribution_lib.Distribution(name="multi_worker", is_chief=False,
                                               task="worker-1")
        self.assertEqual(lock_directory(model_dir, chief), model_dir)
        self.assertEqual(lock_directory(model_dir, worker),
                         os.path.join(model_dir, "workers", "worker-1"))
        # Both held at once (as two processes on one host would): no conflict.
        with RunLock(lock_directory(model_dir, chief), "pretrain"), \
                RunLock(lock_directory(model_dir, worker), "pretrain"):
            pass

    def test_single_process_has_one_input_pipeline(self):
        distribution = distribution_lib.make_distribution("default")
        self.assertEqual((distribution.num_input_pipelines, distribution.task), (1, "chief"))


class PretrainPresetTest(absltest.TestCase):

    def test_run_writes_a_preset_from_preset_loads(self):
        # Issue #12: `model_dir/preset/` holds the trained backbone and the tokenizer,
        # loaded by keras-hub's own entry points with the weights of `model.keras`.
        import keras
        import keras_hub
        import numpy as np

        from gpt1_keras.models import GPT1Backbone
        from gpt1_keras.tokenizers import GPT1Tokenizer
        from gpt1_keras.training.pretraining import pretrain

        config = test_case.tiny_pretrain_config(
            self, preset="gpt1_tiny", train_steps=3, eval_steps=1, sample_tokens=2)
        model_dir = config.model_dir
        pretrain(config)
        preset = os.path.join(model_dir, "preset")
        # Only the preset: no temporary directory is left beside it.
        self.assertEqual([n for n in os.listdir(model_dir) if n.startswith(".preset")], [])
        backbone = keras_hub.models.Backbone.from_preset(preset)
        self.assertIsInstance(backbone, GPT1Backbone)
        lm = keras.saving.load_model(os.path.join(model_dir, "model.keras"), compile=False)
        for trained, loaded in zip(lm.backbone.weights, backbone.weights):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded),
                                          keras.ops.convert_to_numpy(trained))
        tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(preset)
        self.assertIsInstance(tokenizer, GPT1Tokenizer)
        self.assertEqual(tokenizer(["the quick fox"]).to_list(),
                         GPT1Tokenizer()(["the quick fox"]).to_list())


class CustomVocabularyTest(absltest.TestCase):
    """Issue #27: a run's own BPE travels with the model (preset, `.keras`) and sets its size."""

    def test_learned_bpe_sets_the_model_and_travels_with_it(self):
        import keras
        import keras_hub
        import numpy as np

        from gpt1_keras.tokenizers import GPT1Tokenizer
        from gpt1_keras.training.pretraining import pretrain

        config = test_case.tiny_pretrain_config(
            self, preset="gpt1_tiny", bpe_vocabulary_size=60, train_steps=3, eval_steps=1,
            sample_tokens=2)
        metrics = pretrain(config)
        tokenizer_dir = os.path.join(config.model_dir, "tokenizer")
        learned = GPT1Tokenizer.from_preset(tokenizer_dir)
        self.assertEqual(learned.vocabulary_size(), 63)  # 60 + the 3 special tokens
        self.assertEqual(metrics["vocabulary_size"], 63)
        text = ["the quick brown fox jumps over the lazy dog ."]
        ids = learned(text).to_list()
        self.assertNotEqual(ids, GPT1Tokenizer()(text).to_list())
        # The saved model: a 63-row embedding, and its own preprocessor's tokenizer.
        lm = keras.saving.load_model(os.path.join(config.model_dir, "model.keras"),
                                     compile=False)
        self.assertEqual(lm.backbone.vocabulary_size, 63)
        self.assertEqual(lm.preprocessor.tokenizer(text).to_list(), ids)
        # The preset: keras-hub's loader gives the same tokenizer and backbone.
        preset = os.path.join(config.model_dir, "preset")
        self.assertEqual(keras_hub.tokenizers.Tokenizer.from_preset(preset)(text).to_list(), ids)
        backbone = keras_hub.models.Backbone.from_preset(preset)
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(backbone.token_embedding.embeddings),
            keras.ops.convert_to_numpy(lm.backbone.token_embedding.embeddings))
        # A second run on that tokenizer directory: the same vocabulary.
        again = test_case.tiny_pretrain_config(
            self, preset="gpt1_tiny", tokenizer=tokenizer_dir, train_steps=1, eval_steps=1,
            num_samples=0, warmup_steps=0)
        self.assertEqual(pretrain(again)["vocabulary_size"], 63)

    def test_mismatches_are_named(self):
        from gpt1_keras.tokenizers import train_bpe
        from gpt1_keras.training.pretraining import pretrain

        directory = os.path.join(self.create_tempdir().full_path, "bpe")
        train_bpe(["the quick brown fox jumps over the lazy dog ."] * 20, 40,
                  output_dir=directory)
        config = test_case.tiny_pretrain_config(
            self, preset="gpt1_tiny", tokenizer=directory, train_steps=1,
            model_overrides={"vocabulary_size": 500})
        with self.assertRaisesRegex(
                ConfigError, "vocabulary_size=500 differs from the 43 token ids of the "
                f"tokenizer \\({directory}\\)"):
            pretrain(config)
        with self.assertRaisesRegex(ConfigError, "give one"):
            test_case.tiny_pretrain_config(self, tokenizer=directory, bpe_vocabulary_size=50)
        with self.assertRaisesRegex(ConfigError, "bpe_vocabulary_size=-1"):
            test_case.tiny_pretrain_config(self, bpe_vocabulary_size=-1)
        with self.assertRaisesRegex(ConfigError, "is not a directory"):
            test_case.tiny_pretrain_config(self, tokenizer=directory + "/missing")
        # A corpus too small for the vocabulary asked for names the corpus.
        config = test_case.tiny_pretrain_config(
            self, preset="gpt1_tiny", bpe_vocabulary_size=5000, train_steps=1)
        with self.assertRaisesRegex(
                ConfigError, f"{config.model_dir}/data/train.txt is too small for a "
                "vocabulary of 5000 tokens: BPE stopped at"):
            pretrain(config)


class ZeroShotProbesTest(absltest.TestCase):
    def test_probes_are_scored_at_each_validation_pass(self):
        from gpt1_keras.training.pretraining import pretrain

        sst2 = self.create_tempdir("sst2").full_path
        with open(os.path.join(sst2, "dev.tsv"), "w") as f:
            f.write("sentence\tlabel\nthe quick fox is great .\t1\nthe lazy dog is bad .\t0\n")
        config = test_case.tiny_pretrain_config(
            self, preset="gpt1_tiny", train_steps=6, steps_per_epoch=3, checkpoint_every=3,
            eval_steps=1, num_samples=0, zero_shot_probes=(f"sst2={sst2}",))
        self.assertEqual(config.zero_shot_probes, (("sst2", sst2),))
        history = pretrain(config)["history"]
        self.assertEqual([e["step"] for e in history], [3, 6])
        for entry in history:
            self.assertIn(entry["zero_shot_sst2"], (0.0, 0.5, 1.0))
        with self.assertRaisesRegex(ConfigError, "heuristic=data_dir"):
            test_case.tiny_pretrain_config(self, zero_shot_probes=("sst2",))


if __name__ == "__main__":
    absltest.main()
