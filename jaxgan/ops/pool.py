"""2x2 max pool with stride 2 (VALID: an odd last row / column is dropped), NHWC."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxgan.ops import dispatch


def max_pool_2x2_lax(x: jax.Array) -> jax.Array:
    """`lax.reduce_window` max, as `flax.linen.max_pool(x, (2, 2), strides=(2, 2))`."""
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def max_pool_2x2_reshape(x: jax.Array) -> jax.Array:
    """The same values as a max over a reshape, whose gradient is elementwise (on XLA CPU the
    reduce_window gradient is a select-and-scatter that materialises index arrays). Tied maxima
    share the gradient (reduce_window gives it to one); after a ReLU, ties are all-zero windows."""
    b, h, w, c = x.shape
    x = x[:, : h - h % 2, : w - w % 2]
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def max_pool_2x2(x: jax.Array, *, impl: str | None = None) -> jax.Array:
    """2x2 / stride-2 max pool; `impl`: see `jaxgan.ops.dispatch`."""
    if dispatch.resolve(impl) in ("xla", "tflite"):
        return max_pool_2x2_lax(x)
    return max_pool_2x2_reshape(x)
