"""`seg_scenes`: object-vs-background training scenes without end, each a pure function of (seed, index).

Scene i of a seed is drawn from `example_rng("seg_scenes", seed, split, i)`: training never repeats a
scene and resumes exactly (the pipeline reads scene `position` at training position `position`).
Every 128x128 scene is a background surface with 1-4 objects on top (mask 1 = any object):

- surfaces (backgrounds and object fills): crops of the training photos (scikit-image's, minus the
  held-out ones), dead-leaves layers (jaxgan.data.dead_leaves) whose leaves are filled with photo crops
  or procedural textures, band-limited noise, gratings, flat colours and linear gradients;
- silhouettes: star-shaped blobs, polygons, unions of ellipses, thin strokes and branching curves,
  capital letters and digits in Pillow's two built-in fonts (scalable and bitmap, bold / slanted /
  stretched), organic outlines from thresholded smooth noise, and the outlines of objects found in the
  shipped photos (coins, the cameraman, printed words, the scikit-image logo);
- each object covers 3-60 % of the frame (log-uniform area), its fill is unlike the background
  (another source), like it (another crop of the same photo or texture family, colour-matched) or
  plain (flat / gradient), at high or low contrast (its mean colour pulled towards the background's);
- then occluding holes now and then, shading, optics blur and sensor noise.

The held-out sets (jaxgan.data.seg_heldout) share none of this code, photos or silhouette families.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from skimage import draw

from jaxgan.data import dead_leaves
from jaxgan.data.builtin import example_rng
from jaxgan.data.photo_blur import skimage_photo
from jaxgan.data.photo_seg import square_crop

SCENE_SIZE = 128
MIN_AREA, MAX_AREA = 0.03, 0.6  # fraction of the frame one object covers
# scikit-image photos minus the held-out ones (chelsea, coffee, rocket, clock_motion, horse) and
# scikit-learn's (china, flower), which only jaxgan.data.seg_heldout reads.
TRAIN_PHOTOS = ("astronaut.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png", "retina.jpg",
                "camera.png", "brick.png", "grass.png", "gravel.png", "moon.png", "coins.png", "page.png",
                "cell.png", "color.png", "text.png", "microaneurysms.png", "logo.png")


# ---- surfaces ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    return skimage_photo(name).astype(np.float32) / 255.0


def photo_surface(rng: np.random.Generator, size: int, name: str | None = None) -> np.ndarray:
    """A (size, size, 3) crop of a training photo at a random scale, rotation, flip and tint."""
    photo = _photo(name or TRAIN_PHOTOS[rng.integers(len(TRAIN_PHOTOS))])
    side = int(np.clip(size * np.exp(rng.uniform(np.log(0.35), np.log(2.0))), 12, min(photo.shape[:2])))
    crop = square_crop(rng, photo, side, size)
    tint = rng.uniform(0.5, 1.0, 3)
    crop = crop * (tint / tint.max())
    return np.ascontiguousarray(crop[..., rng.permutation(3)])


def procedural_surface(rng: np.random.Generator, size: int) -> np.ndarray:
    """One dead-leaves fill without photos: a 1/f field, a grating, a flat colour or a gradient."""
    return dead_leaves.texture(rng, size, size)


def plain_surface(rng: np.random.Generator, size: int) -> np.ndarray:
    """A flat colour, or a linear gradient between two colours."""
    a = rng.uniform(0, 1, 3)
    if rng.random() < 0.5:
        return np.broadcast_to(a, (size, size, 3)).copy()
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    t = np.clip(0.5 + np.cos(angle) * xx + np.sin(angle) * yy, 0, 1)[..., None]
    return a + (rng.uniform(0, 1, 3) - a) * t


@functools.lru_cache(maxsize=1)
def _train_photos_uint8() -> tuple:
    return tuple(skimage_photo(name) for name in TRAIN_PHOTOS)


def leaves_surface(rng: np.random.Generator, size: int) -> np.ndarray:
    """A dead-leaves layer (jaxgan.data.dead_leaves) of leaves filled with training-photo crops and
    procedural textures; coarser than its default (fewer, larger leaves) to stay cheap."""
    seed, index = (int(v) for v in rng.integers(0, 2**31, 2))
    return dead_leaves.scene(seed, index, size, _train_photos_uint8(), r_min=size / 20, max_shapes=80).image


SURFACES = {"photo": photo_surface, "leaves": leaves_surface, "procedural": procedural_surface,
            "plain": plain_surface}
BACKGROUND_ODDS = {"photo": 0.4, "leaves": 0.3, "procedural": 0.15, "plain": 0.15}
OBJECT_ODDS = {"photo": 0.4, "leaves": 0.15, "procedural": 0.25, "plain": 0.2}


def _pick(rng, odds: dict) -> str:
    names = list(odds)
    return names[rng.choice(len(names), p=np.array(list(odds.values())) / sum(odds.values()))]


# ---- silhouettes (canonical shapes; `place` sizes and positions them) ----------------------------

def blob_shape(rng, side: int = 96) -> np.ndarray:
    """Star-shaped: r(theta) = R prod_k (1 + a_k cos(k theta + phi_k)), up to 8 harmonics."""
    yy, xx = np.mgrid[0:side, 0:side] - side / 2
    theta = np.arctan2(yy, xx)
    r = np.full_like(theta, side / 4)
    for k in range(2, 9):
        r *= 1 + rng.uniform(0, 0.35 / np.sqrt(k - 1)) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return np.hypot(yy, xx) < r


def polygon_shape(rng, side: int = 96) -> np.ndarray:
    """3-12 vertices at random angles and radii (convex to very concave)."""
    n = rng.integers(3, 13)
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = side / 2.2 * rng.uniform(0.25 if rng.random() < 0.5 else 0.8, 1.0, n)
    rr, cc = draw.polygon(side / 2 + radii * np.sin(angles), side / 2 + radii * np.cos(angles), (side, side))
    m = np.zeros((side, side), bool)
    m[rr, cc] = True
    return m


def ellipses_shape(rng, side: int = 96) -> np.ndarray:
    """A union of 1-4 overlapping rotated ellipses."""
    m = np.zeros((side, side), bool)
    for _ in range(rng.integers(1, 5)):
        r, c = side / 2 + rng.normal(0, side / 8, 2)
        rr, cc = draw.ellipse(r, c, side * rng.uniform(0.08, 0.3), side * rng.uniform(0.08, 0.3), (side, side),
                              rotation=rng.uniform(-np.pi, np.pi))
        m[rr, cc] = True
    return m


def noise_shape(rng, side: int = 96) -> np.ndarray:
    """The largest component of thresholded smooth noise (organic, irregular, sometimes holed)."""
    field = ndimage.gaussian_filter(rng.standard_normal((side, side)), rng.uniform(4, 10))
    field -= np.hypot(*(np.mgrid[0:side, 0:side] - side / 2)) / side * field.std() * 2  # centred
    m = field > np.quantile(field, rng.uniform(0.6, 0.85))
    labels, n = ndimage.label(m)
    if n == 0:
        return blob_shape(rng, side)
    return labels == 1 + int(np.argmax(ndimage.sum(m, labels, range(1, n + 1))))


def thin_shape(rng, side: int = 96) -> np.ndarray:
    """1-3 wavy strokes (1.5-6 px wide at 96 px) from a common point: wires, branches, legs."""
    line = np.ones((side, side), bool)
    hub = rng.uniform(0.3, 0.7, 2) * side
    t = np.linspace(0, 1, 200)[:, None]
    for _ in range(rng.integers(1, 4)):
        end = rng.uniform(0, side, 2)
        normal = np.array([hub[1] - end[1], end[0] - hub[0]]) / (np.linalg.norm(end - hub) + 1e-8)
        wave = rng.uniform(0, 12) * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t + rng.uniform(0, 2 * np.pi))
        pts = np.clip(np.round(hub + t * (end - hub) + wave * normal).astype(int), 0, side - 1)
        line[pts[:, 0], pts[:, 1]] = False
    return ndimage.distance_transform_edt(line) <= rng.uniform(0.75, 3.0)


@functools.lru_cache(maxsize=None)
def _fonts() -> tuple:
    return ImageFont.load_default(size=80), ImageFont.load_default_imagefont()


def letter_shape(rng, side: int = 96) -> np.ndarray:
    """A capital letter or digit in one of Pillow's built-in fonts, bold / slanted / stretched."""
    char = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[rng.integers(36)]
    scalable, bitmap = _fonts()
    if rng.random() < 0.7:
        canvas = Image.new("L", (120, 120), 0)
        ImageDraw.Draw(canvas).text((60, 60), char, fill=255, anchor="mm", font=scalable,
                                    stroke_width=int(rng.integers(0, 5)), stroke_fill=255)
    else:  # the 6x11 bitmap font, blown up: blocky pixel letters
        small = Image.new("L", (16, 16), 0)
        ImageDraw.Draw(small).text((4, 2), char, fill=255, font=bitmap)
        canvas = small.resize((120, 120), Image.NEAREST)
    shear = rng.uniform(-0.35, 0.35)
    canvas = canvas.transform(canvas.size, Image.AFFINE, (1, shear, -60 * shear, 0, 1, 0), Image.BILINEAR)
    m = np.asarray(canvas) > 127
    stretch = rng.uniform(0.6, 1.6)
    return np.asarray(Image.fromarray(m).resize((max(8, int(120 * stretch)), 120), Image.NEAREST))


