"""`photo_seg`: object-vs-background scenes cut from real photos (built locally, no download).

Each 160x160 scene is a crop of one real photo (the background) with 1-4 objects pasted on it:
silhouettes filled with crops of other real photos (or, now and then, another region of the
background's own photo), so neither colour nor texture statistics tell object from background; only
the silhouette's boundary does. Every crop is taken at a random scale (0.4-1.6x), rotated by a
multiple of 90 degrees, flipped, and colour-jittered (brightness, contrast, saturation, channel order,
sometimes gray; a random tint colours the gray photos too). Later objects occlude earlier ones; holes and bands cut through objects show the
background again (occlusion by the background's surface); a light shading ramp, optics blur and
sensor noise finish the scene. The photos are those shipped inside scikit-image (`skimage/data`).

Splits (binary `mask`, 1 = object; uint8 (160, 160, 1)):
- train, test: TRAIN_PHOTOS and the training silhouettes (star-shaped blobs, polygons, unions of
  ellipses, thresholded smooth noise, thick strokes), from disjoint seeds: `test` is in-distribution;
- heldout: photos (HELDOUT_PHOTOS) and silhouettes (the scikit-image horse, capital letters and
  digits, hand-like shapes of a palm and fingers) that training never sees: does a model trained
  here segment objects, or the training set's look?
Sizes: train = config.data.num_train_examples (default 500), test = heldout = max(8, train // 4).

Naive baseline, Otsu's global threshold (better polarity per image), mean foreground IoU:

    JAX_PLATFORMS=cpu python -m jaxgan.data.photo_seg
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from skimage import draw

from jaxgan.data.builtin import LocalBuilder, example_rng, png_file, split_sizes
from jaxgan.data.photo_blur import skimage_photo

SCENE_SIZE = 160
DEFAULT_TRAIN_EXAMPLES = 500
TRAIN_PHOTOS = ("astronaut.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png", "retina.jpg",
                "camera.png", "brick.png", "grass.png", "gravel.png", "moon.png", "coins.png", "page.png",
                "cell.png")
HELDOUT_PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg", "clock_motion.png")
SPLITS = ("train", "test", "heldout")


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    return skimage_photo(name).astype(np.float32) / 255.0


def photo_patch(rng: np.random.Generator, name: str, size: int) -> np.ndarray:
    """A (size, size, 3) crop of a photo in [0, 1] at a random scale, rotation, flip and colour."""
    photo = _photo(name)
    side = int(np.clip(size * rng.uniform(0.4, 1.6), 16, min(photo.shape[:2])))
    return colour_jitter(rng, square_crop(rng, photo, side, size))


def square_crop(rng: np.random.Generator, photo: np.ndarray, side: int, size: int) -> np.ndarray:
    """A random side x side crop of `photo` ([0, 1]) resized to size x size, turned by a random multiple
    of 90 degrees and flipped half the time."""
    h, w = photo.shape[:2]
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = photo[y:y + side, x:x + side]
    if side != size:
        crop = np.asarray(Image.fromarray(np.round(crop * 255).astype(np.uint8)).resize(
            (size, size), Image.BILINEAR), np.float32) / 255.0
    crop = np.rot90(crop, rng.integers(4))
    return crop[:, ::-1] if rng.random() < 0.5 else crop


def colour_jitter(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Random tint (colours gray photos too), saturation, channel order, contrast, brightness;
    sometimes gray."""
    tint = rng.uniform(0.5, 1.0, 3)
    image = image * tint / tint.max()
    gray = image.mean(-1, keepdims=True)
    image = gray + rng.uniform(0.5, 1.8) * (image - gray)  # saturation
    image = image[..., rng.permutation(3)]
    if rng.random() < 0.15:
        image = np.repeat(image.mean(-1, keepdims=True), 3, -1)
    mean = image.mean()
    image = mean + rng.uniform(0.6, 1.4) * (image - mean) + rng.uniform(-0.2, 0.2)  # contrast, brightness
    return np.clip(image, 0.0, 1.0)


# ---- training silhouettes -------------------------------------------------------------------

def _centre_and_radius(rng, size, low=0.12, high=0.3):
    return rng.uniform(0.2, 0.8, 2) * size, rng.uniform(low, high) * size


def blob_mask(rng, size):
    """Star-shaped: r(theta) = R (1 + sum_k a_k cos(k theta + phi_k)), up to 8 harmonics."""
    (r0, c0), radius = _centre_and_radius(rng, size)
    yy, xx = np.mgrid[0:size, 0:size]
    theta = np.arctan2(yy - r0, xx - c0)
    r = np.full_like(theta, radius)
    for k in range(2, 9):
        r *= 1 + rng.uniform(0, 0.3 / np.sqrt(k - 1)) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return np.hypot(yy - r0, xx - c0) < r


