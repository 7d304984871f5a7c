"""Blur synthesis in numpy: camera-shake, defocus and linear-motion kernels, and applying them.

Camera shake follows the random-trajectory model of Boracchi & Foi (2012), the model DeblurGAN uses to
make its synthetic training blur: a particle moves on a 64x64 canvas for 2000 steps of constant length
(total length 60); at every step its velocity gets a Gaussian kick, a pull back toward the origin
(centripetal inertia) and, rarely, an abrupt near-reversal (a "big shake"). The strength of each of the
three perturbations is drawn once per kernel. The exploration parameter scales all perturbations.
The point-spread function of an exposure of fraction f of the trajectory time (1/100, 1/10, 1/2, 1)
is the bilinear splat of the first f of the trajectory's samples.

Differences from DeblurGAN's reference script (on purpose):
- the PSF is normalised to sum 1 (a blur preserves mean brightness), never min-max stretched;
- the PSF is centred on its centroid (blurred and sharp images stay aligned) and scaled so its support
  spans a requested number of pixels (`min_extent`..`max_extent`), trimmed to an odd-sized square;
- every random number comes from one `np.random.Generator`, so a seed fixes the kernel.

All kernels are float64 (k, k) arrays, k odd, non-negative, summing to 1. Images are float arrays in
[0, 1], (H, W) or (H, W, C); `blur_image` keeps the size (reflect padding, FFT convolution per channel).
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image
from scipy import signal

EXPOSURES = (1 / 100, 1 / 10, 1 / 2, 1.0)

# Support extent in pixels (min, max) of the synthetic kernels, per `config.data.blur_strength`.
BLUR_PRESETS = {"mild": (3, 11), "realistic": (5, 25), "strong": (11, 41)}


def camera_shake_trajectory(rng: np.random.Generator, *, num_steps: int = 2000, max_length: float = 60.0,
                            exploration: float | None = None) -> np.ndarray:
    """A random camera-shake path: complex (num_steps,) positions starting at 0, step length
    max_length / (num_steps - 1). exploration defaults to a uniform draw in [0.005, 0.01]."""
    if exploration is None:
        exploration = rng.uniform(0.005, 0.01)
    centripetal = 0.7 * rng.uniform()
    big_shake_probability = 0.2 * rng.uniform()
    gaussian_shake = 10.0 * rng.uniform()
    angle = 2 * np.pi * rng.uniform()
    step = max_length / (num_steps - 1)
    # All random draws up front (vectorised); only the velocity recursion stays a Python loop.
    kicks = (rng.standard_normal(num_steps - 1) + 1j * rng.standard_normal(num_steps - 1)).tolist()
    big_shakes = (rng.uniform(size=num_steps - 1) < big_shake_probability * exploration).tolist()
    turns = np.exp(1j * (np.pi + rng.uniform(size=num_steps - 1) - 0.5)).tolist()
    gain = exploration * step
    velocity = complex(math.cos(angle), math.sin(angle)) * (exploration if exploration > 0 else step)
    position = 0j
    path = [0j] * num_steps
    for t in range(num_steps - 1):
        dv = gain * (gaussian_shake * kicks[t] - centripetal * position)
        if big_shakes[t]:
            dv += 2 * velocity * turns[t]
        velocity += dv
        velocity *= step / abs(velocity)
        position += velocity
        path[t + 1] = position
    return np.asarray(path, np.complex128)


def exposure_weights(num_steps: int, fraction: float) -> np.ndarray:
    """Weight of each trajectory sample within an exposure of `fraction` of the path time: 1 for the
    samples fully inside, fractional for the last one, 0 after. Shape (num_steps,)."""
    return np.clip(fraction * num_steps - np.arange(num_steps), 0.0, 1.0)


def splat(points: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """Bilinear splat of complex points (x = real = column, y = imag = row) onto a (size, size) grid."""
    x, y = points.real, points.imag
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    grid = np.zeros(size * size)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            rows, cols = np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)
            grid += np.bincount(rows * size + cols, weights * wy * wx, minlength=size * size)
    return grid.reshape(size, size)


def trim_kernel(kernel: np.ndarray) -> np.ndarray:
    """Removes all-zero outer rings while keeping the kernel square, odd and centred."""
    k = kernel
    while k.shape[0] > 1 and not (k[0].any() or k[-1].any() or k[:, 0].any() or k[:, -1].any()):
        k = k[1:-1, 1:-1]
    return k


def kernel_extent(kernel: np.ndarray) -> int:
    """Largest side (pixels) of the bounding box of the kernel's non-zero support."""
    rows, cols = np.nonzero(kernel)
    return int(max(rows.max() - rows.min(), cols.max() - cols.min()) + 1)


