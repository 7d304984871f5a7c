"""`shapes_seg`: procedurally generated segmentation scenes (built locally, no download).

Each 160x160 RGB scene holds 3-7 textured objects over a textured, shaded, noisy background:
ellipses (class 1), polygons (class 2), smooth blobs (class 3) and thin curved structures (class 4).
Later objects occlude earlier ones. Object and background colours are drawn from the same range, each
surface carries its own band-limited texture and a linear shading ramp, and sensor noise is added, so
no global intensity threshold separates objects from background.

Features: `image` uint8 (160, 160, 3); `mask` uint8 (160, 160, 1) binary (1 = any object);
`class_mask` uint8 (160, 160, 1) with classes 0..4 (0 = background). The pipeline uses `mask` when
config.data.num_classes == 2 and `class_mask` when it is 5.
Sizes: train = config.data.num_train_examples (default 500), test = max(8, train // 4); train and test
scenes come from disjoint seeds (`example_rng("shapes_seg", split, i)`).

Naive baseline, Otsu's global threshold on the gray image (with the better of the two polarities
chosen per image, which favours the baseline), mean foreground IoU on the default test split (125
scenes): 0.276 (min 0.026, max 0.831). Reproduce with:

    JAX_PLATFORMS=cpu python -m jaxgan.data.shapes_seg
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds
from scipy import ndimage
from skimage import draw

from jaxgan.data.builtin import LocalBuilder, example_rng, png_file, split_sizes

SCENE_SIZE = 160
NUM_CLASSES = 5  # background, ellipse, polygon, blob, thin structure
DEFAULT_TRAIN_EXAMPLES = 500


def texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Band-limited noise (size, size, 3) with a random grain, zero mean, unit-ish std."""
    sigma = rng.uniform(0.7, 4.0)
    noise = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma)
    noise /= noise.std() + 1e-8
    tint = rng.uniform(0.6, 1.0, 3)
    return noise[..., None] * tint


def shading(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random linear brightness ramp (size, size, 1) in about [-0.5, 0.5]."""
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    return (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]


def surface(rng: np.random.Generator, size: int) -> np.ndarray:
    """A coloured, shaded, textured surface (size, size, 3), roughly in [0, 1]."""
    colour = rng.uniform(0.15, 0.85, 3)
    return colour + rng.uniform(0.05, 0.35) * shading(rng, size) + rng.uniform(0.03, 0.12) * texture(rng, size)


def ellipse_mask(rng, size):
    r, c = rng.uniform(0.15, 0.85, 2) * size
    rr, cc = draw.ellipse(r, c, rng.uniform(8, 35), rng.uniform(8, 35), shape=(size, size),
                          rotation=rng.uniform(-np.pi, np.pi))
    m = np.zeros((size, size), bool)
    m[rr, cc] = True
    return m


def polygon_mask(rng, size):
    n = rng.integers(3, 8)
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(10, 35, n)
    r, c = rng.uniform(0.15, 0.85, 2) * size
    rr, cc = draw.polygon(r + radii * np.sin(angles), c + radii * np.cos(angles), shape=(size, size))
    m = np.zeros((size, size), bool)
    m[rr, cc] = True
    return m


def blob_mask(rng, size):
    """A star-shaped smooth blob: radius r(theta) = R (1 + sum_k a_k cos(k theta + phi_k))."""
    r0, c0 = rng.uniform(0.15, 0.85, 2) * size
    yy, xx = np.mgrid[0:size, 0:size]
    theta = np.arctan2(yy - r0, xx - c0)
    radius = np.full_like(theta, rng.uniform(10, 30))
    for k in range(2, 6):
        radius *= 1 + rng.uniform(0, 0.25) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return np.hypot(yy - r0, xx - c0) < radius


def thin_mask(rng, size):
    """A wavy curve 1.5-4 px wide crossing a good part of the scene."""
    t = np.linspace(0, 1, 400)
    start, end = rng.uniform(0, size, 2), rng.uniform(0, size, 2)
    normal = np.array([start[1] - end[1], end[0] - start[0]]) / (np.linalg.norm(end - start) + 1e-8)
    wave = rng.uniform(5, 20) * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * t + rng.uniform(0, 2 * np.pi))
    pts = start + t[:, None] * (end - start) + wave[:, None] * normal
    pts = np.clip(np.round(pts).astype(int), 0, size - 1)
    line = np.ones((size, size), bool)
    line[pts[:, 0], pts[:, 1]] = False
    return ndimage.distance_transform_edt(line) <= rng.uniform(0.75, 2.0)


SHAPES = {1: ellipse_mask, 2: polygon_mask, 3: blob_mask, 4: thin_mask}


def scene(rng: np.random.Generator, size: int = SCENE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (image uint8 (size, size, 3), class mask uint8 (size, size) in 0..4)."""
    image = surface(rng, size)
    classes = np.zeros((size, size), np.uint8)
    for _ in range(rng.integers(3, 8)):
        label = int(rng.integers(1, NUM_CLASSES))
        region = SHAPES[label](rng, size)
        image = np.where(region[..., None], surface(rng, size), image)
        classes[region] = label
    image = ndimage.gaussian_filter(image, (rng.uniform(0.3, 1.0),) * 2 + (0,))  # optics
    image = image + rng.normal(0, rng.uniform(0.01, 0.05), image.shape)  # sensor noise
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8), classes


