"""`//pipelines:pretrain` that SIGKILLs itself right after the checkpoint at `--kill_at`.

For `pretrain_binary_test`: the kill lands at a deterministic point (the checkpoint of
that step is complete, nothing after it has run), unlike a parent polling for the file.
"""

import os
import signal

import keras
from absl import app
from absl import flags

from pipelines import pretrain as binary
from gpt1_keras.training import pretraining

_KILL_AT = flags.DEFINE_integer("kill_at", None, "Optimizer step to die after.")


class _KillAfterStep(keras.callbacks.Callback):
    # Runs after the trainer's own callbacks, so that step's checkpoint is written.
    def on_train_batch_end(self, batch, logs=None):
        if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) == _KILL_AT.value:
            os.kill(os.getpid(), signal.SIGKILL)


def main(argv):
    del argv
    pretraining.pretrain(binary.config_from_flags(), callbacks=[_KillAfterStep()])


if __name__ == "__main__":
    app.run(main)
