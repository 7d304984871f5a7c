"""jaxgan.data: datasets and input pipelines (the only jaxgan package that imports TensorFlow).

Public API
- make_train_iterator(config, *, start_step=0, process_index=None, process_count=None) -> iterator of
  dict(input float32 (b, H, W, 3) in [-1, 1], target float32 (b, H, W, 3) in [-1, 1] | int32 (b, H, W))
- make_eval_iterator(config, *, split=None, process_index=None, process_count=None) -> same + valid (b,)
- make_semi_train_iterator(config, ...) -> labelled batches + `unlabelled_input` (variants.labelled_fraction)
- load_image(path) -> uint8 (H, W, 3); DataError(ValueError) for every kind of bad input
- blur: kernels and blur synthesis (numpy); sources / folders / builtin: the datasets

TensorFlow is imported (with GPUs hidden from it) only when an iterator is first requested, so
`import jaxgan.data` alone stays cheap.
"""

from jaxgan.data.errors import DataError
from jaxgan.data.image_files import load_image

__all__ = ["DataError", "load_image", "make_train_iterator", "make_eval_iterator", "make_semi_train_iterator"]


def __getattr__(name):
    if name in ("make_train_iterator", "make_eval_iterator", "make_semi_train_iterator"):
        from jaxgan.data import pipeline  # deferred: TensorFlow, loaded on the first iterator asked for

        return getattr(pipeline, name)
    raise AttributeError(f"module 'jaxgan.data' has no attribute {name!r}")
