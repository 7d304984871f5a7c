"""`prepare_builtin(name, config)`: the prepared tfds builder of a built-in (locally generated) dataset.

Built once per combination of the settings the data depends on (see jaxgan.data.builtin), in
`config.data.data_dir` ('' = the tfds default); several processes of one host starting at once
share one build (a file lock: one generates, the others wait and reuse it).
"""

from __future__ import annotations

import fcntl
import os
import sys
import time

import tensorflow_datasets as tfds

from jaxgan import logs
from jaxgan.data import leaves_blur, photo_blur, photo_seg, shapes_seg
from jaxgan.data.builtin import split_sizes


def prepare_builtin(name: str, config) -> tfds.core.DatasetBuilder:
    """Builds (once) and returns the prepared builder of a built-in dataset named by config.data.name."""
    data_dir = config.data.data_dir or None
    if name == "photo_blur":
        make = lambda: photo_blur.PhotoBlur.for_config(config, data_dir=data_dir)  # noqa: E731
        default_train = photo_blur.DEFAULT_TRAIN_EXAMPLES
    elif name == "leaves_blur":
        make = lambda: leaves_blur.LeavesBlur.for_config(config, data_dir=data_dir)  # noqa: E731
        default_train = leaves_blur.DEFAULT_TRAIN_EXAMPLES
    elif name == "shapes_seg":
        make = lambda: shapes_seg.ShapesSeg.for_config(config, data_dir=data_dir)  # noqa: E731
        default_train = shapes_seg.DEFAULT_TRAIN_EXAMPLES
    elif name == "photo_seg":
        make = lambda: photo_seg.PhotoSeg.for_config(config, data_dir=data_dir)  # noqa: E731
        default_train = photo_seg.DEFAULT_TRAIN_EXAMPLES
    else:
        raise ValueError(f"unknown built-in dataset {name!r}; valid: photo_blur, leaves_blur, shapes_seg, photo_seg")
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
            sizes = (leaves_blur.split_sizes(config.data.num_train_examples) if name == "leaves_blur"
                     else split_sizes(config.data.num_train_examples, default_train))
            print(f"building {name} (first run only): {sizes['train']} train / {sizes['test']} test examples "
                  f"in {builder.data_dir} ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
                compute_stats=tfds.download.ComputeStatsMode.SKIP))
            print(f"built {name} in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return builder
