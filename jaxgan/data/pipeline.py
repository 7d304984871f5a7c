"""tf.data pipelines: decoded examples -> augmented, normalised numpy batches (TensorFlow never sees a GPU).

Batches are dicts of numpy arrays:
  input  float32 (b, H, W, 3) in [-1, 1]
  target float32 (b, H, W, 3) in [-1, 1] (task 'deblur') or int32 (b, H, W) class indices ('segment')
  valid  bool (b,) (eval only; False on rows padding the last batch)
with b = global batch size / process count. Each process reads the rows p, p + P, p + 2P, ... of a split.

Training order and augmentation are pure functions of (config.seed, process, position): example number
`pos` of a process (pos = step * b + row) is row perm_e[pos mod N] of epoch e = pos // N, perm_e a
stateless permutation seeded by (seed, e), and every random crop / flip / rot90 / scale / colour draw
is stateless, seeded by (seed, global position). So batch n is the same whether the iterator starts
at 0 or at start_step = k <= n, and starting at k costs nothing (no skipped decoding).
Epochs are full permutations (no shuffle buffer).

Paired augmentation: one random window, flip and rot90 for input and target; colour jitter applies
the same brightness / contrast / saturation factors to blurred and sharp (contrast pivots on each
image's own mean, which blur preserves); for segmentation it changes the input image only.
With config.data.cache the decoded examples of this process are kept in memory (when below
CACHE_LIMIT_BYTES); with config.data.store = DIR they are decoded once into files there
(jaxgan.data.store, for splits larger than that; training with data.load_size stores the resized
float32 frames, so the resize runs once); otherwise files are decoded at every use.
"""

from __future__ import annotations

import functools
import json
import logging
import math

import numpy as np

from jaxgan.data import deblurganv2_aug, prior, store
from jaxgan.data.errors import DataError
from jaxgan.data.sources import Source, make_source
from jaxgan.data.tf_cpu import tf

CACHE_LIMIT_BYTES = 4 << 30  # decoded-example cache (config.data.cache) only below this size
AUTOTUNE = tf.data.AUTOTUNE


# ---- rows and caching -------------------------------------------------------------------------

def _process(process_index, process_count) -> tuple[int, int]:
    if process_index is None or process_count is None:
        import jax

        process_index = jax.process_index() if process_index is None else process_index
        process_count = jax.process_count() if process_count is None else process_count
    return int(process_index), int(process_count)


def _per_process(batch_size: int, process_count: int, what: str) -> int:
    if batch_size < 1 or batch_size % process_count:
        raise ValueError(f"config.data.{what}={batch_size} must be a positive multiple of the process "
                         f"count {process_count}")
    return batch_size // process_count


def shard_rows(source: Source, process_index: int, process_count: int, limit: int = 0) -> Source:
    """The rows of one process: the first `limit` rows (0 = all), then every process_count-th."""
    stop = limit or None
    columns = {k: v[:stop][process_index::process_count] for k, v in source.columns.items()}
    return Source(source.name, columns, source.decode)


def _row_loader(source: Source):
    tables = {k: tf.constant(v.tolist(), tf.string) for k, v in source.columns.items()}
    return lambda i: source.decode({k: tf.gather(t, i) for k, t in tables.items()})


