"""What a generator's raw output means: logits -> class labels, and probabilities as an image.

A segmentation G ends in logits: one channel (sigmoid, binary) or C channels (softmax). Its labels
are logit > 0 or the argmax; as an image in [-1, 1] (what D judges, what a multi-stage G refines)
its probabilities are scaled by 2 p - 1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def logits_to_labels(logits: jax.Array) -> jax.Array:
    """(..., 1) sigmoid logits -> {0, 1}; (..., C) -> argmax; int32 (...) (numpy in, jax array out)."""
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).astype(jnp.int32)
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)


def probabilities(logits: jax.Array) -> jax.Array:
    """(..., 1) sigmoid or (..., C) softmax logits -> probabilities in [0, 1]."""
    if logits.shape[-1] == 1:
        return jax.nn.sigmoid(logits)
    return jax.nn.softmax(logits, axis=-1)


def probabilities_image(logits: jax.Array) -> jax.Array:
    """(..., 1) sigmoid or (..., C) softmax logits -> probabilities scaled to [-1, 1] (2 p - 1)."""
    return 2.0 * probabilities(logits) - 1.0
