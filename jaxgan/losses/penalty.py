"""Gradient penalties on the discriminator (critic), computed through `jax.grad`.

Both penalties are UNWEIGHTED: the caller multiplies by `config.loss.gradient_penalty_weight`
(10 for WGAN-GP as in Gulrajani et al. 2017 and DeblurGAN; R1 is usually written gamma/2 * R1,
so weight = gamma / 2).

`critic_fn` maps a batch of images (B, H, W, C) to logits: an array or a pytree (list) of arrays,
e.g. `lambda x: d_module.apply(d_vars, x)`. The gradient is taken of the SUM of every logit with
respect to the input, which gives each sample's own input gradient as long as the critic does not
mix samples (no batch-statistics BatchNorm in train mode; use instance / layer norm or none, as
the WGAN-GP paper advises). Differentiating a penalty with respect to the critic's parameters (the
D update) works by closing `critic_fn` over the parameters being differentiated.

The per-sample gradient norm is computed with a "double where", so it is exact where the gradient
is non-zero and its own derivative is 0 (not NaN) where the gradient is exactly zero.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

CriticFn = Callable[[jax.Array], Any]


def _summed_logits(critic_fn: CriticFn) -> Callable[[jax.Array], jax.Array]:
    def total(x: jax.Array) -> jax.Array:
        leaves = jax.tree_util.tree_leaves(critic_fn(x))
        if not leaves:
            raise ValueError("gradient penalty: critic_fn returned no arrays")
        return sum(jnp.sum(leaf.astype(jnp.float32)) for leaf in leaves)

    return total


def _squared_norms(grads: jax.Array) -> jax.Array:
    """(B, ...) -> (B,) squared L2 norm over every non-batch axis."""
    g = grads.astype(jnp.float32)
    return jnp.sum(jnp.square(g), axis=tuple(range(1, g.ndim)))


def _safe_sqrt(x: jax.Array) -> jax.Array:
    """sqrt with gradient 0 (instead of inf * 0 = NaN) at x == 0."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def _check_batch(name: str, x: jax.Array) -> None:
    if x.ndim < 2:
        raise ValueError(f"{name}: expected a batch (B, ...) with ndim >= 2, got shape {x.shape}")


def _interpolate(name, real, fake, key, alpha, per_sample: bool):
    _check_batch(name, real)
    if real.shape != fake.shape:
        raise ValueError(f"{name}: real {real.shape} and fake {fake.shape} must have the same shape")
    real = jax.lax.stop_gradient(real).astype(jnp.float32)
    fake = jax.lax.stop_gradient(fake).astype(jnp.float32)
    shape = (real.shape[0] if per_sample else 1,)
    if alpha is None:
        alpha = jax.random.uniform(key, shape, jnp.float32)
    alpha = jax.lax.stop_gradient(jnp.broadcast_to(jnp.asarray(alpha, jnp.float32).reshape(-1), shape))
    alpha = alpha.reshape(shape + (1,) * (real.ndim - 1))
    return alpha * real + (1.0 - alpha) * fake


def wgan_gp(critic_fn: CriticFn, real: jax.Array, fake: jax.Array, key: jax.Array, alpha=None) -> jax.Array:
    """WGAN-GP penalty E[(||grad_x D(x_hat)||_2 - 1)^2] (unweighted; usual weight 10), the form of
    Gulrajani et al. 2017 (Algorithm 1).

    x_hat = a * real + (1 - a) * fake with one a ~ U[0, 1] per sample (drawn from `key`, or the
    given `alpha` (B,), e.g. to match another implementation's draw); the norm is over all
    non-batch axes of the input gradient; the mean is over the batch. `real` and `fake`: same shape
    (B, H, W, C); they are treated as constants (stop_gradient), so the penalty only trains the critic.
    """
    interpolates = _interpolate("wgan_gp", real, fake, key, alpha, per_sample=True)
    grads = jax.grad(_summed_logits(critic_fn))(interpolates)
    norms = _safe_sqrt(_squared_norms(grads))
    return jnp.mean(jnp.square(norms - 1.0))


def wgan_gp_deblurgan(critic_fn: CriticFn, real: jax.Array, fake: jax.Array, key: jax.Array,
                      alpha=None) -> jax.Array:
    """DeblurGAN's penalty, a known defect of the original kept for faithful runs (unweighted):
    ONE a ~ U[0, 1] for the whole batch (`alpha`: a scalar, to inject it), and the norm of the
    input gradient over the CHANNEL axis only, then (norm - 1)^2 averaged over batch, rows and
    columns (KupynOrest/DeblurGAN models/losses.py DiscLossWGANGP.calc_gradient_penalty:
    torch.rand(1, 1) expanded, gradients.norm(2, dim=1) on NCHW).
    """
    interpolates = _interpolate("wgan_gp_deblurgan", real, fake, key, alpha, per_sample=False)
    grads = jax.grad(_summed_logits(critic_fn))(interpolates).astype(jnp.float32)
    norms = _safe_sqrt(jnp.sum(jnp.square(grads), axis=-1))  # (B, H, W): over channels (NHWC)
    return jnp.mean(jnp.square(norms - 1.0))


def r1(critic_fn: CriticFn, real: jax.Array) -> jax.Array:
    """R1 penalty E[||grad_x D(x)||_2^2] on real data (Mescheder et al. 2018), unweighted.

    `real`: (B, H, W, C), treated as a constant. Returns the mean over the batch of the squared
    L2 norm (all non-batch axes) of each sample's input gradient.
    """
    _check_batch("r1", real)
    real = jax.lax.stop_gradient(real).astype(jnp.float32)
    grads = jax.grad(_summed_logits(critic_fn))(real)
    return jnp.mean(_squared_norms(grads))