def cached_loader(source: Source, add_channels=None, extra_channels: int = 0):
    """Decodes every row once into flat uint8 buffers; returns a row loader reading them, or None
    when the decoded rows would exceed CACHE_LIMIT_BYTES. add_channels: list of uint8 `input`
    arrays -> the same with `extra_channels` more channels (the input prior), applied once here."""
    load = _row_loader(source)
    first = {k: v.numpy() for k, v in load(tf.constant(0, tf.int64)).items()}
    per_row = sum(v.nbytes for v in first.values()) + first["input"].nbytes * extra_channels // 3
    estimate = len(source) * per_row
    if estimate > CACHE_LIMIT_BYTES:
        logging.warning("%s: not caching decoded examples (about %.1f GiB > %.1f GiB)", source.name,
                        estimate / 2**30, CACHE_LIMIT_BYTES / 2**30)
        return None
    decoded = tf.data.Dataset.range(len(source)).map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    rows = list(decoded.prefetch(AUTOTUNE).as_numpy_iterator())
    if add_channels is not None:
        inputs = add_channels([row["input"] for row in rows])
        rows = [{**row, "input": x} for row, x in zip(rows, inputs)]
    store = {}
    for key in first:
        arrays = [row[key] for row in rows]
        offsets = np.cumsum([0] + [a.size for a in arrays]).astype(np.int64)
        store[key] = (tf.constant(np.concatenate([a.reshape(-1) for a in arrays])), tf.constant(offsets),
                      tf.constant(np.array([a.shape for a in arrays], np.int32)))

    def cached(i):
        return {k: tf.reshape(buf[off[i]:off[i + 1]], shapes[i]) for k, (buf, off, shapes) in store.items()}

    return cached


def stores_resized(config) -> bool:
    """Whether training reads its examples already resized to data.load_size from the store."""
    return bool(config.data.get("store", "")) and config.data.prior == "none" and load_size(config.data) is not None


def resized_loader(source: Source, size: tuple[int, int], is_mask: bool):
    """Row index -> the example resized to `size` by `resize_pair` (float32 images in [0, 1])."""
    row = _row_loader(source)

    def load(i):
        example = row(i)
        image = tf.image.convert_image_dtype(example["input"], tf.float32)
        target = example["target"] if is_mask else tf.image.convert_image_dtype(example["target"], tf.float32)
        image, target = resize_pair(image, target, size, is_mask)
        return {"input": image, "target": target}

    return load


def make_loader(source: Source, config, resized: bool = False):
    """Row index (int64 scalar tensor) -> decoded example, from memory when config.data.cache is set
    and the split fits. With an input prior (jaxgan.data.prior) the cached `input` carries it; a
    prior needs the cache (it is computed once per example). resized (with config.data.store): the
    store holds the examples resized to data.load_size (train_transform's first step, done once)."""
    if config.data.prior == "none":
        if config.data.get("store", ""):  # decoded once into files tf.data reads (jaxgan.data.store)
            if resized:
                size = load_size(config.data)
                load = resized_loader(source, size, config.task == "segment")
                view = f"resized {size[0]}x{size[1]} bicubic antialiased, tensorflow {tf.__version__}"
            else:
                load, view = _row_loader(source), "native"
            return store.loader(store.open_store(source, config.data.store, load, view))
        return (config.data.cache and cached_loader(source)) or _row_loader(source)
    prior.check(config)
    add = functools.partial(prior.with_prior_uint8, config=config, what=f"{source.name} example")
    loader = config.data.cache and cached_loader(source, add, prior.input_channels(config.data) - 3)
    if not loader:
        raise DataError(f"config.data.prior={config.data.prior!r} is computed once per example and kept in "
                        f"memory: it needs config.data.cache=true and the decoded {source.name} split "
                        f"to fit in {CACHE_LIMIT_BYTES / 2**30:.0f} GiB")
    return loader


# ---- transforms -------------------------------------------------------------------------------

def _resize(image, target, size, is_mask: bool):
    image = tf.image.resize(image, size, method="bilinear", antialias=True)
    if is_mask:
        target = tf.image.resize(target, size, method="nearest")
    else:
        target = tf.image.resize(target, size, method="bilinear", antialias=True)
    return image, target


def _scale_to(image, target, scale, is_mask: bool):
    """Resizes the pair by `scale` (a float32 scalar tensor); a no-op when scale == 1."""
    hw = tf.cast(tf.shape(image)[:2], tf.float32)
    size = tf.cast(tf.math.ceil(hw * scale - 1e-3), tf.int32)
    return tf.cond(tf.equal(scale, 1.0), lambda: (image, target), lambda: _resize(image, target, size, is_mask))


