"""`leaves_blur`: sharp 256x256 scenes and what a hand-held camera records of them (built locally).

Sharp images: dead-leaves scenes (jaxgan.data.dead_leaves, textured with crops of the training photos)
and crops of real photos, mixed at config.data.synthetic_fraction (the share of scenes). Blur: the
camera model of jaxgan.data.blur (`camera_kernel_at`: camera shake of 4-27 px, defocus, both, nearly
sharp; `camera_degrade`: the blur, Poisson-Gaussian noise, 8-bit rounding, sometimes JPEG), applied to a
window 16 px larger on every side than the crop (then cut out), so crop borders see real content.

Splits (photos shipped inside scikit-image, read from disk; disjoint between splits):
- train: N = config.data.num_train_examples (default 1024) examples, scenes and crops of astronaut,
  hubble_deep_field, ihc, retina, camera, brick, grass, gravel, moon;
- val (best-checkpoint selection): min(64, max(16, N // 8)) examples, scenes of another stream
  and crops of motorcycle_left / motorcycle_right (never trained on);
- test (reported once): 80 crops of chelsea, coffee, rocket (as photo_blur's test photos), no scenes.
Example i of a split is a pure function of (split, i, synthetic_fraction): growing N keeps the first
examples, and no two examples share a scene or a kernel. Columns as photo_blur: `blurred`, `sharp`
(uint8 PNG), `kernel` (float32 (k, k)), `photo` (the photo's name or 'dead_leaves').
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from jaxgan.data import blur, dead_leaves
from jaxgan.data.builtin import LocalBuilder, png_file
from jaxgan.data.photo_blur import CROP_SIZE, MIN_CROP_STD, TEST_PHOTOS, skimage_photo

DEFAULT_TRAIN_EXAMPLES = 1024
TEST_EXAMPLES = 80
MARGIN = 16  # >= the largest kernel radius
TRAIN_PHOTOS = ("astronaut.png", "hubble_deep_field.jpg", "ihc.png", "retina.jpg", "camera.png", "brick.png",
                "grass.png", "gravel.png", "moon.png")
VALIDATION_PHOTOS = ("motorcycle_left.png", "motorcycle_right.png")
SPLIT_PHOTOS = {"train": TRAIN_PHOTOS, "val": VALIDATION_PHOTOS, "test": TEST_PHOTOS}
SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}  # the (seed) stream of scenes and kernels


def split_sizes(num_train_examples: int) -> dict[str, int]:
    train = int(num_train_examples) or DEFAULT_TRAIN_EXAMPLES
    if train < 1:
        raise ValueError(f"num_train_examples={num_train_examples}: must be >= 0")
    return {"train": train, "val": min(64, max(16, train // 8)), "test": TEST_EXAMPLES}


def photo_window(rng: np.random.Generator, photo: np.ndarray, size: int, margin: int) -> tuple[np.ndarray, tuple]:
    """A random textured size x size crop position of `photo` and the window around it (up to `margin`
    px more on each side). Returns (window, (top, left) of the crop inside the window)."""
    h, w = photo.shape[:2]
    for _ in range(20):
        y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        if photo[y:y + size, x:x + size].std() / 255.0 >= MIN_CROP_STD:
            break
    y0, x0 = max(0, y - margin), max(0, x - margin)
    return photo[y0:min(h, y + size + margin), x0:min(w, x + size + margin)], (y - y0, x - x0)


def make_example(split: str, index: int, synthetic_fraction: float, photos: list, texture_photos: list) -> dict:
    """Example `index` of `split` (module docstring): dict(sharp, blurred uint8 (256, 256, 3), kernel, photo)."""
    stream = SPLIT_STREAMS[split]
    rng = np.random.default_rng([int(index), stream, 0x1EAB])
    fraction = 0.0 if split == "test" else float(synthetic_fraction)
    if rng.uniform() < fraction:
        window = dead_leaves.scene_uint8(stream, index, CROP_SIZE + 2 * MARGIN, texture_photos)
        top, name = (MARGIN, MARGIN), "dead_leaves"
    else:
        k = int(rng.integers(len(photos)))
        window, top = photo_window(rng, photos[k], CROP_SIZE, MARGIN)
        name = SPLIT_PHOTOS[split][k].split(".")[0]
    kernel, _ = blur.camera_kernel_at(stream, index)
    blurred = blur.camera_degrade(rng, window, kernel)
    cut = (slice(top[0], top[0] + CROP_SIZE), slice(top[1], top[1] + CROP_SIZE))
    return {"sharp": np.ascontiguousarray(window[cut]), "blurred": np.ascontiguousarray(blurred[cut]),
            "kernel": kernel.astype(np.float32), "photo": name}


class LeavesBlur(LocalBuilder):
    """Dead-leaves scenes and photo crops with camera blur (see the module docstring)."""

    VERSION = tfds.core.Version("1.0.0")
    code_path = None  # nothing is downloaded

    @classmethod
    def for_config(cls, config, data_dir=None) -> "LeavesBlur":
        fraction = float(config.data.synthetic_fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"config.data.synthetic_fraction={fraction} must be in [0, 1]")
        n = split_sizes(config.data.num_train_examples)["train"]
        return cls(data_dir=data_dir, config=tfds.core.BuilderConfig(
            name=f"s{round(fraction * 100)}_n{n}", description=f"{n} train examples, {fraction:.0%} scenes"))

    def _info(self) -> tfds.core.DatasetInfo:
        image = tfds.features.Image(shape=(CROP_SIZE, CROP_SIZE, 3), encoding_format="png")
        return tfds.core.DatasetInfo(
            builder=self, description=__doc__,
            features=tfds.features.FeaturesDict({
                "blurred": image, "sharp": image,
                "kernel": tfds.features.Tensor(shape=(None, None), dtype=np.float32, encoding="zlib"),
                "photo": tfds.features.Text()}),
            supervised_keys=("blurred", "sharp"))

    def _split_generators(self, dl_manager):
        del dl_manager  # everything is generated locally
        fraction, n = self.builder_config.name[1:].split("_n")
        sizes = split_sizes(int(n))
        return {split: self._generate_examples(split, sizes[split], int(fraction) / 100) for split in sizes}

    def _generate_examples(self, split, num_examples, fraction):
        photos = [skimage_photo(name) for name in SPLIT_PHOTOS[split]]
        textures = [skimage_photo(name) for name in TRAIN_PHOTOS]
        for i in range(num_examples):
            ex = make_example(split, i, fraction, photos, textures)
            yield i, {"blurred": png_file(ex["blurred"]), "sharp": png_file(ex["sharp"]), "kernel": ex["kernel"],
                      "photo": ex["photo"]}
