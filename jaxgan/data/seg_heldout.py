"""Two held-out object-vs-background sets for models trained on jaxgan.data.seg_scenes (or photo_seg).

Nothing here is shared with the training generators (no surfaces, silhouettes or composition code of
seg_scenes / photo_seg): other photos, other silhouette families, another way of compositing. Each
128x128 scene is a pure function of (set, index).

- `heldout_photos`: one object cut from a scikit-image photo that no training set reads (chelsea,
  coffee, rocket, clock_motion) by a natural or letter silhouette (the scikit-image horse, a hand, a
  lower-case letter of Pillow's scalable font), pasted with a feathered edge on a crop of another of
  those photos: the real-photo composites the segmentation issue measured on.
- `heldout_sklearn`: 1-2 objects cut from scikit-learn's two sample photos (china.jpg, flower.jpg) by
  man-made silhouettes (rings, crescents, pointed stars, arrows, crosses, hearts, symbols & @ ? %),
  pasted with a hard edge on a defocused crop of the other photo, then JPEG-compressed.

Mask: bool (128, 128), True on objects.
"""

from __future__ import annotations

import functools
import io
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageFilter
from scipy import ndimage

SIZE = 128
SETS = ("heldout_photos", "heldout_sklearn")
SKIMAGE_PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg", "clock_motion.png")
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")
DEFAULT_EXAMPLES = 125


def _rng(name: str, index: int) -> np.random.Generator:
    return np.random.default_rng([SETS.index(name), int(index), 0x5E6])


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> Image.Image:
    if name in SKLEARN_PHOTOS:
        try:
            import sklearn
        except ImportError as error:
            raise ImportError("the heldout_sklearn set reads scikit-learn's sample photos: "
                              "pip install scikit-learn") from error
        path = os.path.join(os.path.dirname(sklearn.__file__), "datasets", "images", name)
    else:
        import skimage

        path = os.path.join(os.path.dirname(skimage.__file__), "data", name)
    with Image.open(path) as im:
        return im.convert("RGB")


def _crop(rng, name: str, size: int = SIZE) -> Image.Image:
    """A square crop of a photo (side 0.5-1x its short side ... down to `size`), resized to size."""
    photo = _photo(name)
    short = min(photo.size)
    side = int(rng.uniform(max(size, 0.25 * short), short))
    x, y = rng.integers(0, photo.width - side + 1), rng.integers(0, photo.height - side + 1)
    return photo.crop((x, y, x + side, y + side)).resize((size, size), Image.LANCZOS)


# ---- silhouettes: canvases of 'L' mode, white on black ------------------------------------------

@functools.lru_cache(maxsize=1)
def _horse() -> Image.Image:
    import skimage.data

    return Image.fromarray((~skimage.data.horse()).astype(np.uint8) * 255)


def _hand(rng) -> Image.Image:
    canvas = Image.new("L", (200, 200), 0)
    d = ImageDraw.Draw(canvas)
    d.ellipse((55, 95, 145, 185), fill=255)  # palm
    for angle in np.linspace(-1.0, 0.8, rng.integers(4, 6)) + rng.normal(0, 0.1):
        length = rng.uniform(55, 80)
        end = (100 + length * np.sin(angle), 120 - length * np.cos(angle))
        d.line((100, 125) + end, fill=255, width=int(rng.integers(14, 20)))
        d.ellipse((end[0] - 8, end[1] - 8, end[0] + 8, end[1] + 8), fill=255)
    return canvas


def _glyph(rng, chars: str) -> Image.Image:
    canvas = Image.new("L", (200, 200), 0)
    ImageDraw.Draw(canvas).text((100, 100), chars[rng.integers(len(chars))], fill=255, anchor="mm",
                                font=ImageFont.load_default(size=140), stroke_width=int(rng.integers(2, 7)),
                                stroke_fill=255)
    return canvas


def natural_silhouette(rng) -> Image.Image:
    kind = rng.integers(3)
    if kind == 0:
        return _horse()
    if kind == 1:
        return _hand(rng)
    return _glyph(rng, "abdefghkmnpqrty")


def _star(rng, d: ImageDraw.ImageDraw):
    n = int(rng.integers(4, 9))
    angles = np.arange(2 * n) * np.pi / n + rng.uniform(0, np.pi)
    radii = np.where(np.arange(2 * n) % 2 == 0, 90, rng.uniform(25, 50))
    d.polygon([(100 + r * np.cos(a), 100 + r * np.sin(a)) for r, a in zip(radii, angles)], fill=255)