def _colour_jitter(images, strength, seeds):
    """The same random brightness / contrast / saturation change for every image in `images`."""
    delta = tf.random.stateless_uniform([], seeds[0], -0.5 * strength, 0.5 * strength)
    contrast = tf.random.stateless_uniform([], seeds[1], 1 - strength, 1 + strength)
    saturation = tf.random.stateless_uniform([], seeds[2], max(0.0, 1 - strength), 1 + strength)
    out = []
    for x in images:
        x = tf.image.adjust_saturation(tf.image.adjust_contrast(x + delta, contrast), saturation)
        out.append(tf.clip_by_value(x, 0.0, 1.0))
    return out


def load_size(data_config) -> tuple[int, int] | None:
    """config.data.load_size as (height, width), or None when it is (0, 0) (native size)."""
    size = tuple(int(s) for s in data_config.load_size)
    if len(size) != 2 or min(size) < 0 or (min(size) == 0 and max(size) > 0):
        raise ValueError(f"config.data.load_size must be (height, width) with both > 0, or (0, 0) for the "
                         f"native size; got {tuple(data_config.load_size)}")
    return size if size[0] else None


def resize_pair(image, target, size, is_mask: bool):
    """The pair resized to `size` (height, width): images bicubic (antialiased, clipped to [0, 1], as
    PIL's BICUBIC resize of an 8-bit image), masks nearest."""
    image = tf.clip_by_value(tf.image.resize(image, size, method="bicubic", antialias=True), 0.0, 1.0)
    if is_mask:
        target = tf.image.resize(target, size, method="nearest")
    else:
        target = tf.clip_by_value(tf.image.resize(target, size, method="bicubic", antialias=True), 0.0, 1.0)
    return image, target


AUGMENTS = ("none", "deblurganv2")


def augment_kind(data_config, is_mask: bool) -> str:
    """config.data.augment, checked: 'none' or 'deblurganv2' (deblurring only)."""
    kind = data_config.augment
    if kind not in AUGMENTS:
        raise ValueError(f"config.data.augment must be one of {AUGMENTS}, got {kind!r}")
    if kind == "deblurganv2" and is_mask:
        raise ValueError("config.data.augment='deblurganv2' corrupts a blurred input: it needs task 'deblur'")
    return kind


