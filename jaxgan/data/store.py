"""A decoded-example store on disk: every row of a Source decoded once into memory-mapped uint8 arrays.

For splits too large for the in-memory cache (pipeline.CACHE_LIMIT_BYTES; GoPro's 2103 training pairs
decode to 11.6 GB), `config.data.store = DIR` decodes each example once into DIR/<name>-<digest>/ and
later reads it back as a copy out of the page cache instead of a PNG / JPEG decode. The values are the
decoder's, so batches (and exact resume) are unchanged. The digest covers the rows (paths or encoded
bytes) and, for files, their sizes and modification times: a changed dataset gets a new store.
Layout per column KEY: KEY.u8 (every example's bytes, flat), KEY.offsets.npy (int64, N + 1),
KEY.shapes.npy (int32, N x rank); written into a temporary folder and renamed when complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from jaxgan.data.sources import Source
from jaxgan.data.tf_cpu import tf


def digest(source: Source) -> str:
    """Hex digest of the source's rows (and of the files they name, by size and mtime)."""
    h = hashlib.sha256(source.name.encode())
    for key in sorted(source.columns):
        h.update(key.encode())
        for value in source.columns[key]:
            raw = value if isinstance(value, bytes) else os.fsencode(value)
            h.update(len(raw).to_bytes(8, "little") + raw)
            if not isinstance(value, bytes) and os.path.isfile(value):
                st = os.stat(value)
                h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def build(source: Source, directory: Path, load) -> None:
    """Decodes every row with `load` (row index -> decoded example; tf.data, in parallel, in order)
    into `directory` (module docstring)."""
    tmp = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=directory.parent))
    try:
        decoded = tf.data.Dataset.range(len(source)).map(load, num_parallel_calls=tf.data.AUTOTUNE,
                                                         deterministic=True)
        files, offsets, shapes = {}, {}, {}
        for row in decoded.prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
            for key, value in row.items():
                if key not in files:
                    files[key], offsets[key], shapes[key] = open(tmp / f"{key}.u8", "wb"), [0], []
                files[key].write(np.ascontiguousarray(value, np.uint8).tobytes())
                offsets[key].append(offsets[key][-1] + value.size)
                shapes[key].append(value.shape)
        for key, f in files.items():
            f.close()
            np.save(tmp / f"{key}.offsets.npy", np.asarray(offsets[key], np.int64))
            np.save(tmp / f"{key}.shapes.npy", np.asarray(shapes[key], np.int32))
        try:
            os.replace(tmp, directory)
        except OSError:  # another process finished the same store first
            if not directory.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def open_store(source: Source, root: str | os.PathLike, load) -> Path:
    """The store of `source` under `root`, built first with `load` when absent (module docstring)."""
    directory = Path(root).expanduser() / f"{source.name}-{digest(source)}"
    if not directory.is_dir():
        directory.parent.mkdir(parents=True, exist_ok=True)
        build(source, directory, load)
    return directory


def loader(directory: Path):
    """Row index (int64 scalar tensor) -> {KEY: uint8 tensor} read from the store in `directory`."""
    keys = sorted(p.name[:-len(".u8")] for p in directory.glob("*.u8"))
    data = {k: np.memmap(directory / f"{k}.u8", np.uint8, mode="r") for k in keys}
    offsets = {k: np.load(directory / f"{k}.offsets.npy") for k in keys}
    shapes = {k: np.load(directory / f"{k}.shapes.npy") for k in keys}

    def read(i):
        i = int(i)
        return [np.asarray(data[k][offsets[k][i]:offsets[k][i + 1]]).reshape(shapes[k][i]) for k in keys]

    def load(i):
        arrays = tf.numpy_function(read, [i], [tf.uint8] * len(keys), stateful=False)
        out = {}
        for k, a in zip(keys, arrays):
            a.set_shape([None] * shapes[k].shape[1])
            out[k] = a
        return out

    return load