def manmade_silhouette(rng) -> Image.Image:
    canvas = Image.new("L", (200, 200), 0)
    d = ImageDraw.Draw(canvas)
    kind = rng.integers(7)
    if kind == 0:  # ring
        d.ellipse((10, 10, 190, 190), fill=255)
        r = rng.uniform(35, 70)
        d.ellipse((100 - r, 100 - r, 100 + r, 100 + r), fill=0)
    elif kind == 1:  # crescent
        d.ellipse((10, 10, 190, 190), fill=255)
        shift = rng.uniform(40, 80)
        d.ellipse((10 + shift, 10 - shift / 3, 190 + shift, 190 - shift / 3), fill=0)
    elif kind == 2:
        _star(rng, d)
    elif kind == 3:  # arrow
        w = rng.uniform(15, 35)
        d.polygon([(10, 100 - w), (120, 100 - w), (120, 40), (190, 100), (120, 160), (120, 100 + w),
                   (10, 100 + w)], fill=255)
    elif kind == 4:  # cross
        w = rng.uniform(18, 40)
        d.rectangle((100 - w, 10, 100 + w, 190), fill=255)
        d.rectangle((10, 100 - w, 190, 100 + w), fill=255)
    elif kind == 5:  # heart
        d.ellipse((15, 30, 105, 120), fill=255)
        d.ellipse((95, 30, 185, 120), fill=255)
        d.polygon([(22, 95), (178, 95), (100, 185)], fill=255)
    else:
        return _glyph(rng, "&@?%")
    return canvas


def _fit(rng, silhouette: Image.Image, low: float, high: float) -> np.ndarray:
    """The silhouette rotated (+-30 degrees), sized to `low`-`high` of the frame's area, at a random
    position fully inside the frame; float32 coverage in [0, 1] (SIZE, SIZE)."""
    shape = silhouette.rotate(rng.uniform(-30, 30), Image.BICUBIC, expand=True)
    if rng.random() < 0.5:
        shape = shape.transpose(Image.FLIP_LEFT_RIGHT)
    shape = shape.crop(shape.getbbox())
    fill = np.asarray(shape, np.float32).mean() / 255
    scale = np.sqrt(rng.uniform(low, high) * SIZE * SIZE / (fill * shape.width * shape.height))
    scale = min(scale, 0.95 * SIZE / max(shape.size))
    w, h = max(6, int(shape.width * scale)), max(6, int(shape.height * scale))
    small = np.asarray(shape.resize((w, h), Image.LANCZOS), np.float32) / 255
    out = np.zeros((SIZE, SIZE), np.float32)
    y, x = rng.integers(0, SIZE - h + 1), rng.integers(0, SIZE - w + 1)
    out[y:y + h, x:x + w] = np.clip(small, 0, 1)
    return out


def photos_scene(index: int) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng("heldout_photos", index)
    back, front = rng.choice(len(SKIMAGE_PHOTOS), 2, replace=False)
    background = np.asarray(_crop(rng, SKIMAGE_PHOTOS[back]), np.float32)
    cutout = np.asarray(_crop(rng, SKIMAGE_PHOTOS[front]), np.float32)
    alpha = _fit(rng, natural_silhouette(rng), 0.05, 0.5)
    feathered = ndimage.gaussian_filter(alpha, rng.uniform(0.5, 1.2))[..., None]
    image = feathered * cutout + (1 - feathered) * background
    return np.clip(np.round(image), 0, 255).astype(np.uint8), alpha > 0.5


def sklearn_scene(index: int) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng("heldout_sklearn", index)
    back = int(rng.integers(2))
    image = _crop(rng, SKLEARN_PHOTOS[back]).filter(ImageFilter.GaussianBlur(rng.uniform(0, 2.5)))
    mask = np.zeros((SIZE, SIZE), bool)
    for _ in range(rng.integers(1, 3)):
        alpha = _fit(rng, manmade_silhouette(rng), 0.04, 0.35)
        name = SKLEARN_PHOTOS[1 - back] if rng.random() < 0.7 else SKLEARN_PHOTOS[back]
        region = alpha > 0.5
        image.paste(_crop(rng, name), (0, 0), Image.fromarray(region.astype(np.uint8) * 255))
        mask |= region
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(rng.integers(60, 95)))
    with Image.open(buffer) as im:
        return np.asarray(im.convert("RGB"), np.uint8), mask


def heldout_scene(name: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Scene `index` of held-out set `name` (one of SETS)."""
    if name == "heldout_photos":
        return photos_scene(index)
    if name == "heldout_sklearn":
        return sklearn_scene(index)
    raise ValueError(f"unknown held-out set {name!r}; valid: {', '.join(SETS)}")