def polygon_mask(rng, size):
    n = rng.integers(3, 10)
    (r0, c0), radius = _centre_and_radius(rng, size)
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = radius * rng.uniform(0.4, 1.2, n)
    rr, cc = draw.polygon(r0 + radii * np.sin(angles), c0 + radii * np.cos(angles), shape=(size, size))
    m = np.zeros((size, size), bool)
    m[rr, cc] = True
    return m


def ellipses_mask(rng, size):
    """A union of 2-4 overlapping ellipses (multi-part, concave outlines)."""
    (r0, c0), radius = _centre_and_radius(rng, size)
    m = np.zeros((size, size), bool)
    for _ in range(rng.integers(2, 5)):
        r, c = r0 + rng.normal(0, radius * 0.6), c0 + rng.normal(0, radius * 0.6)
        rr, cc = draw.ellipse(r, c, radius * rng.uniform(0.2, 0.8), radius * rng.uniform(0.2, 0.8),
                              shape=(size, size), rotation=rng.uniform(-np.pi, np.pi))
        m[rr, cc] = True
    return m


def noise_mask(rng, size):
    """The component of thresholded smooth noise nearest a random point (organic, irregular)."""
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), rng.uniform(5, 12))
    m = field > np.quantile(field, rng.uniform(0.6, 0.85))
    labels, n = ndimage.label(m)
    if n == 0:
        return blob_mask(rng, size)
    sizes = ndimage.sum(m, labels, range(1, n + 1))
    return labels == 1 + int(np.argmax(sizes))


def stroke_mask(rng, size):
    """A thick wavy stroke (4-12 px) across part of the scene."""
    t = np.linspace(0, 1, 300)
    start, end = rng.uniform(0, size, 2), rng.uniform(0, size, 2)
    normal = np.array([start[1] - end[1], end[0] - start[0]]) / (np.linalg.norm(end - start) + 1e-8)
    wave = rng.uniform(5, 25) * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t + rng.uniform(0, 2 * np.pi))
    pts = np.clip(np.round(start + t[:, None] * (end - start) + wave[:, None] * normal).astype(int), 0, size - 1)
    line = np.ones((size, size), bool)
    line[pts[:, 0], pts[:, 1]] = False
    return ndimage.distance_transform_edt(line) <= rng.uniform(2.0, 6.0)


TRAIN_SHAPES = (blob_mask, polygon_mask, ellipses_mask, noise_mask, stroke_mask)


