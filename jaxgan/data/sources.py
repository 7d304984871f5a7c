"""Every dataset as a `Source`: the rows of one split (file paths or encoded bytes, kept in memory) and a
TensorFlow function decoding one row into uint8 arrays.

Decoded examples: `input` uint8 (H, W, 3); `target` uint8 (H, W, 3) for task 'deblur' or uint8 (H, W, 1)
class indices for task 'segment'. Sizes may differ between examples.

Datasets (config.data.name): photo_blur, leaves_blur, shapes_seg, photo_seg (built locally, jaxgan.data.builtin),
seg_scenes (generated on demand, an endless train split; jaxgan.data.seg_scenes, seg_heldout),
folder_deblur, folder_seg (jaxgan.data.folders), oxford_iiit_pet (tfds catalog; must be prepared).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow_datasets as tfds

from jaxgan.data import folders
from jaxgan.data.builtin import png_file
from jaxgan.data.prepare import prepare_builtin
from jaxgan.data.errors import DataError
from jaxgan.data.tf_cpu import tf

DATASET_TASKS = {"photo_blur": "deblur", "leaves_blur": "deblur", "folder_deblur": "deblur",
                 "shapes_seg": "segment", "photo_seg": "segment",
                 "seg_scenes": "segment", "folder_seg": "segment", "oxford_iiit_pet": "segment"}
PET_TRIMAP = {"pet": 1, "background": 2, "border": 3}  # oxford_iiit_pet segmentation_mask values


@dataclasses.dataclass(frozen=True)
class Source:
    """All rows of one split. columns: name -> (N,) numpy array of bytes (paths or encoded files);
    decode: dict of scalar tf.string tensors (one row) -> dict(input=..., target=...) uint8 tensors."""

    name: str
    columns: dict[str, np.ndarray]
    decode: Callable[[dict], dict]
    endless: bool = False  # no rows: decode({"index": int64 tensor}) generates example `index`

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))


def decode_rgb(encoded: tf.Tensor) -> tf.Tensor:
    """Encoded PNG / JPEG / BMP / GIF bytes -> uint8 (H, W, 3) (gray, RGBA and palette converted)."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def resize_mask_to(mask: tf.Tensor, image: tf.Tensor) -> tf.Tensor:
    """Nearest-neighbour resize of a (h, w, 1) mask to the image's (H, W) when they differ."""
    size = tf.shape(image)[:2]
    return tf.cond(tf.reduce_all(tf.shape(mask)[:2] == size), lambda: mask,
                   lambda: tf.cast(tf.image.resize(mask, size, method="nearest"), mask.dtype))


def _is_prepared(builder) -> bool:
    """Whether a tfds builder's files exist locally (tests monkeypatch this under tfds mock_data)."""
    return builder.is_prepared()