def kernel_from_points(points: np.ndarray, weights: np.ndarray, extent: float) -> np.ndarray:
    """Splats weighted points, centred on their centroid and scaled so their support spans about
    `extent` pixels (within [extent - 2, extent]); returns a normalised, trimmed odd kernel."""
    keep = weights > 0
    points, weights = points[keep], weights[keep]
    centroid = np.sum(points * weights) / np.sum(weights)
    span = max(np.ptp(points.real), np.ptp(points.imag))
    scale = (extent - 3.0) / span if span > 1e-9 else 0.0
    size = 2 * math.ceil(extent) + 3
    centre = (size - 1) / 2
    grid = splat((points - centroid) * scale + complex(centre, centre), weights, size)
    grid = np.where(grid > 1e-12 * grid.max(), grid, 0.0)
    return trim_kernel(grid / grid.sum())


def camera_shake_kernel(rng: np.random.Generator, min_extent: int = 5, max_extent: int = 25,
                        exposure: float | None = None) -> np.ndarray:
    """A random camera-shake PSF whose support spans min_extent..max_extent pixels.

    exposure: fraction of the trajectory time (default: one of EXPOSURES, uniformly)."""
    if min_extent < 2 or max_extent < min_extent + 2:
        raise ValueError(f"kernel extent range ({min_extent}, {max_extent}): need 2 <= min and min + 2 <= max")
    path = camera_shake_trajectory(rng)
    if exposure is None:
        exposure = EXPOSURES[rng.integers(len(EXPOSURES))]
    extent = rng.uniform(min_extent + 2, max_extent)
    return kernel_from_points(path, exposure_weights(len(path), exposure), extent)


def linear_motion_kernel(length: float, angle_degrees: float) -> np.ndarray:
    """Uniform straight motion of `length` pixels at the given angle (0 = horizontal)."""
    t = np.linspace(-0.5, 0.5, max(2, int(math.ceil(length * 4))))
    direction = complex(math.cos(math.radians(angle_degrees)), math.sin(math.radians(angle_degrees)))
    return kernel_from_points(t * direction, np.ones_like(t), max(length, 1e-3) + 3.0)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Isotropic Gaussian defocus blur, size 2 * ceil(3 sigma) + 1."""
    radius = max(1, math.ceil(3 * sigma))
    r = np.arange(-radius, radius + 1)
    g = np.exp(-0.5 * (r / max(sigma, 1e-6)) ** 2)
    k = np.outer(g, g)
    return k / k.sum()


def random_kernel(rng: np.random.Generator, kind: str = "camera_shake", min_extent: int = 5,
                  max_extent: int = 25) -> np.ndarray:
    """A random kernel of one kind: camera_shake | linear | gaussian, sized within the extent range."""
    if kind == "camera_shake":
        return camera_shake_kernel(rng, min_extent, max_extent)
    if kind == "linear":
        return linear_motion_kernel(rng.uniform(min_extent, max_extent) - 2, rng.uniform(0, 180))
    if kind == "gaussian":
        return gaussian_kernel(rng.uniform(min_extent, max_extent) / 6)
    raise ValueError(f"unknown blur kind {kind!r}; valid: camera_shake, linear, gaussian")


def blur_image(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolves each channel with an odd-sized kernel; same size, reflect-padded borders.

    image: float (H, W) or (H, W, C). Returns the same shape, float32 for float32 input else float64."""
    kh, kw = kernel.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"kernel shape {kernel.shape}: both sides must be odd")
    dtype = np.float32 if np.asarray(image).dtype == np.float32 else np.float64
    image, kernel = np.asarray(image, dtype), np.asarray(kernel, dtype)
    squeeze = image.ndim == 2
    if squeeze:
        image = image[..., None]
    padded = np.pad(image, ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)), mode="reflect")
    out = signal.fftconvolve(padded, kernel[:, :, None], mode="valid", axes=(0, 1))
    return out[..., 0] if squeeze else out


def add_sensor_noise(rng: np.random.Generator, image: np.ndarray, std: float) -> np.ndarray:
    """Additive Gaussian noise of standard deviation `std` on a [0, 1] image, clipped to [0, 1]."""
    return np.clip(image + rng.normal(0.0, std, image.shape), 0.0, 1.0)


def jpeg_compress(image: np.ndarray, quality: int) -> np.ndarray:
    """Round-trips a uint8 (H, W, 3) image through JPEG at the given quality (1..95)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"))


def synthesize_blur(rng: np.random.Generator, sharp: np.ndarray, strength: str = "realistic", *,
                    kind: str = "camera_shake", noise_std: float = 0.0,
                    jpeg_quality: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Blurs a uint8 (H, W, 3) sharp image with a random kernel of a BLUR_PRESETS strength.

    Optional sensor noise (std on the [0, 1] scale) and JPEG compression (quality > 0).
    Returns (blurred uint8 (H, W, 3), kernel float32 (k, k))."""
    if strength not in BLUR_PRESETS:
        raise ValueError(f"unknown blur strength {strength!r}; valid: {', '.join(BLUR_PRESETS)}")
    kernel = random_kernel(rng, kind, *BLUR_PRESETS[strength])
    blurred = blur_image(sharp.astype(np.float32) / np.float32(255.0), kernel)
    if noise_std > 0:
        blurred = add_sensor_noise(rng, blurred, noise_std)
    blurred = np.clip(np.round(blurred * 255.0), 0, 255).astype(np.uint8)
    if jpeg_quality > 0:
        blurred = jpeg_compress(blurred, jpeg_quality)
    return blurred, kernel.astype(np.float32)