class ShapesSeg(LocalBuilder):
    """Textured shapes over textured backgrounds with binary and 5-class masks (see module docstring)."""

    VERSION = tfds.core.Version("1.0.0")
    code_path = None  # no package metadata / checksums: nothing is downloaded

    @classmethod
    def for_config(cls, config, data_dir=None) -> "ShapesSeg":
        n = split_sizes(config.data.num_train_examples, DEFAULT_TRAIN_EXAMPLES)["train"]
        return cls(data_dir=data_dir, config=tfds.core.BuilderConfig(name=f"n{n}"))

    def _info(self) -> tfds.core.DatasetInfo:
        mask = tfds.features.Image(shape=(SCENE_SIZE, SCENE_SIZE, 1), encoding_format="png")
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(SCENE_SIZE, SCENE_SIZE, 3), encoding_format="png"),
                "mask": mask,
                "class_mask": mask,
            }),
            supervised_keys=("image", "mask"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        sizes = split_sizes(int(self.builder_config.name[1:]), DEFAULT_TRAIN_EXAMPLES)
        return {split: self._generate_examples(split, n) for split, n in sizes.items()}

    def _generate_examples(self, split, num_examples):
        for i in range(num_examples):
            image, classes = scene(example_rng("shapes_seg", split, i))
            yield i, {"image": png_file(image), "mask": png_file((classes > 0).astype(np.uint8)[..., None]),
                      "class_mask": png_file(classes[..., None])}


def otsu_iou(image: np.ndarray, mask: np.ndarray) -> float:
    """Foreground IoU of Otsu's global threshold on the gray image, best polarity."""
    from skimage.filters import threshold_otsu

    gray = image.astype(np.float64).mean(-1)
    above = gray > threshold_otsu(gray)
    scores = []
    for pred in (above, ~above):
        union = np.logical_or(pred, mask).sum()
        scores.append(np.logical_and(pred, mask).sum() / max(union, 1))
    return float(max(scores))


def otsu_baseline(split: str = "test", num_examples: int | None = None) -> list[float]:
    """Otsu IoU of every scene of a split (default size), regenerated from the split's seeds."""
    n = num_examples or split_sizes(0, DEFAULT_TRAIN_EXAMPLES)[split]
    scores = []
    for i in range(n):
        image, classes = scene(example_rng("shapes_seg", split, i))
        scores.append(otsu_iou(image, classes > 0))
    return scores


if __name__ == "__main__":
    ious = otsu_baseline()
    print(f"Otsu baseline on shapes_seg test ({len(ious)} scenes): mean IoU {np.mean(ious):.3f} "
          f"(min {np.min(ious):.3f}, max {np.max(ious):.3f})")
