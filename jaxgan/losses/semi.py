"""Semi-supervised adversarial segmentation losses (Hung et al., BMVC 2018).

A fully convolutional D scores every pixel of a class-probability map: its logits, upsampled
bilinearly with the corners aligned (AdvSemiSeg train.py:295-300, `nn.Upsample(...,
align_corners=True)`) to the image size when D's output is coarser, pass a sigmoid to give the
confidence map C in (0, 1) that the prediction at a pixel looks like ground truth. On an unlabelled
image G gets
- the adversarial loss of its prediction (the caller's adversarial g_loss), and
- a self-training cross-entropy against pseudo-labels y_hat = argmax of G's prediction (logit > 0
  for one sigmoid channel), on the pixels where C >= threshold only (train.py:361-364 ignores
  C < mask_T):
      L_semi = sum_p M_p * CE(logits_p, y_hat_p) / max(sum_p M_p, 1),   M_p = [C_p >= threshold].
The mask and the pseudo-labels are constants (no gradient flows through them or through D).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgan.nets.outputs import logits_to_labels


def _aligned_weights(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) linear-interpolation weights with the corner samples aligned: output i
    samples input i (size_in - 1) / (size_out - 1), as PyTorch's align_corners=True."""
    scale = (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
    src = np.arange(size_out) * scale
    low = np.minimum(np.floor(src).astype(int), size_in - 1)
    high = np.minimum(low + 1, size_in - 1)
    frac = src - low
    weights = np.zeros((size_out, size_in))
    np.add.at(weights, (np.arange(size_out), low), 1.0 - frac)
    np.add.at(weights, (np.arange(size_out), high), frac)
    return weights.astype(np.float32)


def resize_aligned(x: jax.Array, height: int, width: int) -> jax.Array:
    """(B, h, w, C) -> (B, height, width, C), bilinear with the corners aligned (train.py's interp,
    `nn.Upsample(mode='bilinear', align_corners=True)`); float32, separable, exact matmuls."""
    x = x.astype(jnp.float32)
    if x.shape[1:3] == (height, width):
        return x
    rows, cols = _aligned_weights(x.shape[1], height), _aligned_weights(x.shape[2], width)
    highest = jax.lax.Precision.HIGHEST
    x = jnp.einsum("oh,bhwc->bowc", rows, x, precision=highest)
    return jnp.einsum("ow,bhwc->bhoc", cols, x, precision=highest)


def confidence_map(d_logits: jax.Array, height: int, width: int) -> jax.Array:
    """D's per-pixel logits (B, h, w, 1) -> confidence (B, height, width) in (0, 1)."""
    if d_logits.ndim != 4 or d_logits.shape[-1] != 1:
        raise ValueError(f"semi-supervised D must give one logit map (B, h, w, 1), got {d_logits.shape}")
    return jax.nn.sigmoid(resize_aligned(d_logits, height, width)[..., 0])


def pseudo_labels(logits: jax.Array) -> jax.Array:
    """G's logits (B, H, W, C) -> int32 (B, H, W): argmax, or logit > 0 for one channel."""
    return logits_to_labels(logits)


def pixel_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Per-pixel CE (B, H, W): sigmoid CE for one channel, softmax CE for C channels."""
    logits = logits.astype(jnp.float32)
    if logits.shape[-1] == 1:
        return optax.sigmoid_binary_cross_entropy(logits[..., 0], labels.astype(jnp.float32))
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def self_training_loss(logits: jax.Array, d_logits: jax.Array, threshold: float) -> tuple[jax.Array, jax.Array]:
    """(L_semi, fraction of pixels selected) for G's logits (B, H, W, C) on unlabelled images and D's
    logits (B, h, w, 1) on their probability maps; see the module docstring."""
    height, width = logits.shape[1:3]
    confidence = jax.lax.stop_gradient(confidence_map(d_logits, height, width))
    mask = (confidence >= threshold).astype(jnp.float32)
    labels = jax.lax.stop_gradient(pseudo_labels(logits))
    ce = pixel_cross_entropy(logits, labels)
    loss = jnp.sum(mask * ce) / jnp.maximum(jnp.sum(mask), 1.0)
    return loss, jnp.mean(mask)
