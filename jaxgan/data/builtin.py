"""Locally generated tfds datasets (no download): the helpers their builders share.

The builders are `photo_blur`, `shapes_seg` and `photo_seg`; `jaxgan.data.prepare.prepare_builtin(name,
config)` returns one prepared. The generated data depends on `config.data.num_train_examples` (and, for photo_blur, on
`config.data.blur_strength`); each combination is its own tfds builder config, so changing them never
reads stale data. Data lives in `config.data.data_dir` ('' = the tfds default, ~/tensorflow_datasets).
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxgan import logs
from jaxgan.data import tf_cpu  # noqa: F401  (hides GPUs from TensorFlow before tfds uses it)


class LocalBuilder(tfds.core.GeneratorBasedBuilder):
    """A tfds builder whose data is generated here: tfds's download lines ("Downloading and preparing
    dataset Unknown size ...", "... downloaded and prepared to ...") give way to prepare_builtin's."""

    def _log_download_bytes(self) -> None:
        if logs.verbose():
            super()._log_download_bytes()

    def _log_download_done(self) -> None:
        if logs.verbose():
            super()._log_download_done()


def example_rng(*keys) -> np.random.Generator:
    """A numpy Generator fixed by any tuple of ints / strings (stable across runs and machines)."""
    digest = hashlib.sha256(repr(keys).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def png_file(array: np.ndarray) -> io.BytesIO:
    """uint8 (H, W, C) -> an in-memory PNG (fast compression) that tfds Image features store as is
    (4x faster than letting tfds encode through TensorFlow)."""
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, format="PNG", compress_level=1)
    buffer.seek(0)
    return buffer


def split_sizes(num_train_examples: int, default_train: int) -> dict[str, int]:
    """Examples per split: train = num_train_examples (0 = default_train), test = max(8, train // 4)."""
    train = int(num_train_examples) or default_train
    if train < 1:
        raise ValueError(f"num_train_examples={num_train_examples}: must be >= 0")
    return {"train": train, "test": max(8, train // 4)}
