"""Semi-supervised adversarial segmentation losses (Hung et al., BMVC 2018).

A fully convolutional D scores every pixel of a class-probability map: its logits, upsampled
(bilinear) to the image size when D's output is coarser, pass a sigmoid to give the confidence map
C in (0, 1) that the prediction at a pixel looks like ground truth. On an unlabelled image G gets
- the adversarial loss of its prediction (the caller's adversarial g_loss), and
- a self-training cross-entropy against pseudo-labels y_hat = argmax of G's prediction (logit > 0
  for one sigmoid channel), on the pixels where C > threshold only:
      L_semi = sum_p M_p * CE(logits_p, y_hat_p) / max(sum_p M_p, 1),   M_p = [C_p > threshold].
The mask and the pseudo-labels are constants (no gradient flows through them or through D).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxgan.nets.outputs import logits_to_labels


def confidence_map(d_logits: jax.Array, height: int, width: int) -> jax.Array:
    """D's per-pixel logits (B, h, w, 1) -> confidence (B, height, width) in (0, 1)."""
    if d_logits.ndim != 4 or d_logits.shape[-1] != 1:
        raise ValueError(f"semi-supervised D must give one logit map (B, h, w, 1), got {d_logits.shape}")
    logits = d_logits.astype(jnp.float32)
    if logits.shape[1:3] != (height, width):
        logits = jax.image.resize(logits, (logits.shape[0], height, width, 1), "linear")
    return jax.nn.sigmoid(logits[..., 0])


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
    mask = (confidence > threshold).astype(jnp.float32)
    labels = jax.lax.stop_gradient(pseudo_labels(logits))
    ce = pixel_cross_entropy(logits, labels)
    loss = jnp.sum(mask * ce) / jnp.maximum(jnp.sum(mask), 1.0)
    return loss, jnp.mean(mask)
