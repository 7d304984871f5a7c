"""A second, independent camera-shake generator, for held-out evaluation only (never for training).

jaxgan's training blur (jaxgan.data.blur) follows Boracchi & Foi's random-acceleration trajectories
splatted bilinearly. This one shares none of that code: the image-plane velocity of a hand-held camera
is a slow drift plus physiological tremor, a sum of three sinusoids per axis at 2-12 Hz with random
amplitudes and phases, over an exposure of 1/60 to 1/4 s; the path (its integral, 4000 samples) is
rasterised with a Gaussian footprint (sigma 0.5 px) and scaled so its support spans about 5-25 px, the range
the front end estimates. Every kernel is a pure function of (seed, index).

`degrade(seed, index, sharp)` returns the blurred photo: the full image convolved with the kernel
(symmetric borders), Gaussian read noise of std 0-0.01 and 8-bit rounding.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

EXTENT = (4.0, 23.0)  # path span; the Gaussian footprint adds about 2 px of support
NUM_SAMPLES = 4000


def tremor_path(rng: np.random.Generator) -> np.ndarray:
    """Positions (NUM_SAMPLES, 2) of the image under drift + tremor during one exposure (arbitrary units)."""
    exposure = np.exp(rng.uniform(np.log(1 / 60), np.log(1 / 4)))
    t = np.linspace(0.0, exposure, NUM_SAMPLES)
    velocity = np.zeros((NUM_SAMPLES, 2))
    for axis in range(2):
        velocity[:, axis] = rng.normal(0.0, 1.0)  # drift
        for _ in range(3):
            f = rng.uniform(2.0, 12.0)
            velocity[:, axis] += rng.exponential(2.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    dt = t[1] - t[0]
    return np.cumsum(velocity, axis=0) * dt


def rasterise(path: np.ndarray, extent: float, sigma: float = 0.5) -> np.ndarray:
    """The path scaled to span `extent` px, each sample a Gaussian footprint, summed on an odd square
    grid centred on the path's mean; float64, sums to 1."""
    path = path - path.mean(axis=0)
    span = max(np.ptp(path[:, 0]), np.ptp(path[:, 1]), 1e-12)
    path = path * (extent - 1.0) / span
    radius = int(np.ceil(np.abs(path).max() + 3 * sigma))
    grid = np.arange(-radius, radius + 1, dtype=np.float64)
    wy = np.exp(-0.5 * ((grid[None, :] - path[:, 1:2]) / sigma) ** 2)  # (samples, rows)
    wx = np.exp(-0.5 * ((grid[None, :] - path[:, 0:1]) / sigma) ** 2)  # (samples, cols)
    kernel = wy.T @ wx
    kernel[kernel < 1e-3 * kernel.max()] = 0.0
    return kernel / kernel.sum()


def kernel_at(seed: int, index: int) -> np.ndarray:
    """The tremor kernel number `index` of stream `seed` (odd square, non-negative, sums to 1)."""
    rng = np.random.default_rng([int(seed), int(index), 0x7E30])
    path = tremor_path(rng)
    return rasterise(path, rng.uniform(*EXTENT))


def degrade(seed: int, index: int, sharp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(blurred uint8 (H, W, 3), kernel) of a uint8 (H, W, 3) photo: kernel_at(seed, index), symmetric
    borders, Gaussian read noise (std uniform in [0, 0.01]) and 8-bit rounding."""
    kernel = kernel_at(seed, index)
    rng = np.random.default_rng([int(seed), int(index), 0x7E31])
    r = kernel.shape[0] // 2
    image = np.pad(sharp.astype(np.float64) / 255.0, ((r, r), (r, r), (0, 0)), mode="symmetric")
    blurred = np.stack([signal.fftconvolve(image[..., c], kernel, mode="valid") for c in range(3)], -1)
    blurred = blurred + rng.uniform(0.0, 0.01) * rng.standard_normal(blurred.shape)
    return np.clip(np.round(blurred * 255.0), 0, 255).astype(np.uint8), kernel