# ---- a camera: the degradation the deblurring training data follows ------------------------------
# Kernel kinds and their shares: camera shake (Boracchi & Foi trajectories, every exposure, extent drawn
# log-uniformly so short and long shakes are equally common per octave), defocus (a pillbox), both at
# once, and nearly sharp; then per image Poisson-Gaussian sensor noise after the blur, 8-bit rounding
# and sometimes JPEG.
CAMERA_KERNEL_KINDS = {"shake": 0.75, "defocus": 0.08, "shake_defocus": 0.12, "sharp": 0.05}
CAMERA_EXTENT = (4, 27)  # shake support in px; the front end estimates kernels up to 31 px
CAMERA_NOISE_PROBABILITY = 0.8
CAMERA_JPEG_PROBABILITY = 0.25


def defocus_kernel(radius: float, supersample: int = 8) -> np.ndarray:
    """An anti-aliased pillbox (uniform disk) of `radius` px: the defocus PSF of a circular aperture."""
    half = int(math.ceil(radius)) + 1
    t = (np.arange(-half * supersample, (half + 1) * supersample) + 0.5) / supersample - 0.5
    inside = (t[:, None] ** 2 + t[None, :] ** 2 <= max(radius, 0.5) ** 2).astype(np.float64)
    n = 2 * half + 1
    k = inside[:n * supersample, :n * supersample].reshape(n, supersample, n, supersample).sum((1, 3))
    return trim_kernel(k / k.sum())


def combine_kernels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The kernel of blurring by `a` then `b` (full convolution: odd sizes add up minus one)."""
    k = signal.convolve2d(a, b, mode="full")
    k = np.maximum(k, 0.0)
    return trim_kernel(k / k.sum())


def camera_kernel(rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A random kernel of a hand-held camera (CAMERA_KERNEL_KINDS). Returns (kernel float64, kind)."""
    kinds = list(CAMERA_KERNEL_KINDS)
    kind = kinds[rng.choice(len(kinds), p=list(CAMERA_KERNEL_KINDS.values()))]
    lo, hi = CAMERA_EXTENT
    if kind == "sharp":
        return gaussian_kernel(rng.uniform(0.3, 0.7)), kind
    if kind == "defocus":
        return defocus_kernel(rng.uniform(1.0, 5.0)), kind
    extent = math.exp(rng.uniform(math.log(lo + 2), math.log(hi)))
    path = camera_shake_trajectory(rng)
    exposure = EXPOSURES[rng.integers(len(EXPOSURES))]
    shake = kernel_from_points(path, exposure_weights(len(path), exposure), extent)
    if kind == "shake_defocus":
        return combine_kernels(shake, defocus_kernel(rng.uniform(0.5, 2.0))), kind
    return shake, kind


def camera_kernel_at(seed: int, index: int) -> tuple[np.ndarray, str]:
    """camera_kernel of example `index` of stream `seed`: a pure function of both."""
    return camera_kernel(np.random.default_rng([int(index), int(seed), 0xB1E2]))


def sensor_noise(rng: np.random.Generator, image: np.ndarray, shot: float, read: float) -> np.ndarray:
    """Poisson-Gaussian noise (Gaussian approximation): variance shot * x + read^2 at intensity x in
    [0, 1]; clipped to [0, 1]."""
    std = np.sqrt(shot * np.clip(image, 0.0, 1.0) + read ** 2)
    return np.clip(image + std * rng.standard_normal(image.shape), 0.0, 1.0)


def camera_degrade(rng: np.random.Generator, sharp: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """What the camera records of a uint8 (H, W, 3) scene blurred by `kernel`: the blur, then sensor
    noise (probability CAMERA_NOISE_PROBABILITY; shot gain log-uniform in [1e-5, 1e-3], read std
    uniform in [0, 0.01]), 8-bit rounding and JPEG (probability CAMERA_JPEG_PROBABILITY, quality 70-95).
    Returns uint8 (H, W, 3)."""
    blurred = blur_image(sharp.astype(np.float32) / np.float32(255.0), kernel)
    if rng.uniform() < CAMERA_NOISE_PROBABILITY:
        blurred = sensor_noise(rng, blurred, math.exp(rng.uniform(math.log(1e-5), math.log(1e-3))),
                               rng.uniform(0.0, 0.01))
    out = np.clip(np.round(blurred * 255.0), 0, 255).astype(np.uint8)
    if rng.uniform() < CAMERA_JPEG_PROBABILITY:
        out = jpeg_compress(out, int(rng.integers(70, 96)))
    return out
