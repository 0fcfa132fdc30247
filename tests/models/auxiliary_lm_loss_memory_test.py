"""A fine-tuning step whose LM logits would exceed 2^31 elements runs in bounded memory.

The auxiliary LM loss of `GPT1Classifier` is chunked (`AuxiliaryLMLoss`): the
`(sequences, length, vocabulary)` logits never exist at once. Measured in a fresh
process (its peak resident memory is the step's alone), on the TensorFlow backend.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
from absl.testing import absltest

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class AuxiliaryLMLossMemoryTest(absltest.TestCase):
    def test_step_past_two_to_the_31_logits_runs_in_bounded_memory(self):
        # 129 x 256 positions x 65,536 tokens = 2.16e9 > 2^31 logits (8.7 GB in
        # float32); hidden size 8 keeps the step cheap. A fresh process, so that its
        # peak resident memory is this step's alone.
        script = textwrap.dedent("""
            import json, resource, numpy as np, keras
            from gpt1_keras.models import GPT1Backbone, GPT1Classifier
            backbone = GPT1Backbone(vocabulary_size=65536, num_layers=1, num_heads=1,
                                    hidden_dim=8, intermediate_dim=16,
                                    max_sequence_length=256, dropout=0.0)
            model = GPT1Classifier(backbone, num_classes=2, lm_coef=0.5, dropout=0.0)
            model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
            rng = np.random.default_rng(0)
            x = {"token_ids": rng.integers(0, 65536, (129, 256)).astype("int32"),
                 "padding_mask": np.ones((129, 256), "int32")}
            y = np.zeros((129,), "int32")
            loss = model.train_on_batch(x, y, return_dict=True)["loss"]
            print(json.dumps({"loss": float(loss), "peak_kb":
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
        """)
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
               "PYTHONPATH": _ROOT}
        result = subprocess.run([sys.executable, "-c", script], env=env, cwd=_ROOT,
                                capture_output=True, text=True, timeout=900)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        out = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertTrue(np.isfinite(out["loss"]), out)
        # Task loss ~log 2 plus 0.5 x the LM loss of a near-uniform model, ~log 65536.
        self.assertAlmostEqual(out["loss"], np.log(2) + 0.5 * np.log(65536), delta=0.2)
        # Measured 3.2 GB on TensorFlow (1.7 on JAX, 2.2 on torch): the framework and
        # one 1,024-position chunk's logits and gradient, 256 MB each; the full logits
        # alone would be 8.7 GB.
        peak_gb = out["peak_kb"] / 2**20
        self.assertLess(peak_gb, 5.0, f"peak resident memory {peak_gb:.1f} GB")



if __name__ == "__main__":
    absltest.main()