def train_transform(example, seed, data_config, is_mask: bool, resized: bool = False):
    """Random paired scale / crop / flip / rot90 / colour, all stateless in `seed` (int64 (2,)).
    Returns float32 images in [0, 1] (crop, crop, 3) and the target (crop, crop, 3 or 1), or
    (crop_resize, crop_resize, ...) when data.crop_resize is set.

    data.load_size resizes the pair first (pix2pix base_dataset.py get_transform: Resize to loadSize
    then RandomCrop; DeblurGAN aligned_dataset.py: resize to loadSizeX x loadSizeY, then crop);
    resized=True: the example is already that float32 pair (a store of resized frames, make_loader).
    data.augment 'deblurganv2' replaces the plain crop by jaxgan.data.deblurganv2_aug (a geometric
    transform sampled at the crop's pixels, then a corruption of the blurred input)."""
    crop = data_config.crop_size
    seeds = tf.random.experimental.stateless_split(seed, 9)
    dgv2 = augment_kind(data_config, is_mask) == "deblurganv2"
    dgv2_seeds = tf.random.experimental.stateless_split(seeds[8], 2)

    def scaled():  # the float pair at load_size (unless `resized`), rescaled by the jitter and to the crop
        image = tf.image.convert_image_dtype(example["input"], tf.float32)
        target = example["target"] if is_mask else tf.image.convert_image_dtype(example["target"], tf.float32)
        if load_size(data_config) is not None and not resized:
            image, target = resize_pair(image, target, load_size(data_config), is_mask)
        hw = tf.cast(tf.shape(image)[:2], tf.float32)
        scale = tf.constant(1.0)
        if data_config.scale_jitter > 0:
            j = data_config.scale_jitter
            scale = tf.random.stateless_uniform([], seeds[0], 1.0 - j, 1.0 + j)
        scale = tf.maximum(scale, crop / tf.reduce_min(hw))  # never smaller than the crop
        return _scale_to(image, target, scale, is_mask)

    native = load_size(data_config) is None and data_config.scale_jitter == 0
    if dgv2 and native and example["input"].dtype == tf.uint8:
        # frames no smaller than the crop are not rescaled: the window samples the uint8 frames and
        # converts only its samples (deblurganv2_aug.remap; the same values, no full-frame float copy)
        raw_image, raw_target = example["input"], example["target"]
        image, target = tf.cond(
            tf.reduce_min(tf.shape(raw_image)[:2]) >= crop,
            lambda: deblurganv2_aug.geometric_window(raw_image, raw_target, crop, dgv2_seeds[0]),
            lambda: deblurganv2_aug.geometric_window(*scaled(), crop, dgv2_seeds[0]))
    elif dgv2:  # DeblurGAN-v2 aug.py: a geometric transform of the pair, then the random crop
        image, target = deblurganv2_aug.geometric_window(*scaled(), crop, dgv2_seeds[0])
    else:
        image, target = scaled()
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        top = tf.random.stateless_uniform([], seeds[1], 0, h - crop + 1, dtype=tf.int32)
        left = tf.random.stateless_uniform([], seeds[2], 0, w - crop + 1, dtype=tf.int32)
        image, target = image[top:top + crop, left:left + crop], target[top:top + crop, left:left + crop]
    if data_config.flip:
        flip = tf.random.stateless_uniform([], seeds[3]) < 0.5
        image, target = tf.cond(flip, lambda: (image[:, ::-1], target[:, ::-1]), lambda: (image, target))
    if data_config.rot90:
        k = tf.random.stateless_uniform([], seeds[4], 0, 4, dtype=tf.int32)
        image, target = tf.image.rot90(image, k), tf.image.rot90(target, k)
    channels = prior.input_channels(data_config)
    if data_config.color_jitter > 0:  # one jitter for every 3-channel image (input, its prior, target)
        parts = [image[..., c:c + 3] for c in range(0, channels, 3)]
        if is_mask:  # the mask has no colour: only the input image changes
            image = tf.concat(_colour_jitter(parts, data_config.color_jitter, seeds[5:8]), -1)
        else:
            *parts, target = _colour_jitter(parts + [target], data_config.color_jitter, seeds[5:8])
            image = tf.concat(parts, -1)
    image.set_shape([crop, crop, channels])
    target.set_shape([crop, crop, 1 if is_mask else 3])
    if dgv2:  # ... and one corruption of the blurred input (aug.py get_corrupt_function)
        image = tf.concat([deblurganv2_aug.corrupt(image[..., :3], dgv2_seeds[1]), image[..., 3:]], -1)
    side = int(data_config.crop_resize)
    if side and side != crop:  # the same window at a lower (or higher) resolution
        image = tf.image.resize(image, (side, side), method="bilinear", antialias=True)
        target = tf.image.resize(target, (side, side), method="nearest" if is_mask else "bilinear",
                                 antialias=not is_mask)
        image.set_shape([side, side, channels])
        target.set_shape([side, side, 1 if is_mask else 3])
    return image, target


def eval_size(data_config, local_batch: int) -> int:
    """Eval image side: eval_size if set, else full images at batch 1, else crop_size (0 = full)."""
    if data_config.eval_size > 0:
        return data_config.eval_size
    return 0 if local_batch == 1 else data_config.crop_size


