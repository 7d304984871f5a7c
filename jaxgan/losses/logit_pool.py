"""The pool of recent discriminator outputs whose means centre DeblurGAN-v2's relativistic losses.

VITA-Group/DeblurGANv2 models/losses.py (RelativisticDiscLoss :132-172, RelativisticDiscLossLS
:175-215) keeps two ImagePool(50) (util/image_pool.py), one of D's outputs on reals, one on fakes.
D's loss first adds the current outputs (`add` iterates over the batch and stores `images.data`:
detached, one entry per sample, first in first out, at most 50), then subtracts
`torch.mean(pool.query())`; `query` returns every stored entry (its random.sample branch needs more
than 50 entries, which `add` never keeps). G's loss queries the same pools without adding. With
the double-scale D each D has its own pools (adversarial_trainer.py DoubleGAN deep-copies the
criterion).

Every stored output map of one D has one size, so the mean over the concatenated pool is the mean
of the per-sample means; the pool here keeps those: a dict {'real': (L, size), 'fake': (L, size),
'count': int32} for L output arrays of D (1 for a single D, 2 for the double-scale one), newest
entry last. It lives in the GANState (`logit_pool`), so checkpoints save it and a resumed run
continues with the same means.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

DEBLURGANV2_POOL_SIZE = 50  # models/losses.py:183-184 ImagePool(50)


def init(num_outputs: int, size: int = DEBLURGANV2_POOL_SIZE) -> dict:
    """An empty pool for a D with `num_outputs` output arrays, `size` samples each."""
    if size < 1 or num_outputs < 1:
        raise ValueError(f"logit pool: size and num_outputs must be >= 1, got {size}, {num_outputs}")
    zeros = jnp.zeros((int(num_outputs), int(size)), jnp.float32)
    return {"real": zeros, "fake": zeros, "count": jnp.zeros((), jnp.int32)}


def _per_sample_means(logits) -> jax.Array:
    """(L, B): the mean of each sample's output map, per output array, detached."""
    leaves = jax.tree_util.tree_leaves(logits)
    means = [jnp.mean(leaf.astype(jnp.float32).reshape(leaf.shape[0], -1), axis=1) for leaf in leaves]
    return jax.lax.stop_gradient(jnp.stack(means))


def add(pool: dict, real_logits, fake_logits) -> dict:
    """The pool after storing this batch's outputs (detached), oldest entries dropped past `size`."""
    size = pool["real"].shape[1]
    real, fake = _per_sample_means(real_logits), _per_sample_means(fake_logits)
    if real.shape[0] != pool["real"].shape[0]:
        raise ValueError(f"logit pool holds {pool['real'].shape[0]} D outputs, got {real.shape[0]}")
    batch = real.shape[1]
    return {"real": jnp.concatenate([pool["real"], real], 1)[:, -size:],
            "fake": jnp.concatenate([pool["fake"], fake], 1)[:, -size:],
            "count": jnp.minimum(pool["count"] + batch, size)}


def centres(pool: dict) -> list:
    """[(mean of the pooled real outputs, mean of the pooled fake outputs)] per D output (constants)."""
    size = pool["real"].shape[1]
    stored = (jnp.arange(size) >= size - pool["count"]).astype(jnp.float32)
    n = jnp.maximum(pool["count"], 1).astype(jnp.float32)
    real = jnp.sum(pool["real"] * stored, axis=1) / n
    fake = jnp.sum(pool["fake"] * stored, axis=1) / n
    return [(real[i], fake[i]) for i in range(pool["real"].shape[0])]