def _read_tfds_columns(builder, split: str, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Encoded bytes of image features (no decoding), in the split's fixed order."""
    known = list(builder.info.splits)
    if known and split.split("[")[0] not in known:
        raise DataError(f"dataset {builder.name!r} has no split {split!r}; valid: {', '.join(known)}")
    decoders = tfds.decode.PartialDecoding(
        {name: True for name in columns}, decoders={name: tfds.decode.SkipDecoding() for name in columns})
    # Only the columns are read (other features, e.g. bounding boxes, are never parsed); tfds's own
    # PartialDecoding reads its deprecated FeatureConnector.dtype internally, which jaxgan cannot fix.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*FeatureConnector.dtype", category=DeprecationWarning)
        ds = builder.as_dataset(split=split, decoders=decoders, shuffle_files=False)
    rows = {name: [] for name in columns}
    for example in tfds.as_numpy(ds):
        for name in columns:
            rows[name].append(example[name])
    return {name: np.array(values, dtype=object) for name, values in rows.items()}


def catalog_builder(name: str, data_dir: str):
    """A prepared tfds catalog builder, or a DataError within seconds saying how to get the data."""
    builder = tfds.builder(name, data_dir=data_dir or None)
    if not _is_prepared(builder):
        where = data_dir or "~/tensorflow_datasets (the tfds default)"
        raise DataError(
            f"tfds dataset {name!r} is not prepared in {where} (looked for {builder.data_dir}). "
            f"Prepare it once on a machine with internet access: `tfds build {name} --data_dir=DIR` "
            f"(or python -c \"import tensorflow_datasets as tfds; tfds.builder('{name}', "
            f"data_dir='DIR').download_and_prepare()\"), copy DIR here and set config.data.data_dir=DIR.")
    return builder


def pet_class_table(num_classes: int, border: str = "pet") -> np.ndarray:
    """uint8 (256,) lookup: oxford_iiit_pet trimap value -> class index (unknown values -> 0).
    2 classes: 0 background, 1 pet (border -> `border`); 3 classes: 0 background, 1 pet, 2 border."""
    if num_classes == 2:
        if border not in ("pet", "background"):
            raise ValueError(f"config.data.pet_border={border!r}; valid: pet, background")
        classes = {"pet": 1, "background": 0, "border": int(border == "pet")}
    elif num_classes == 3:
        classes = {"background": 0, "pet": 1, "border": 2}
    else:
        raise ValueError(f"oxford_iiit_pet: config.data.num_classes={num_classes}; valid: 2 (pet vs "
                         "background, border per config.data.pet_border) or 3 (background, pet, border)")
    table = np.zeros(256, np.uint8)
    for kind, value in PET_TRIMAP.items():
        table[value] = classes[kind]
    return table


def _pet_source(config, split: str) -> Source:
    table = tf.constant(pet_class_table(config.data.num_classes, config.data.pet_border))
    builder = catalog_builder("oxford_iiit_pet", config.data.data_dir)

    def decode(row):
        image = decode_rgb(row["image"])
        trimap = tf.io.decode_png(row["segmentation_mask"], channels=1)
        return {"input": image, "target": resize_mask_to(tf.gather(table, tf.cast(trimap, tf.int32)), image)}

    return Source("oxford_iiit_pet", _read_tfds_columns(builder, split, ("image", "segmentation_mask")), decode)


def _builtin_source(config, split: str) -> Source:
    name = config.data.name
    builder = prepare_builtin(name, config)
    if name in ("photo_blur", "leaves_blur"):
        columns = _read_tfds_columns(builder, split, ("blurred", "sharp"))
        return Source(name, columns, lambda row: {"input": decode_rgb(row["blurred"]),
                                                  "target": decode_rgb(row["sharp"])})
    mask_columns = {2: "mask", 5: "class_mask"} if name == "shapes_seg" else {2: "mask"}
    mask_column = mask_columns.get(config.data.num_classes)
    if mask_column is None:
        raise ValueError(f"{name}: config.data.num_classes={config.data.num_classes}; valid: 2 (object vs "
                         "background)" + (" or 5 (background, ellipse, polygon, blob, thin structure)"
                                          if name == "shapes_seg" else ""))
    columns = _read_tfds_columns(builder, split, ("image", mask_column))
    return Source(name, columns, lambda row: {"input": decode_rgb(row["image"]),
                                              "target": tf.io.decode_png(row[mask_column], channels=1)})


def _folder_source(config, split: str) -> Source:
    root = folders.split_folder(config.data.path, split)
    if config.data.name == "folder_deblur":
        pairs = folders.deblur_pairs(root, skip_bad=config.data.skip_bad)
        columns = {"blurred": np.array([b for b, _ in pairs], object), "sharp": np.array([s for _, s in pairs], object)}
        return Source("folder_deblur", columns, lambda row: {
            "input": decode_rgb(tf.io.read_file(row["blurred"])), "target": decode_rgb(tf.io.read_file(row["sharp"]))})
    num_classes = config.data.num_classes
    pairs = folders.seg_pairs(root, num_classes, skip_bad=config.data.skip_bad)
    columns = {"image": np.array([i for i, _ in pairs], object), "mask": np.array([m for _, m in pairs], object)}

    def read_mask(path):
        return folders.read_mask(os.fsdecode(np.asarray(path).item()), num_classes)[..., None]

    def decode(row):
        mask = tf.numpy_function(read_mask, [row["mask"]], tf.uint8, stateful=False)
        mask.set_shape([None, None, 1])
        return {"input": decode_rgb(tf.io.read_file(row["image"])), "target": mask}

    return Source("folder_seg", columns, decode)


SEG_SCENES_SPLITS = ("train", "val", "test", "heldout_photos", "heldout_sklearn")


def _encoded_scenes(make_scene, num_examples: int) -> dict[str, np.ndarray]:
    """PNG bytes of scenes 0..num_examples-1 of a finite split, generated in memory."""
    images, masks = [], []
    for i in range(num_examples):
        image, mask = make_scene(i)
        images.append(png_file(image).getvalue())
        masks.append(png_file(mask.astype(np.uint8)[..., None]).getvalue())
    return {"image": np.array(images, object), "mask": np.array(masks, object)}


def _seg_scenes_source(config, split: str) -> Source:
    """seg_scenes: the train split is endless (scene `index` of config.seed, generated when read); val
    (choosing the best checkpoint) and test hold 125 scenes each of seed 0, from streams disjoint from
    train's; heldout_photos and heldout_sklearn are jaxgan.data.seg_heldout's sets (code, photos and
    silhouettes training never sees). Finite splits: the first num_eval_examples (0 = all 125)."""
    from jaxgan.data import seg_heldout, seg_scenes  # deferred: loaded only when seg_scenes is read

    if config.data.num_classes != 2:
        raise ValueError(f"seg_scenes: config.data.num_classes={config.data.num_classes}; valid: 2 (object vs "
                         "background)")
    if split not in SEG_SCENES_SPLITS:
        raise DataError(f"dataset 'seg_scenes' has no split {split!r}; valid: {', '.join(SEG_SCENES_SPLITS)}")
    if split == "train":
        seed = int(config.seed)

        def generate(index):
            image, mask = seg_scenes.scene_at(seed, "train", int(index))
            return image, mask.astype(np.uint8)[..., None]

        def decode(row):
            image, mask = tf.numpy_function(generate, [row["index"]], (tf.uint8, tf.uint8), stateful=False)
            size = seg_scenes.SCENE_SIZE
            return {"input": tf.ensure_shape(image, [size, size, 3]), "target": tf.ensure_shape(mask, [size, size, 1])}

        return Source("seg_scenes", {"index": np.zeros(0, object)}, decode, endless=True)
    n = min(int(config.data.num_eval_examples) or seg_heldout.DEFAULT_EXAMPLES, seg_heldout.DEFAULT_EXAMPLES)
    if split in ("val", "test"):
        columns = _encoded_scenes(lambda i: seg_scenes.scene_at(0, split, i), n)
    else:
        columns = _encoded_scenes(lambda i: seg_heldout.heldout_scene(split, i), n)
    return Source("seg_scenes", columns, lambda row: {"input": decode_rgb(row["image"]),
                                                      "target": tf.io.decode_png(row["mask"], channels=1)})


def carved_rows(n: int) -> np.ndarray:
    """The rows of an n-row training split given up to a carved validation split: every 10th (9, 19, ...),
    or the last one when n < 10 (none when n == 1)."""
    rows = np.arange(9, n, 10)
    return rows if len(rows) or n < 2 else np.array([n - 1])


def has_split(config, split: str) -> bool:
    """Whether config.data.name has its own `split` (else a validation split is carved from train)."""
    name = config.data.name
    if name in ("photo_blur", "leaves_blur", "shapes_seg", "photo_seg"):
        return split in prepare_builtin(name, config).info.splits
    if name == "oxford_iiit_pet":
        return split in catalog_builder(name, config.data.data_dir).info.splits
    if name in ("folder_deblur", "folder_seg"):
        return bool(config.data.path) and (Path(config.data.path) / split).is_dir()
    return True  # datasets generated on demand name their own splits


def _carve(source: Source, validation: bool) -> Source:
    """The carved validation rows of a training split (validation=True) or the rows left to training."""
    rows = carved_rows(len(source))
    keep = rows if validation else np.setdiff1d(np.arange(len(source)), rows)
    return Source(source.name, {k: v[keep] for k, v in source.columns.items()}, source.decode)


def make_source(config, split: str) -> Source:
    """The Source of config.data.name's split, checked against config.task. A dataset without its own
    config.data.validation_split gets one carved from its training split (`carved_rows`), and its
    training split loses those rows."""
    name = config.data.name
    if name not in DATASET_TASKS:
        raise ValueError(f"unknown dataset config.data.name={name!r}; valid: {', '.join(DATASET_TASKS)}")
    if DATASET_TASKS[name] != config.task:
        raise ValueError(f"dataset {name!r} is for task {DATASET_TASKS[name]!r}, but config.task={config.task!r}")
    validation, train = config.data.validation_split, config.data.train_split
    if split in (validation, train) and validation != train and not has_split(config, validation):
        source = _carve(_dataset_source(config, train), validation=split == validation)
    else:
        source = _dataset_source(config, split)
    if len(source) == 0 and not getattr(source, "endless", False):
        raise DataError(f"dataset {name!r} split {split!r} holds no examples")
    return source


def _dataset_source(config, split: str) -> Source:
    """The Source of config.data.name's own split (name and task checked by make_source)."""
    name = config.data.name
    if name in ("photo_blur", "leaves_blur", "shapes_seg", "photo_seg"):
        source = _builtin_source(config, split)
    elif name == "oxford_iiit_pet":
        source = _pet_source(config, split)
    elif name == "seg_scenes":
        source = _seg_scenes_source(config, split)
    else:
        source = _folder_source(config, split)
    if len(source) == 0 and not source.endless:
        raise DataError(f"dataset {name!r} split {split!r} holds no examples")
    return source
