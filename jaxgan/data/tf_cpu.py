"""TensorFlow for the input pipeline only: imported through here, it never takes a GPU (JAX owns them)."""

import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

try:
    tf.config.set_visible_devices([], "GPU")
except RuntimeError as e:  # TensorFlow was already initialised by the caller
    logging.warning("jaxgan.data could not hide GPUs from TensorFlow: %s", e)

__all__ = ["tf"]