def eval_transform(example, size: int, is_mask: bool, channels: int = 3):
    """Deterministic eval view: size 0 keeps the full image; otherwise a centred size x size crop.
    Segmentation first resizes the shorter side to `size`; deblurring only upsizes smaller images
    (resizing would change the blur)."""
    image = tf.image.convert_image_dtype(example["input"], tf.float32)
    target = example["target"] if is_mask else tf.image.convert_image_dtype(example["target"], tf.float32)
    if size:
        hw = tf.cast(tf.shape(image)[:2], tf.float32)
        scale = size / tf.reduce_min(hw)
        image, target = _scale_to(image, target, scale if is_mask else tf.maximum(scale, 1.0), is_mask)
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        top, left = (h - size) // 2, (w - size) // 2
        image, target = image[top:top + size, left:left + size], target[top:top + size, left:left + size]
        image.set_shape([size, size, channels])
    return image, target


def finish(image, target, is_mask: bool) -> dict:
    """[0, 1] images -> [-1, 1]; masks -> int32 (H, W)."""
    out = {"input": image * 2.0 - 1.0}
    out["target"] = tf.cast(target[..., 0], tf.int32) if is_mask else target * 2.0 - 1.0
    return out


# ---- iterators ----------------------------------------------------------------------------------

def _permutation(n: int, seed: int, epoch):
    key = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.argsort(tf.random.stateless_uniform([n], key))


