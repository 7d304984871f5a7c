"""Dead-leaves scenes: occluding shapes of heavy-tailed sizes with textured fills (numpy only).

A scene is a pure function of (seed, index): `scene(seed, index, size)` seeds one numpy Generator from
both and draws everything from it, so the same pair always gives the same pixels and a run that resumes
at example `index` needs no cache. Model (Achddou, Gousseau & Ladjal, SSVM 2021; "VibrantLeaves",
arXiv 2504.10201): a textured background, then shapes, each one
  - a disk, a rotated ellipse, a rotated rectangle or a blob (a disk whose radius varies with angle),
  - of radius drawn from a power law p(r) ~ r^-alpha on [r_min, r_max] (alpha 3: scale invariance),
  - filled with a `texture`: a crop of a photo (rescaled), a 1/f^beta random field (the amplitude
    spectrum of natural images), a sinusoidal grating, a flat colour or a linear gradient,
  - with a hard (anti-aliased, 1 px) or a soft (2-6 px) edge,
drawn front to back (the exact dead-leaves law) until the image is covered. With probability
`defocus_probability` the shapes behind a random depth and the background are blurred (Gaussian, depth
of field), out of focus behind sharp foreground shapes.

Public API (also used by the segmentation data):
  texture(rng, h, w, photos=())      -> float32 (h, w, 3) in [0, 1], one random fill
  shape_alpha(rng, h, w, radius)     -> float32 (h, w) in [0, 1], one random shape centred in the box
  scene(seed, index, size=256, photos=(), ...) -> Scene(image float32 (size, size, 3) in [0, 1],
                                      layers int16 (size, size): index of the shape seen at each pixel
                                      (0 = background, k = the k-th shape from the front; a pixel
                                      belongs to the front-most shape it sees with alpha >= 0.5),
                                      num_layers = the largest k drawn)
  scene_rng(seed, index)             -> the Generator a scene draws from
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image
from scipy import ndimage

TEXTURES = ("photo", "spectral", "grating", "flat", "gradient")
TEXTURE_WEIGHTS = (0.35, 0.3, 0.1, 0.1, 0.15)  # photo crops are replaced by spectral fields when no photo is given
SHAPES = ("disk", "ellipse", "rectangle", "blob")


@dataclasses.dataclass(frozen=True)
class Scene:
    image: np.ndarray  # float32 (H, W, 3) in [0, 1]
    layers: np.ndarray  # int16 (H, W): the shape seen at each pixel (0 = background)
    num_layers: int  # shapes drawn (layers holds values 0..num_layers)


def scene_rng(seed: int, index: int) -> np.random.Generator:
    """The Generator of scene (seed, index): numpy's SeedSequence mixes both (no global state)."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got ({seed}, {index})")
    return np.random.default_rng([int(index), int(seed), 0x1EAF])


def power_law(rng: np.random.Generator, n: int, low: float, high: float, alpha: float) -> np.ndarray:
    """n draws of p(r) ~ r^-alpha on [low, high] (inverse CDF; alpha != 1)."""
    u = rng.uniform(size=n)
    a, b = low ** (1 - alpha), high ** (1 - alpha)
    return (a + u * (b - a)) ** (1 / (1 - alpha))


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """A colour of random lightness and saturation (grey tones included)."""
    grey = rng.uniform(0.05, 0.95)
    tint = rng.normal(0, 0.25, 3) * rng.uniform(0, 1)
    return np.clip(grey + tint, 0, 1).astype(np.float32)


