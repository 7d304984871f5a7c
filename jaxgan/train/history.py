"""Image history buffer for discriminator updates (the "image pool" of pix2pix / CycleGAN,
Shrivastava et al. 2017), as a pure function of its state.

The pool holds up to `size` earlier D inputs of fakes (for a conditional D: concat(condition,
fake), so a stored fake keeps its own condition). `query(pool, images, key)` goes through the batch
in order, image by image, exactly as pix2pix's ImagePool.query:
- while the pool is not full (count < size): the image is stored at slot `count` and returned;
- once full: with probability 1/2 a uniformly drawn slot's stored image is returned and the new
  image takes its place; otherwise the new image is returned and the pool is unchanged.
Every returned image therefore is either the new one or one that was in the pool.

The pool is a dict {'images': float32 (size, H, W, C), 'count': int32 ()} kept in the GANState
(field `pool`), so checkpoints save it and a resumed run continues with the same history.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def init_pool(size: int, image_shape) -> dict:
    """An empty pool of `size` images of shape image_shape = (H, W, C)."""
    if size < 1:
        raise ValueError(f"variants.history_size must be >= 1 for a pool, got {size}")
    return {"images": jnp.zeros((int(size),) + tuple(image_shape), jnp.float32),
            "count": jnp.zeros((), jnp.int32)}


def query(pool: dict, images: jax.Array, key: jax.Array) -> tuple[dict, jax.Array]:
    """(new pool, images for D) for a batch `images` (B, H, W, C); see the module docstring."""
    size = pool["images"].shape[0]
    if images.shape[1:] != pool["images"].shape[1:]:
        raise ValueError(f"image pool holds images of shape {pool['images'].shape[1:]}, got a batch "
                         f"of shape {images.shape}")

    def one(carry, inputs):
        stored, count = carry
        image, image_key = inputs
        swap_key, slot_key = jax.random.split(image_key)
        filling = count < size
        swap = jax.random.uniform(swap_key) < 0.5
        slot = jnp.where(filling, jnp.minimum(count, size - 1), jax.random.randint(slot_key, (), 0, size))
        old = stored[slot]
        write = filling | swap
        returned = jnp.where(filling | ~swap, image, old)
        stored = stored.at[slot].set(jnp.where(write, image, old))
        return (stored, count + filling.astype(jnp.int32)), returned

    keys = jax.random.split(key, images.shape[0])
    (stored, count), out = jax.lax.scan(one, (pool["images"], pool["count"]),
                                        (images.astype(jnp.float32), keys))
    return {"images": stored, "count": count}, out


def resize_pool(pool: dict, size: int) -> dict:
    """The pool with its images resized to size x size (progressive resolution switches)."""
    images = np.asarray(pool["images"])
    n, _, _, c = images.shape
    resized = jax.image.resize(images, (n, size, size, c), "linear", antialias=True)
    return {"images": resized, "count": pool["count"]}