# ---- held-out silhouettes -------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _horse() -> np.ndarray:
    import skimage.data

    m = ~skimage.data.horse()  # True on the horse
    rows, cols = np.nonzero(m)
    return m[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def _place(rng, shape_mask: np.ndarray, size: int) -> np.ndarray:
    """A binary shape resized to 30-80% of the scene, flipped, placed at a random position."""
    h, w = shape_mask.shape
    scale = rng.uniform(0.3, 0.8) * size / max(h, w)
    nh, nw = max(4, int(h * scale)), max(4, int(w * scale))
    small = np.asarray(Image.fromarray(shape_mask.astype(np.uint8) * 255).resize((nw, nh), Image.BILINEAR)) > 127
    if rng.random() < 0.5:
        small = small[:, ::-1]
    out = np.zeros((size, size), bool)
    y, x = rng.integers(-nh // 4, size - 3 * nh // 4), rng.integers(-nw // 4, size - 3 * nw // 4)
    ys, xs = slice(max(y, 0), min(y + nh, size)), slice(max(x, 0), min(x + nw, size))
    out[ys, xs] = small[ys.start - y:ys.stop - y, xs.start - x:xs.stop - x]
    return out


def horse_mask(rng, size):
    return _place(rng, _horse(), size)


def glyph_mask(rng, size):
    """A capital letter or digit in Pillow's built-in scalable font, bold by dilation."""
    char = "ABCDEFGHKMNPRSTUVWXYZ2345678"[rng.integers(28)]
    canvas = Image.new("L", (200, 200), 0)
    ImageDraw.Draw(canvas).text((100, 100), char, fill=255, anchor="mm", font=ImageFont.load_default(size=150))
    m = ndimage.binary_dilation(np.asarray(canvas) > 127, iterations=int(rng.integers(3, 9)))
    rows, cols = np.nonzero(m)
    return _place(rng, m[rows.min():rows.max() + 1, cols.min():cols.max() + 1], size)


def hand_mask(rng, size):
    """A palm (ellipse) with 3-5 fingers (rotated capsules) fanned out."""
    m = np.zeros((120, 120), bool)
    rr, cc = draw.ellipse(80, 60, 28, 24, shape=m.shape)
    m[rr, cc] = True
    for angle in np.linspace(-0.9, 0.9, rng.integers(3, 6)) + rng.normal(0, 0.08):
        length = rng.uniform(35, 55)
        y1, x1 = 70 - length * np.cos(angle), 60 + length * np.sin(angle)
        finger = np.zeros_like(m)
        rr, cc = draw.line(70, 60, int(np.clip(y1, 0, 119)), int(np.clip(x1, 0, 119)))
        finger[rr, cc] = True
        m |= ndimage.distance_transform_edt(~finger) <= 6
    return _place(rng, m, size)


HELDOUT_SHAPES = (horse_mask, glyph_mask, hand_mask)


# ---- scenes ---------------------------------------------------------------------------------

def occlude(rng: np.random.Generator, size: int) -> np.ndarray:
    """Where the background shows through an object: a band or a few round holes."""
    if rng.random() < 0.5:
        return stroke_mask(rng, size)
    m = np.zeros((size, size), bool)
    for _ in range(rng.integers(1, 4)):
        rr, cc = draw.disk(tuple(rng.uniform(0, size, 2)), rng.uniform(4, 14), shape=(size, size))
        m[rr, cc] = True
    return m


def scene(rng: np.random.Generator, photos, shapes, size: int = SCENE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (image uint8 (size, size, 3), mask bool (size, size), True on objects)."""
    background_photo = photos[rng.integers(len(photos))]
    background = photo_patch(rng, background_photo, size)
    image, mask = background.copy(), np.zeros((size, size), bool)
    for _ in range(rng.integers(1, 5)):
        region = shapes[rng.integers(len(shapes))](rng, size)
        if not region.any():
            continue
        name = background_photo if rng.random() < 0.15 else photos[rng.integers(len(photos))]
        surface = photo_patch(rng, name, size)
        angle = rng.uniform(0, 2 * np.pi)  # a light shading ramp: objects are lit, not flat cut-outs
        yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
        surface = surface + rng.uniform(0, 0.2) * (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
        image = np.where(region[..., None], surface, image)
        mask |= region
    if mask.any() and rng.random() < 0.4:
        holes = occlude(rng, size)
        image = np.where(holes[..., None], background, image)
        mask &= ~holes
    image = ndimage.gaussian_filter(image, (rng.uniform(0.3, 1.0),) * 2 + (0,))  # optics
    image = image + rng.normal(0, rng.uniform(0.005, 0.03), image.shape)  # sensor noise
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8), mask


def split_scene(split: str, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Scene i of a split, regenerated from its seed."""
    photos, shapes = ((HELDOUT_PHOTOS, HELDOUT_SHAPES) if split == "heldout" else (TRAIN_PHOTOS, TRAIN_SHAPES))
    return scene(example_rng("photo_seg", split, i), photos, shapes)


class PhotoSeg(LocalBuilder):
    """Objects cut from real photos pasted on real photos, binary masks (see the module docstring)."""

    VERSION = tfds.core.Version("1.0.0")
    code_path = None  # no package metadata / checksums: nothing is downloaded

    @classmethod
    def for_config(cls, config, data_dir=None) -> "PhotoSeg":
        n = split_sizes(config.data.num_train_examples, DEFAULT_TRAIN_EXAMPLES)["train"]
        return cls(data_dir=data_dir, config=tfds.core.BuilderConfig(name=f"n{n}"))

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=__doc__,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(SCENE_SIZE, SCENE_SIZE, 3), encoding_format="png"),
                "mask": tfds.features.Image(shape=(SCENE_SIZE, SCENE_SIZE, 1), encoding_format="png"),
            }),
            supervised_keys=("image", "mask"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        sizes = split_sizes(int(self.builder_config.name[1:]), DEFAULT_TRAIN_EXAMPLES)
        sizes["heldout"] = sizes["test"]
        return {split: self._generate_examples(split, n) for split, n in sizes.items()}

    def _generate_examples(self, split, num_examples):
        for i in range(num_examples):
            image, mask = split_scene(split, i)
            yield i, {"image": png_file(image), "mask": png_file(mask.astype(np.uint8)[..., None])}


if __name__ == "__main__":
    from jaxgan.data.shapes_seg import otsu_iou

    n = split_sizes(0, DEFAULT_TRAIN_EXAMPLES)["test"]
    for split in ("test", "heldout"):
        ious = [otsu_iou(*split_scene(split, i)) for i in range(n)]
        print(f"Otsu baseline on photo_seg {split} ({n} scenes): mean IoU {np.mean(ious):.3f}")
