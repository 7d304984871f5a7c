"""Locally generated tfds datasets (no download): shared helpers to build and find them.

`prepare_builtin(name, config)` returns a prepared `tfds` builder of `photo_blur`, `shapes_seg` or
`photo_seg`.
The generated data depends on `config.data.num_train_examples` (and, for photo_blur, on
`config.data.blur_strength`); each combination is its own tfds builder config, so changing them never
reads stale data. Data lives in `config.data.data_dir` ('' = the tfds default, ~/tensorflow_datasets).
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import sys
import time

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


def prepare_builtin(name: str, config) -> tfds.core.DatasetBuilder:
    """Builds (once) and returns the prepared builder of a built-in dataset named by config.data.name."""
    from jaxgan.data import photo_blur, photo_seg, shapes_seg  # builders import this module

    data_dir = config.data.data_dir or None
    if name == "photo_blur":
        make = lambda: photo_blur.PhotoBlur.for_config(config, data_dir=data_dir)  # noqa: E731
        default_train = photo_blur.DEFAULT_TRAIN_EXAMPLES
    elif name == "shapes_seg":
        make = lambda: shapes_seg.ShapesSeg.for_config(config, data_dir=data_dir)  # noqa: E731
        default_train = shapes_seg.DEFAULT_TRAIN_EXAMPLES
    elif name == "photo_seg":
        make = lambda: photo_seg.PhotoSeg.for_config(config, data_dir=data_dir)  # noqa: E731
        default_train = photo_seg.DEFAULT_TRAIN_EXAMPLES
    else:
        raise ValueError(f"unknown built-in dataset {name!r}; valid: photo_blur, shapes_seg, photo_seg")
    builder = make()
    if builder.is_prepared():
        return builder
    # Several processes of one host may start at once: one generates, the others wait and reuse.
    os.makedirs(os.path.dirname(builder.data_dir), exist_ok=True)
    with open(builder.data_dir + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        builder = make()
        if not builder.is_prepared():
            if not logs.verbose():
                tfds.disable_progress_bar()
            sizes = split_sizes(config.data.num_train_examples, default_train)
            print(f"building {name} (first run only): {sizes['train']} train / {sizes['test']} test examples "
                  f"in {builder.data_dir} ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
                compute_stats=tfds.download.ComputeStatsMode.SKIP))
            print(f"built {name} in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return builder
