"""Holds `RunLock(argv[1], "pretrain")`, prints "locked", then sleeps until killed."""

import sys
import time

from gpt1_keras.run_lock import RunLock

if __name__ == "__main__":
    with RunLock(sys.argv[1], "pretrain"):
        print("locked", flush=True)
        time.sleep(3600)
