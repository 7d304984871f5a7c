"""TensorFlow for the input pipeline only: imported through here, it never takes a GPU (JAX owns them)."""

import logging

from jaxgan import logs

tf = logs.import_tensorflow()  # quiet unless --verbose (see jaxgan.logs)

try:
    tf.config.set_visible_devices([], "GPU")
except RuntimeError as e:  # TensorFlow was already initialised by the caller
    logging.warning("jaxgan.data could not hide GPUs from TensorFlow: %s", e)

__all__ = ["tf"]
