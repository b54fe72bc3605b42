"""Seeds everywhere (reproducibility standard): one root seed from config, derived seeds per item."""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np


def derive_seed(root: int, *keys) -> int:
    """A stable 32-bit seed from a root seed and any keys (e.g. image index, step name)."""
    text = "/".join([str(int(root)), *map(str, keys)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and the Keras backend; ask TensorFlow for deterministic ops on the CPU."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    import keras

    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
