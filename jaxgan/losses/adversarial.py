"""Adversarial loss pairs on discriminator logits.

Every kind is an `AdversarialLoss(d_loss, g_loss)` of two pure functions with one signature:

    d_loss(real_logits, fake_logits) -> scalar   (minimised by the discriminator)
    g_loss(real_logits, fake_logits) -> scalar   (minimised by the generator)

Both get both logits so that the relativistic kinds fit the same mould; the non-relativistic
generator losses simply ignore `real_logits` (pass None if you have none). Logits are raw scores,
never probabilities: the sigmoid-based kinds work through `jax.nn.softplus`
(-log sigmoid(x) = softplus(-x), -log(1 - sigmoid(x)) = softplus(x)), which is exact and stable for
any logit, so the "BCE on raw scores" defect cannot happen.

A logit argument is an array of any shape (e.g. PatchGAN's (B, h, w, 1)) or a pytree of arrays
(multi-scale / double-scale D: a list). For pytrees the loss is computed leaf by leaf (real leaf i
paired with fake leaf i) and the mean over leaves is returned. Inside one leaf every mean below is
over all elements (batch and patches). Notation: r = real logits, f = fake logits, E = mean,
sp = softplus.

Formulas (d = D loss, g = G loss):

    vanilla   d = E sp(-r) + E sp(f)                 g = E sp(-f)       (non-saturating GAN)
    lsgan     d = E (r - 1)^2 + E f^2                g = E (f - 1)^2    (Mao et al. 2017, a=0 b=c=1)
    wgan      d = E f - E r                          g = -E f           (add a gradient penalty)
    hinge     d = E relu(1 - r) + E relu(1 + f)      g = -E f
    ragan     d = [E sp(-(r - E f)) + E sp(f - E r)] / 2
              g = [E sp(r - E f) + E sp(-(f - E r))] / 2                (relativistic average GAN)
    ragan_ls  d = [E (r - E f - 1)^2 + E (f - E r + 1)^2] / 2
              g = [E (r - E f + 1)^2 + E (f - E r - 1)^2] / 2          (DeblurGAN-v2's RaGAN-LS)

Notes: pix2pix halves its D loss; here the caller's weight does that if wanted. The relativistic
kinds take optional `centres`, one (real centre, fake centre) pair per leaf, used in place of E r
and E f: DeblurGAN-v2's means over a pool of its last 50 D outputs, stored detached
(jaxgan.losses.logit_pool), so no gradient flows through them. Without them the centres are the
current batch's means, differentiated through (the form of Jolicoeur-Martineau, 2018).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

Logits = Any  # an array or a pytree (list) of arrays
_PairLoss = Callable[[jax.Array, jax.Array], jax.Array]


class AdversarialLoss(NamedTuple):
    """A discriminator loss and a generator loss, both `(real_logits, fake_logits, centres=None) ->
    scalar` (`centres`: relativistic kinds only, see the module docstring)."""

    d_loss: Callable[[Logits, Logits], jax.Array]
    g_loss: Callable[[Logits, Logits], jax.Array]
    kind: str = ""
    needs_real: bool = False  # G's loss needs D(real) too (the relativistic kinds)


def _mean(x: jax.Array) -> jax.Array:
    return jnp.mean(x.astype(jnp.float32))


# ---- per-leaf losses: (real, fake) arrays -> scalar ------------------------------------------

def _vanilla_d(r, f):
    return _mean(jax.nn.softplus(-r)) + _mean(jax.nn.softplus(f))


def _vanilla_g(r, f):
    del r
    return _mean(jax.nn.softplus(-f))


def _lsgan_d(r, f):
    return _mean(jnp.square(r - 1.0)) + _mean(jnp.square(f))


def _lsgan_g(r, f):
    del r
    return _mean(jnp.square(f - 1.0))


def _wgan_d(r, f):
    return _mean(f) - _mean(r)


def _wgan_g(r, f):
    del r
    return -_mean(f)


def _hinge_d(r, f):
    return _mean(jax.nn.relu(1.0 - r)) + _mean(jax.nn.relu(1.0 + f))


def _centred(r, f, centre):
    """(r - centre of f, f - centre of r): the batch means, or the given constant centres."""
    real_centre, fake_centre = (_mean(r), _mean(f)) if centre is None else centre
    return r - fake_centre, f - real_centre


def _ragan_d(r, f, centre=None):
    real_vs_fake, fake_vs_real = _centred(r, f, centre)
    return 0.5 * (_mean(jax.nn.softplus(-real_vs_fake)) + _mean(jax.nn.softplus(fake_vs_real)))


def _ragan_g(r, f, centre=None):
    real_vs_fake, fake_vs_real = _centred(r, f, centre)
    return 0.5 * (_mean(jax.nn.softplus(real_vs_fake)) + _mean(jax.nn.softplus(-fake_vs_real)))


def _ragan_ls_d(r, f, centre=None):
    real_vs_fake, fake_vs_real = _centred(r, f, centre)
    return 0.5 * (_mean(jnp.square(real_vs_fake - 1.0)) + _mean(jnp.square(fake_vs_real + 1.0)))


def _ragan_ls_g(r, f, centre=None):
    real_vs_fake, fake_vs_real = _centred(r, f, centre)
    return 0.5 * (_mean(jnp.square(real_vs_fake + 1.0)) + _mean(jnp.square(fake_vs_real - 1.0)))


_NEEDS_REAL_IN_G = ("ragan", "ragan_ls")


def _over_leaves(pair_loss: _PairLoss, kind: str, needs_real: bool):
    """Lift a per-array loss to pytrees of logits: mean over paired leaves."""

    def loss(real_logits: Logits, fake_logits: Logits, centres=None) -> jax.Array:
        fake_leaves = jax.tree_util.tree_leaves(fake_logits)
        if not fake_leaves:
            raise ValueError(f"adversarial loss '{kind}': fake_logits has no arrays")
        if real_logits is None:
            if needs_real:
                raise ValueError(f"adversarial loss '{kind}' needs real_logits, got None")
            real_leaves = [None] * len(fake_leaves)
        else:
            real_leaves = jax.tree_util.tree_leaves(real_logits)
            if len(real_leaves) != len(fake_leaves):
                raise ValueError(
                    f"adversarial loss '{kind}': real_logits has {len(real_leaves)} arrays but "
                    f"fake_logits has {len(fake_leaves)}; expected one real per fake (same D)")
        if centres is None:
            losses = [pair_loss(r, f) for r, f in zip(real_leaves, fake_leaves)]
        elif kind not in _NEEDS_REAL_IN_G:
            raise ValueError(f"adversarial loss '{kind}' takes no centres (only {_NEEDS_REAL_IN_G} do)")
        elif len(centres) != len(fake_leaves):
            raise ValueError(f"adversarial loss '{kind}': {len(centres)} centres for {len(fake_leaves)} arrays")
        else:
            losses = [pair_loss(r, f, c) for r, f, c in zip(real_leaves, fake_leaves, centres)]
        return sum(losses) / len(losses)

    loss.__name__ = f"{kind}_{pair_loss.__name__.rsplit('_', 1)[-1]}_loss"
    loss.__doc__ = f"'{kind}' adversarial loss (see jaxgan.losses.adversarial for the formula)."
    return loss


_PAIRS = {
    "vanilla": (_vanilla_d, _vanilla_g),
    "lsgan": (_lsgan_d, _lsgan_g),
    "wgan": (_wgan_d, _wgan_g),
    "hinge": (_hinge_d, _wgan_g),
    "ragan": (_ragan_d, _ragan_g),
    "ragan_ls": (_ragan_ls_d, _ragan_ls_g),
}
ADVERSARIAL_KINDS = tuple(_PAIRS)


@functools.cache
def get_adversarial(kind: str) -> AdversarialLoss:
    """The `AdversarialLoss(d_loss, g_loss)` pair of `kind` (one of ADVERSARIAL_KINDS); one object per
    kind, so that pairs compare and hash by kind.

    See the module docstring for every formula. Raises ValueError for an unknown kind.
    """
    if kind not in _PAIRS:
        raise ValueError(f"unknown adversarial loss kind {kind!r}; valid kinds: {ADVERSARIAL_KINDS}")
    d_pair, g_pair = _PAIRS[kind]
    needs_real = kind in _NEEDS_REAL_IN_G
    return AdversarialLoss(
        d_loss=_over_leaves(d_pair, kind, needs_real=True),
        g_loss=_over_leaves(g_pair, kind, needs_real=needs_real),
        kind=kind, needs_real=needs_real,
    )