@functools.lru_cache(maxsize=1)
def photo_object_shapes() -> tuple:
    """Outlines of objects in the training photos (cropped bool arrays, >= 150 px each): the coins,
    the cameraman, printed words on the page, the letters of text.png and the logo's parts."""
    out = []

    def components(m, min_area=150):
        labels, n = ndimage.label(ndimage.binary_fill_holes(m))
        for box in ndimage.find_objects(labels):
            part = labels[box] > 0
            if part.sum() >= min_area and min(part.shape) >= 8:
                out.append(part)

    from skimage.filters import threshold_otsu

    gray = {name: skimage_photo(name).astype(np.float32).mean(-1) for name in ("coins.png", "camera.png",
                                                                              "page.png", "text.png")}
    components(gray["coins.png"] > threshold_otsu(gray["coins.png"]))
    cam = ndimage.binary_opening(gray["camera.png"] < 60, iterations=2)
    labels, n = ndimage.label(cam)
    biggest = labels == 1 + int(np.argmax(ndimage.sum(cam, labels, range(1, n + 1))))
    components(biggest)
    components(ndimage.binary_dilation(gray["page.png"] < threshold_otsu(gray["page.png"]) - 20,
                                       structure=np.ones((3, 7))))
    components(gray["text.png"] > threshold_otsu(gray["text.png"]), min_area=60)
    import os

    import skimage
    with Image.open(os.path.join(os.path.dirname(skimage.__file__), "data", "logo.png")) as im:
        components(np.asarray(im)[..., 3] > 127)
    return tuple(out)


