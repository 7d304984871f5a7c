"""Pixel losses (image -> image) and mask losses (image -> class mask). Scalar outputs.

Pixel losses, `get_pixel_loss(name)(pred, target)`, both arrays of one shape, mean over all elements:

    l1           E |p - t|
    l2           E (p - t)^2
    charbonnier  E sqrt((p - t)^2 + eps^2),  eps = 1e-3   (smooth L1, Lai et al. 2017)

Mask losses, `get_mask_loss(name)(logits, labels)`: logits float (B, H, W, C), labels int (B, H, W)
with values in [0, C) (C = 1 means binary: label 1 = foreground, logit = its log-odds):

    sigmoid_ce   C must be 1. E over pixels of optax.sigmoid_binary_cross_entropy
    softmax_ce   C >= 2.  E over pixels of optax.softmax_cross_entropy_with_integer_labels
    dice         soft Dice loss, optax.losses.dice_loss (smooth 1): per image and class
                 1 - (sum p*y + 1) / ((sum p + sum y) / 2 + 1) over the pixels, mean over classes
                 (C = 1: the foreground only, p = sigmoid; C >= 2: p = softmax, y = one-hot),
                 then mean over the batch
    ce_dice      (sigmoid_ce if C == 1 else softmax_ce) + dice
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

CHARBONNIER_EPS = 1e-3


def _check_same_shape(name: str, pred: jax.Array, target: jax.Array) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{name} loss: pred {pred.shape} and target {target.shape} must have one shape")


def l1_loss(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean absolute error over all elements."""
    _check_same_shape("l1", pred, target)
    return jnp.mean(jnp.abs(pred.astype(jnp.float32) - target.astype(jnp.float32)))


def l2_loss(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean squared error over all elements."""
    _check_same_shape("l2", pred, target)
    return jnp.mean(jnp.square(pred.astype(jnp.float32) - target.astype(jnp.float32)))


def charbonnier_loss(pred: jax.Array, target: jax.Array, eps: float = CHARBONNIER_EPS) -> jax.Array:
    """Mean of sqrt((pred - target)^2 + eps^2) over all elements."""
    _check_same_shape("charbonnier", pred, target)
    diff = pred.astype(jnp.float32) - target.astype(jnp.float32)
    return jnp.mean(jnp.sqrt(jnp.square(diff) + eps * eps))


_PIXEL_LOSSES = {"l1": l1_loss, "l2": l2_loss, "charbonnier": charbonnier_loss}
PIXEL_LOSSES = tuple(_PIXEL_LOSSES)


def get_pixel_loss(name: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The pixel loss `name` (l1 | l2 | charbonnier) as `(pred, target) -> scalar`."""
    if name not in _PIXEL_LOSSES:
        raise ValueError(f"unknown pixel loss {name!r}; valid names: {PIXEL_LOSSES}")
    return _PIXEL_LOSSES[name]


# ---- mask losses ------------------------------------------------------------------------------

def _check_mask_inputs(name: str, logits: jax.Array, labels: jax.Array) -> None:
    if logits.ndim != 4:
        raise ValueError(f"{name} loss: logits must be (B, H, W, C), got shape {logits.shape}")
    if labels.shape != logits.shape[:3]:
        raise ValueError(
            f"{name} loss: labels must be (B, H, W) = {logits.shape[:3]} to match logits "
            f"{logits.shape}, got shape {labels.shape}")
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ValueError(f"{name} loss: labels must be integer class indices, got dtype {labels.dtype}")


def sigmoid_ce_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Binary cross-entropy from logits (B, H, W, 1) and int labels (B, H, W) in {0, 1}."""
    _check_mask_inputs("sigmoid_ce", logits, labels)
    if logits.shape[-1] != 1:
        raise ValueError(
            f"sigmoid_ce loss: logits must have 1 channel (binary), got {logits.shape[-1]}; "
            "use softmax_ce for C >= 2 classes")
    per_pixel = optax.sigmoid_binary_cross_entropy(
        logits[..., 0].astype(jnp.float32), labels.astype(jnp.float32))
    return jnp.mean(per_pixel)


def softmax_ce_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Categorical cross-entropy from logits (B, H, W, C >= 2) and int labels (B, H, W) in [0, C)."""
    _check_mask_inputs("softmax_ce", logits, labels)
    if logits.shape[-1] < 2:
        raise ValueError(
            f"softmax_ce loss: logits must have C >= 2 channels, got {logits.shape[-1]}; "
            "use sigmoid_ce for one-channel binary logits")
    per_pixel = optax.softmax_cross_entropy_with_integer_labels(
        logits.astype(jnp.float32), labels.astype(jnp.int32))
    return jnp.mean(per_pixel)


def dice_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Soft Dice loss (see module docstring); sigmoid for C == 1, softmax for C >= 2."""
    _check_mask_inputs("dice", logits, labels)
    num_channels = logits.shape[-1]
    if num_channels == 1:
        targets = labels[..., None].astype(jnp.float32)
    else:
        targets = jax.nn.one_hot(labels, num_channels, dtype=jnp.float32)
    per_image = optax.losses.dice_loss(logits.astype(jnp.float32), targets, smooth=1.0)
    return jnp.mean(per_image)


def ce_dice_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Cross-entropy (sigmoid for C == 1, softmax for C >= 2) plus soft Dice loss."""
    cross_entropy = sigmoid_ce_loss if logits.shape[-1] == 1 else softmax_ce_loss
    return cross_entropy(logits, labels) + dice_loss(logits, labels)


_MASK_LOSSES = {
    "sigmoid_ce": sigmoid_ce_loss,
    "softmax_ce": softmax_ce_loss,
    "dice": dice_loss,
    "ce_dice": ce_dice_loss,
}
MASK_LOSSES = tuple(_MASK_LOSSES)


def get_mask_loss(name: str) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """The mask loss `name` (sigmoid_ce | softmax_ce | dice | ce_dice) as `(logits, labels) -> scalar`."""
    if name not in _MASK_LOSSES:
        raise ValueError(f"unknown mask loss {name!r}; valid names: {MASK_LOSSES}")
    return _MASK_LOSSES[name]
