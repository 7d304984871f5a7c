"""A decoded-example store on disk: every row of a Source decoded once into raw files that tf.data reads back.

For splits too large for the in-memory cache (pipeline.CACHE_LIMIT_BYTES; GoPro's 2103 training pairs
decode to 11.6 GB), `config.data.store = DIR` ('auto': $XDG_CACHE_HOME/jaxgan/stores, by default
~/.cache/jaxgan/stores) decodes each example once into DIR/<name>-<digest>/; later reads are
`tf.io.read_file` + `tf.io.decode_raw` (a copy out of the page cache in tf.data's own threads: no
Python, no GIL) instead of a PNG / JPEG decode. What is stored is the caller's `load` of each row
(the pipeline stores the decoder's uint8 arrays, or for training with data.load_size the float32
frames of its deterministic resize), so batches are unchanged.

The digest covers the rows (paths or encoded bytes), for files their sizes and modification times,
the view (what `load` computes) and the format: a changed dataset or view gets a new store. Layout:
KEY/NNNNNNNN.raw per row and column (the array's bytes, C order, little-endian) and manifest.json
(format, digest, view, rows, per column its dtype and every row's shape), written into a temporary
folder and renamed when complete. Opening checks the manifest against the digest and every file's
size against it: a damaged or foreign store is one DataError line (never deleted here).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from jaxgan.data.errors import DataError
from jaxgan.data.sources import Source
from jaxgan.data.tf_cpu import tf

FORMAT = 2  # 1: flat KEY.u8 files read through tf.numpy_function (no manifest)
MANIFEST = "manifest.json"


def default_root() -> Path:
    """Where config.data.store = 'auto' puts stores: $XDG_CACHE_HOME/jaxgan/stores (~/.cache/...)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jaxgan" / "stores"


def digest(source: Source, view: str = "native") -> str:
    """Hex digest of the source's rows (and of the files they name, by size and mtime), the view and
    the store format."""
    h = hashlib.sha256(f"{source.name}\0{view}\0{FORMAT}".encode())
    for key in sorted(source.columns):
        h.update(key.encode())
        for value in source.columns[key]:
            raw = value if isinstance(value, bytes) else os.fsencode(value)
            h.update(len(raw).to_bytes(8, "little") + raw)
            if not isinstance(value, bytes) and os.path.isfile(value):
                st = os.stat(value)
                h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def _row_file(directory: Path, key: str, row: int) -> Path:
    return directory / key / f"{row:08d}.raw"


def _check_space(source: Source, root: Path, load) -> None:
    """DataError when the store would not fit on root's disk (estimated from the first row)."""
    first = load(tf.constant(0, tf.int64))
    need = len(source) * sum(int(np.prod(v.shape)) * v.dtype.size for v in first.values())
    free = shutil.disk_usage(root).free
    if need * 1.05 > free:
        raise DataError(f"{root}: the decoded {source.name} store needs about {need / 1e9:.1f} GB, the disk has "
                        f"{free / 1e9:.1f} GB free; free space, set config.data.store to a folder elsewhere, or "
                        "'' to decode the files at every use")


def build(source: Source, directory: Path, load, view: str = "native") -> None:
    """Decodes every row with `load` (row index -> dict of arrays; tf.data, in parallel, in order)
    into `directory` (module docstring), with a progress bar."""
    tmp = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=directory.parent))
    try:
        decoded = tf.data.Dataset.range(len(source)).map(load, num_parallel_calls=tf.data.AUTOTUNE,
                                                         deterministic=True)
        columns: dict = {}
        rows = tqdm(decoded.prefetch(tf.data.AUTOTUNE).as_numpy_iterator(), total=len(source), unit="example",
                    desc=f"decoding {source.name} once into {directory}")
        for i, row in enumerate(rows):
            for key, value in row.items():
                if key not in columns:
                    (tmp / key).mkdir()
                    columns[key] = {"dtype": value.dtype.name, "shapes": []}
                value.astype(value.dtype.newbyteorder("<"), copy=False).tofile(_row_file(tmp, key, i))
                columns[key]["shapes"].append(list(value.shape))
        manifest = {"format": FORMAT, "digest": directory.name.rsplit("-", 1)[1], "view": view,
                    "rows": len(source), "columns": columns}
        (tmp / MANIFEST).write_text(json.dumps(manifest))
        try:
            os.replace(tmp, directory)
        except OSError:  # another process finished the same store first
            if not directory.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check(directory: Path, rows: int) -> dict:
    """The manifest of the store in `directory`, after checking it belongs there (digest, format,
    rows) and that every row file has the size it lists; DataError naming the culprit otherwise."""
    fix = "delete the folder and it is rebuilt on the next run"
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{directory}: damaged decoded store (no readable {MANIFEST}: {e.__class__.__name__}); "
                        f"{fix}") from None
    expected = (FORMAT, directory.name.rsplit("-", 1)[1], rows)
    found = (manifest.get("format"), manifest.get("digest"), manifest.get("rows"))
    if found != expected:
        raise DataError(f"{directory}: stale decoded store (format, digest, rows {found}, expected {expected}: "
                        f"made by another jaxgan or for other data); {fix}")
    for key, column in manifest["columns"].items():
        itemsize = np.dtype(column["dtype"]).itemsize
        for i, shape in enumerate(column["shapes"]):
            path = _row_file(directory, key, i)
            size = path.stat().st_size if path.is_file() else None
            if size != int(np.prod(shape)) * itemsize:
                raise DataError(f"{path}: damaged decoded store ({'missing' if size is None else f'{size} bytes'}, "
                                f"its manifest says {int(np.prod(shape)) * itemsize}); {fix}")
    return manifest


def open_store(source: Source, root: str | os.PathLike, load, view: str = "native") -> Path:
    """The store of `source` (as `load` decodes it; `view` names what load computes) under `root`
    ('auto': default_root()), built first when absent, checked when present (module docstring)."""
    root = default_root() if str(root) == "auto" else Path(root).expanduser()
    directory = root / f"{source.name}-{digest(source, view)}"
    if not directory.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        _check_space(source, root, load)
        build(source, directory, load, view)
    check(directory, len(source))
    return directory


def loader(directory: Path):
    """Row index (int64 scalar tensor) -> {KEY: tensor} read from the (checked) store in `directory`."""
    manifest = json.loads((directory / MANIFEST).read_text())
    tables = {}
    for key, column in manifest["columns"].items():
        paths = [str(_row_file(directory, key, i)) for i in range(manifest["rows"])]
        tables[key] = (tf.constant(paths), tf.constant(np.asarray(column["shapes"], np.int32)),
                       tf.as_dtype(column["dtype"]))

    def load(i):
        out = {}
        for key, (paths, shapes, dtype) in tables.items():
            a = tf.reshape(tf.io.decode_raw(tf.io.read_file(paths[i]), dtype, little_endian=True), shapes[i])
            a.set_shape([None] * shapes.shape[1])
            out[key] = a
        return out

    return load