def labelled_rows(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(labelled, unlabelled) sorted row indices of a split of n rows: a fixed random choice (numpy,
    seeded by `seed`) of round(fraction * n) rows (at least 1) and the rest; disjoint."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"config.variants.labelled_fraction must be in (0, 1], got {fraction}")
    order = np.random.default_rng([int(seed), 20180719]).permutation(n)
    k = max(1, int(round(fraction * n)))
    return np.sort(order[:k]), np.sort(order[k:])


def _subset(source: Source, rows: np.ndarray) -> Source:
    return Source(source.name, {k: v[rows] for k, v in source.columns.items()}, source.decode)


def make_train_iterator(config, *, start_step: int = 0, process_index=None, process_count=None,
                        rows: str = "labelled"):
    """Infinite iterator of training batches (see module docstring); batch n only depends on
    (config, process, n), so start_step = k resumes exactly at batch k.

    With config.variants.labelled_fraction < 1 only the labelled rows of the split are read
    (`labelled_rows`); rows='unlabelled' reads the others instead, without their targets, and with
    its own order and augmentation seeds (batches hold `input` only)."""
    if rows not in ("labelled", "unlabelled"):
        raise ValueError(f"rows must be 'labelled' or 'unlabelled', got {rows!r}")
    p, count = _process(process_index, process_count)
    batch = _per_process(config.data.batch_size, count, "batch_size")
    is_mask = config.task == "segment"
    full = make_source(config, config.data.train_split)
    if full.endless:
        return _endless_train_iterator(full, config, start_step, batch, p, count, rows)
    fraction = float(config.variants.labelled_fraction)
    if fraction < 1.0 or rows == "unlabelled":
        labelled, unlabelled = labelled_rows(len(full), fraction, int(config.seed))
        full = _subset(full, labelled if rows == "labelled" else unlabelled)
    source = shard_rows(full, p, count)
    n = len(source)
    if n == 0:
        raise ValueError(f"process {p} of {count} got no training examples ({config.data.name})")
    resized = stores_resized(config)
    load = make_loader(source, config, resized=resized)
    seed = int(config.seed) + (0 if rows == "labelled" else 7919)
    start = int(start_step) * batch
    first_epoch = start // n
    order = tf.data.Dataset.range(first_epoch, 2**62).flat_map(
        lambda e: tf.data.Dataset.from_tensor_slices(_permutation(n, seed + 1, e)))
    order = order.skip(start - first_epoch * n)
    positions = tf.data.Dataset.range(start, 2**62)

    def example(pos, row):
        key = tf.stack([tf.constant(seed, tf.int64), pos * count + p])
        image, target = train_transform(load(tf.cast(row, tf.int64)), key, config.data, is_mask, resized)
        out = finish(image, target, is_mask)
        return out if rows == "labelled" else {"input": out["input"]}

    ds = tf.data.Dataset.zip(positions, order).map(example, num_parallel_calls=AUTOTUNE, deterministic=True)
    ds = ds.batch(batch, drop_remainder=True).prefetch(AUTOTUNE)
    return ds.as_numpy_iterator()


def _endless_train_iterator(source: Source, config, start_step: int, batch: int, p: int, count: int, rows: str):
    """make_train_iterator for a source generated on demand (Source.endless): example `pos` of process
    p is example pos * count + p, so no example repeats and start_step = k resumes exactly at batch k."""
    if config.variants.labelled_fraction < 1.0 or rows != "labelled" or config.data.prior != "none":
        raise ValueError(f"{config.data.name}: an endless training split takes neither "
                         "variants.labelled_fraction < 1 nor data.prior")
    is_mask = config.task == "segment"

    def example(pos):
        key = tf.stack([tf.constant(int(config.seed), tf.int64), pos * count + p])
        image, target = train_transform(source.decode({"index": pos * count + p}), key, config.data, is_mask)
        return finish(image, target, is_mask)

    ds = tf.data.Dataset.range(int(start_step) * batch, 2**62).map(
        example, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.batch(batch, drop_remainder=True).prefetch(AUTOTUNE).as_numpy_iterator()


def make_semi_train_iterator(config, *, start_step: int = 0, process_index=None, process_count=None):
    """Semi-supervised training batches: the labelled batch (`input`, `target`) of
    make_train_iterator plus `unlabelled_input`, a batch of the same size from the unlabelled rows
    (config.variants.labelled_fraction); both resume exactly at batch start_step."""
    kwargs = dict(start_step=start_step, process_index=process_index, process_count=process_count)
    labelled = make_train_iterator(config, **kwargs)
    unlabelled = make_train_iterator(config, rows="unlabelled", **kwargs)
    for batch, extra in zip(labelled, unlabelled):
        yield {**batch, "unlabelled_input": extra["input"]}


_EVAL_ROWS: dict = {}  # the last eval split's rows and loader (evaluation repeats during training)


def _eval_rows(config, split: str, p: int, count: int):
    """(rows in the split, rows of this process, row loader), memoised for the last eval split."""
    key = (config.task, split, p, count, json.dumps(config.data.to_dict(), sort_keys=True, default=str))
    if key not in _EVAL_ROWS:
        full = make_source(config, split)
        total = min(len(full), config.data.num_eval_examples or len(full))
        source = shard_rows(full, p, count, limit=total)
        if len(source) == 0:
            raise ValueError(f"process {p} of {count} got no examples of the {total} in split {split!r}")
        _EVAL_ROWS.clear()
        _EVAL_ROWS[key] = (total, len(source), make_loader(source, config))
    return _EVAL_ROWS[key]


def make_eval_iterator(config, *, split=None, process_index=None, process_count=None):
    """Finite iterator over the eval split (config.data.eval_split, first num_eval_examples if set).
    Every process yields the same number of batches; the last ones are padded with valid=False rows."""
    p, count = _process(process_index, process_count)
    batch = _per_process(config.data.eval_batch_size, count, "eval_batch_size")
    is_mask = config.task == "segment"
    total, n, load = _eval_rows(config, split or config.data.eval_split, p, count)
    size = eval_size(config.data, batch)
    rows = math.ceil(math.ceil(total / count) / batch) * batch
    indices = tf.data.Dataset.from_tensor_slices((np.arange(rows) % n, np.arange(rows) < n))

    def example(row, valid):
        image, target = eval_transform(load(tf.cast(row, tf.int64)), size, is_mask,
                                       prior.input_channels(config.data))
        return {**finish(image, target, is_mask), "valid": valid}

    ds = indices.map(example, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.batch(batch).prefetch(AUTOTUNE).as_numpy_iterator()