def photo_object_shape(rng, side: int = 96) -> np.ndarray:
    del side
    shapes = photo_object_shapes()
    return shapes[rng.integers(len(shapes))]


SHAPES = {"blob": blob_shape, "polygon": polygon_shape, "ellipses": ellipses_shape, "noise": noise_shape,
          "thin": thin_shape, "letter": letter_shape, "photo_object": photo_object_shape}


def place(rng: np.random.Generator, shape: np.ndarray, area: float, size: int) -> np.ndarray:
    """The shape rotated, flipped and scaled to cover about `area` of a size x size frame, at a random
    position (up to a quarter of it may leave the frame). Thin shapes keep their own size."""
    img = Image.fromarray(shape.astype(np.uint8) * 255).rotate(rng.uniform(0, 360), Image.BILINEAR, expand=True)
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    box = img.getbbox() or (0, 0, 1, 1)
    img = img.crop(box)
    filled = max(np.asarray(img).mean() / 255.0, 1e-3)
    scale = np.sqrt(area * size * size / (filled * img.width * img.height))
    scale = min(scale, 1.5 * size / max(img.width, img.height))
    nw, nh = max(3, int(round(img.width * scale))), max(3, int(round(img.height * scale)))
    small = np.asarray(img.resize((nw, nh), Image.BILINEAR)) > 127
    out = np.zeros((size, size), bool)
    y = rng.integers(-nh // 4, max(size - 3 * nh // 4, -nh // 4 + 1))
    x = rng.integers(-nw // 4, max(size - 3 * nw // 4, -nw // 4 + 1))
    ys, xs = slice(max(y, 0), min(y + nh, size)), slice(max(x, 0), min(x + nw, size))
    if ys.stop > ys.start and xs.stop > xs.start:
        out[ys, xs] = small[ys.start - y:ys.stop - y, xs.start - x:xs.stop - x]
    return out


# ---- scenes -----------------------------------------------------------------------------------

def _object_fill(rng, background: np.ndarray, background_kind: str, size: int) -> np.ndarray:
    """A fill unlike the background (another source), like it (same family, colour-matched) or plain."""
    relation = rng.choice(3, p=[0.5, 0.3, 0.2])
    if relation == 0:
        fill = SURFACES[_pick(rng, OBJECT_ODDS)](rng, size)
    elif relation == 1:
        fill = SURFACES[background_kind](rng, size)
        fill = fill - fill.mean((0, 1)) + background.mean((0, 1)) + rng.normal(0, 0.06, 3)
    else:
        fill = plain_surface(rng, size)
    if rng.random() < 0.3:  # low contrast: the mean colour pulled towards the background's
        pull = rng.uniform(0.5, 0.9)
        fill = fill + pull * (background.mean((0, 1)) - fill.mean((0, 1)))
    return fill


def scene(rng: np.random.Generator, size: int = SCENE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (image uint8 (size, size, 3), mask bool (size, size), True on objects)."""
    kind = _pick(rng, BACKGROUND_ODDS)
    background = np.clip(SURFACES[kind](rng, size), 0, 1)
    image, mask = background.copy(), np.zeros((size, size), bool)
    names = list(SHAPES)
    for _ in range(rng.choice(4, p=[0.4, 0.3, 0.2, 0.1]) + 1):
        area = np.exp(rng.uniform(np.log(MIN_AREA), np.log(MAX_AREA)))
        region = place(rng, SHAPES[names[rng.integers(len(names))]](rng), area, size)
        if not region.any():
            continue
        fill = np.clip(_object_fill(rng, background, kind, size), 0, 1)
        alpha = ndimage.gaussian_filter(region.astype(np.float32), rng.uniform(0.3, 0.8))[..., None]
        image = alpha * fill + (1 - alpha) * image
        mask |= region
    if mask.any() and rng.random() < 0.15:  # the background shows through a hole or band
        holes = place(rng, SHAPES[("blob", "thin")[rng.integers(2)]](rng), rng.uniform(0.01, 0.05), size)
        image = np.where(holes[..., None], background, image)
        mask &= ~holes
    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    image = image + rng.uniform(0, 0.15) * (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]  # shading
    image = ndimage.gaussian_filter(image, (rng.uniform(0.2, 0.9),) * 2 + (0,))  # optics
    image = image + rng.normal(0, rng.uniform(0.0, 0.03), image.shape)  # sensor noise
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8), mask


def scene_at(seed: int, split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Scene `index` of a split ('train', 'val' or 'test': disjoint streams) for a seed."""
    return scene(example_rng("seg_scenes", int(seed), split, int(index)))
