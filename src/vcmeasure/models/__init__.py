"""Keras 3 models (``keras.layers`` / ``keras.ops`` only, so they build under TF, JAX and PyTorch)."""
