"""`photo_blur`: sharp crops of real photos paired with synthetic camera-shake blur (built locally).

The photos are the ones shipped inside scikit-image (`skimage/data`, read from disk, never fetched).
Train and test come from DISJOINT photos:

- train: astronaut, hubble_deep_field, ihc (immunohistochemistry), motorcycle_left, motorcycle_right
  (the stereo pair stays on one side), retina, and the gray photos camera, brick, grass, gravel, moon
  (gray is repeated over 3 channels);
- test: chelsea (the cat), coffee, rocket.

Each example is a 256x256 crop: `sharp` (uint8), `blurred` (uint8, the sharp crop convolved with
`kernel`), `kernel` (float32 (k, k), odd k, sums to 1; see jaxgan.data.blur) and `photo` (source name).
The blur is applied to a window larger than the crop (then cut out), so crop borders see real image
content. Kernels are camera-shake PSFs (Boracchi & Foi trajectories) whose support spans
BLUR_PRESETS[blur_strength] pixels (realistic: 5-25 px). Crops with almost no texture are redrawn.
Sizes: train = config.data.num_train_examples (default 320), test = max(8, train // 4).
Everything is seeded by (split, example index): the same config always generates the same data.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxgan.data import blur
from jaxgan.data.builtin import LocalBuilder, example_rng, png_file, split_sizes

CROP_SIZE = 256
DEFAULT_TRAIN_EXAMPLES = 320
TRAIN_PHOTOS = ("astronaut.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png",
                "motorcycle_right.png", "retina.jpg", "camera.png", "brick.png", "grass.png",
                "gravel.png", "moon.png")
TEST_PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg")
MIN_CROP_STD = 0.04  # crops flatter than this (on [0, 1]) are redrawn


def skimage_photo(filename: str) -> np.ndarray:
    """A photo from the installed scikit-image data folder as uint8 (H, W, 3)."""
    import skimage

    path = os.path.join(os.path.dirname(skimage.__file__), "data", filename)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), np.uint8)


def blurred_crop(rng: np.random.Generator, photo: np.ndarray, strength: str, size: int = CROP_SIZE):
    """A random textured crop of `photo` and its blurred version. Returns (sharp, blurred, kernel)."""
    margin = blur.BLUR_PRESETS[strength][1]
    h, w = photo.shape[:2]
    for _ in range(20):
        y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        sharp = photo[y:y + size, x:x + size]
        if sharp.std() / 255.0 >= MIN_CROP_STD:
            break
    y0, x0 = max(0, y - margin), max(0, x - margin)
    window = photo[y0:min(h, y + size + margin), x0:min(w, x + size + margin)]
    blurred, kernel = blur.synthesize_blur(rng, window, strength)
    return sharp, blurred[y - y0:y - y0 + size, x - x0:x - x0 + size], kernel


class PhotoBlur(LocalBuilder):
    """Sharp / camera-shake-blurred pairs from scikit-image's photos (see the module docstring)."""

    VERSION = tfds.core.Version("1.0.0")
    code_path = None  # no package metadata / checksums: nothing is downloaded

    @classmethod
    def for_config(cls, config, data_dir=None) -> "PhotoBlur":
        strength = config.data.blur_strength
        if strength not in blur.BLUR_PRESETS:
            raise ValueError(f"config.data.blur_strength={strength!r}; valid: {', '.join(blur.BLUR_PRESETS)}")
        n = split_sizes(config.data.num_train_examples, DEFAULT_TRAIN_EXAMPLES)["train"]
        return cls(data_dir=data_dir, config=tfds.core.BuilderConfig(
            name=f"{strength}_n{n}", description=f"{strength} blur, {n} train examples"))

    def _info(self) -> tfds.core.DatasetInfo:
        image = tfds.features.Image(shape=(CROP_SIZE, CROP_SIZE, 3), encoding_format="png")
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "blurred": image,
                "sharp": image,
                "kernel": tfds.features.Tensor(shape=(None, None), dtype=np.float32, encoding="zlib"),
                "photo": tfds.features.Text(),
            }),
            supervised_keys=("blurred", "sharp"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # everything is generated locally
        strength, n = self.builder_config.name.rsplit("_n", 1)
        sizes = split_sizes(int(n), DEFAULT_TRAIN_EXAMPLES)
        return {
            "train": self._generate_examples("train", TRAIN_PHOTOS, sizes["train"], strength),
            "test": self._generate_examples("test", TEST_PHOTOS, sizes["test"], strength),
        }

    def _generate_examples(self, split, photo_names, num_examples, strength):
        photos = [skimage_photo(name) for name in photo_names]
        for i in range(num_examples):
            k = i % len(photos)
            sharp, blurred, kernel = blurred_crop(example_rng("photo_blur", split, i), photos[k], strength)
            yield i, {"blurred": png_file(blurred), "sharp": png_file(sharp), "kernel": kernel,
                      "photo": os.path.splitext(photo_names[k])[0]}