def spectral_field(rng: np.random.Generator, h: int, w: int, beta: float) -> np.ndarray:
    """A zero-mean, unit-std random field of amplitude spectrum ~ 1/f^beta, float32 (h, w)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amplitude = f ** -beta
    amplitude[0, 0] = 0.0
    phase = rng.uniform(0, 2 * np.pi, amplitude.shape)
    field = np.fft.irfft2(amplitude * np.exp(1j * phase), s=(h, w))
    return (field / max(field.std(), 1e-12)).astype(np.float32)


def _spectral_texture(rng, h, w):
    beta = rng.uniform(0.8, 1.6)  # natural images: amplitude ~ 1/f (beta 1), rougher to smoother
    lo, hi = _random_colour(rng), _random_colour(rng)
    t = 1 / (1 + np.exp(-rng.uniform(0.5, 2.5) * spectral_field(rng, h, w, beta)))
    out = lo + (hi - lo) * t[..., None]
    if rng.uniform() < 0.3:  # some colour variation of its own
        out = out + 0.15 * rng.uniform() * spectral_field(rng, h, w, beta)[..., None] * rng.normal(0, 1, 3)
    return out


def _grating_texture(rng, h, w):
    period = power_law(rng, 1, 2.5, 40.0, 1.5)[0]
    angle = rng.uniform(0, np.pi)
    y, x = np.mgrid[:h, :w].astype(np.float32)
    wave = np.sin(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period + rng.uniform(0, 2 * np.pi))
    if rng.uniform() < 0.5:
        wave = np.sign(wave)  # stripes with sharp edges
    lo, hi = _random_colour(rng), _random_colour(rng)
    return lo + (hi - lo) * (0.5 + 0.5 * wave[..., None])


def _gradient_texture(rng, h, w):
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[:h, :w].astype(np.float32)
    t = x * np.cos(angle) + y * np.sin(angle)
    t = (t - t.min()) / max(np.ptp(t), 1e-6)
    lo, hi = _random_colour(rng), _random_colour(rng)
    return lo + (hi - lo) * t[..., None]


def _photo_texture(rng, h, w, photos):
    photo = photos[rng.integers(len(photos))]
    ph, pw = photo.shape[:2]
    scale = math.exp(rng.uniform(math.log(0.25), math.log(1.0)))  # downscaled: finer detail, never blurred up
    ch, cw = min(ph, max(1, round(h / scale))), min(pw, max(1, round(w / scale)))
    y, x = rng.integers(0, ph - ch + 1), rng.integers(0, pw - cw + 1)
    crop = photo[y:y + ch, x:x + cw]
    if (ch, cw) != (h, w):
        crop = np.asarray(Image.fromarray(crop).resize((w, h), Image.BILINEAR, reducing_gap=2.0))
    out = crop.astype(np.float32) / 255.0
    if rng.uniform() < 0.5:
        out = out[:, ::-1]
    if rng.uniform() < 0.3:  # recoloured: a photo's structure in other colours
        out = out[..., rng.permutation(3)]
    return out


def texture(rng: np.random.Generator, h: int, w: int, photos=()) -> np.ndarray:
    """One random fill, float32 (h, w, 3) in [0, 1]. photos: uint8 (H, W, 3) arrays to crop from
    (none: their share goes to 1/f^beta fields)."""
    kind = TEXTURES[rng.choice(len(TEXTURES), p=TEXTURE_WEIGHTS)]
    if kind == "photo" and not len(photos):
        kind = "spectral"
    if kind == "photo":
        out = _photo_texture(rng, h, w, photos)
    elif kind == "spectral":
        out = _spectral_texture(rng, h, w)
    elif kind == "grating":
        out = _grating_texture(rng, h, w)
    elif kind == "gradient":
        out = _gradient_texture(rng, h, w)
    else:
        out = np.broadcast_to(_random_colour(rng), (h, w, 3))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def shape_alpha(rng: np.random.Generator, h: int, w: int, radius: float, edge: float = 1.0,
                kind: str | None = None) -> np.ndarray:
    """Coverage float32 (h, w) of one shape (`kind` in SHAPES, default random) of about `radius` px
    centred in the box, its border a ramp `edge` px wide (1 = hard, anti-aliased)."""
    drawn = SHAPES[rng.integers(len(SHAPES))]
    kind = kind or drawn
    y, x = np.mgrid[:h, :w].astype(np.float32)
    y, x = y - (h - 1) / 2, x - (w - 1) / 2
    angle = rng.uniform(0, np.pi)
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * x + s * y, -s * x + c * y
    aspect = 1.0 if kind in ("disk", "blob") else rng.uniform(0.3, 1.0)
    a, b = radius, radius * aspect
    if kind == "rectangle":
        distance = np.maximum(np.abs(u) - a, np.abs(v) - b)  # (approximate) signed distance
    else:
        r = np.sqrt((u / a) ** 2 + (v / b) ** 2)
        boundary = 1.0
        if kind == "blob":
            theta = np.arctan2(v, u)
            for k in range(2, 5):
                boundary = boundary + rng.uniform(0, 0.25 / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        distance = (r - boundary) * b
    return np.clip(0.5 - distance / edge, 0.0, 1.0).astype(np.float32)


def scene(seed: int, index: int, size: int = 256, photos=(), *, r_min: float | None = None,
          r_max: float | None = None, alpha: float = 3.0, max_shapes: int = 800, coverage: float = 0.99,
          soft_edge_probability: float = 0.3, defocus_probability: float = 0.5,
          noise_std: float = 0.0) -> Scene:
    """The dead-leaves scene (seed, index), size x size (module docstring). Shapes are drawn front to
    back (the exact dead-leaves law) until `coverage` of every pixel is reached or `max_shapes`; the
    background texture shows through the rest. r_min / r_max default to size / 64 and size / 2;
    noise_std > 0 adds Gaussian sensor noise (std on [0, 1]) to the image."""
    rng = scene_rng(seed, index)
    r_min = size / 64 if r_min is None else r_min
    r_max = size / 2 if r_max is None else r_max
    # Shapes behind the focus depth go to a second buffer that is blurred before it is put behind the front.
    depth = rng.integers(3, 60) if rng.uniform() < defocus_probability else max_shapes
    sigma = rng.uniform(0.8, 4.0)
    colour = [np.zeros((size, size, 3), np.float32), np.zeros((size, size, 3), np.float32)]
    cover = [np.zeros((size, size), np.float32), np.zeros((size, size), np.float32)]
    layers = np.zeros((size, size), np.int16)
    radii = power_law(rng, max_shapes, r_min, r_max, alpha)
    count = 0
    for k, radius in enumerate(radii, start=1):
        part = int(k > depth)
        edge = rng.uniform(2.0, 6.0) if rng.uniform() < soft_edge_probability else 1.0
        half = int(math.ceil(1.45 * radius + edge)) + 1
        cy, cx = rng.integers(0, size), rng.integers(0, size)
        y0, y1, x0, x1 = cy - half, cy + half + 1, cx - half, cx + half + 1
        window = (slice(max(0, y0), min(size, y1)), slice(max(0, x0), min(size, x1)))
        seen = (1 - cover[0][window]) * (1 - cover[1][window]) if part else 1 - cover[0][window]
        if seen.max() < 1e-3:  # hidden behind what is already painted
            continue
        count = k
        a = shape_alpha(rng, y1 - y0, x1 - x0, radius, edge)
        fill = texture(rng, y1 - y0, x1 - x0, photos)
        ty0, tx0 = max(0, -y0), max(0, -x0)  # the part of the box inside the image
        ty1, tx1 = (y1 - y0) - max(0, y1 - size), (x1 - x0) - max(0, x1 - size)
        a, fill = a[ty0:ty1, tx0:tx1], fill[ty0:ty1, tx0:tx1]
        weight = (1 - cover[part][window]) * a  # front to back: what is still visible of this shape
        colour[part][window] += weight[..., None] * fill
        cover[part][window] += weight
        layers[window] = np.where((layers[window] == 0) & (seen * a >= 0.5), k, layers[window])
        if k % 16 == 0 and (1 - (1 - cover[0]) * (1 - cover[1])).min() >= coverage:
            break
    background = texture(rng, size, size, photos)
    back = colour[1] + (1 - cover[1])[..., None] * background  # the defocused part and the background
    if depth < max_shapes:
        back = ndimage.gaussian_filter(back, (sigma, sigma, 0), mode="reflect")
    image = colour[0] + (1 - cover[0])[..., None] * back
    if noise_std > 0:
        image = image + rng.normal(0.0, noise_std, image.shape)
    return Scene(np.clip(image, 0.0, 1.0).astype(np.float32), layers, count)


def scene_uint8(seed: int, index: int, size: int = 256, photos=(), **options) -> np.ndarray:
    """scene(...).image as uint8 (size, size, 3) (rounded)."""
    return np.round(scene(seed, index, size, photos, **options).image * 255.0).astype(np.uint8)
