"""The LSTM baseline pretrains through the same recipe as the transformer (any backend).

`pretrain(PretrainConfig(architecture="lstm", ...))`: the same tokens, trainer,
checkpoints and artifacts; the saved `model.keras` reloads as a `GPT1CausalLM` on an
`LSTMBackbone` with the trained weights, and a rerun of the finished run resumes
without training.
"""

import json
import os

import keras
import numpy as np
from absl.testing import absltest

from gpt1_keras.models import GPT1CausalLM
from gpt1_keras.models import LSTMBackbone
from gpt1_keras.training.pretraining import pretrain
from tests import test_case


class PretrainLSTMTest(absltest.TestCase):

    def test_lstm_pretrains_saves_and_resumes(self):
        config = test_case.tiny_pretrain_config(
            self, architecture="lstm", preset="lstm_tiny", train_steps=6, eval_steps=2,
            sample_tokens=4, learning_rate=3e-3)
        model_dir = config.model_dir
        metrics = pretrain(config)
        self.assertEqual(metrics["final_step"], 6)
        history = metrics["history"]
        self.assertLess(history[-1]["loss"], history[0]["loss"])
        self.assertTrue(np.isfinite(metrics["val_loss"]))

        lm = keras.saving.load_model(os.path.join(model_dir, "model.keras"), compile=False)
        self.assertIsInstance(lm, GPT1CausalLM)
        self.assertIsInstance(lm.backbone, LSTMBackbone)
        self.assertEqual(lm.backbone.lstm_units, 64)
        with open(os.path.join(model_dir, "config.json")) as f:
            self.assertEqual(json.load(f)["architecture"], "lstm")
        with open(os.path.join(model_dir, "samples.txt")) as f:
            self.assertIn("--- sample 1", f.read())

        # The finished run resumes at its last step: nothing is trained again.
        again = pretrain(config)
        self.assertEqual(again["resumed_from_step"], 6)
        self.assertEqual(again["final_step"], 6)


if __name__ == "__main__":
    absltest.main()
