"""Pure update steps: `d_step`, `g_step` and the fused `train_step`, all `(state, batch, loss_nets) ->
(new_state, metrics)` where metrics is a dict of float32 scalars.

`bind_steps(step_config)` binds a StepConfig (`resolve_step_config(config)`: once per run, in
jaxgan.train.build) and returns the three functions (jit them with jaxgan.train.parallel);
`make_step_fns(config)` does both. `loss_nets` holds the frozen networks the losses need, today
`{'vgg': params}` for the perceptual loss (step_parts.load_loss_nets); it is an argument, never a
closure, so XLA cannot constant-fold the network into the program.

Batch: `input` float32 (B, H, W, 3) in [-1, 1]; `target` float32 (B, H, W, 3) in [-1, 1] (deblur)
or int32 (B, H, W) class indices (segment).

What D sees. Deblur: the image (G's output or the sharp target). Segment: the mask as
probabilities scaled to [-1, 1] (sigmoid for 1 output channel, softmax for C; the real mask one-hot
/ {0, 1}, scaled the same way), or unscaled in [0, 1] with discriminator.mask_input
'probabilities' (Hung et al.). A conditional D gets concat([input, image], -1). With
discriminator.upsample_logits D's logit map is resized (bilinear, corners aligned:
jaxgan.losses.semi.resize_aligned) to the image size before every adversarial loss, so each loss
is a mean over pixels (Hung et al.'s interp); the gradient penalties see D's own map.

Choices (documented behaviour):
- Randomness: step_key = fold_in(state.key, step); G's dropout uses fold_in(step_key, 0); each D
  update uses fold_in(fold_in(step_key, 1), d_update_count) (dropout and the WGAN-GP mix); D's
  pass inside G's loss uses fold_in(step_key, 2). A resumed run therefore draws the same numbers.
  To drive a step from outside (a parity test against another framework), a batch may carry
  `gp_alpha`: the WGAN-GP mixing weights, (n_critic, B) for wgan_gp or (n_critic,) for
  wgan_gp_deblurgan, row k used by the k-th critic update of the step; G's dropout masks follow
  from its rng fold_in(step_key, 0) (Flax's nn.Dropout draws from the 'dropout' stream).
- One G forward per train step. `train_step` runs G once (train mode, with a VJP), feeds the
  detached fake to `n_critic` D updates, then back-propagates the G loss (computed with the
  UPDATED D, as pix2pix does; with loss.g_sees_updated_d False with D as it was before this
  step's updates, as Hung et al.'s train.py, where both optimizers step at the end) through the
  saved VJP. With n_critic > 1 every critic update sees the same batch and the same fake, as
  DeblurGAN does (G does not change between critic updates; the WGAN-GP paper draws a fresh batch
  per critic update instead). `train_step` equals `d_step` applied n_critic times followed by
  `g_step` (tested), without the recomputation (with g_sees_updated_d False: `g_step` on the
  state before the D updates).
- D's forward over real and fake: one pass over concat([real, fake]) along the batch when D has no
  BatchNorm; with BatchNorm two passes (fake, then real) so that each is normalised by its own
  batch statistics as in pix2pix (a joint pass would mix real and fake statistics). D's running
  statistics are updated in the D update only; G's in the G update only (d_step's G forward
  uses batch statistics but discards the update).
- The adversarial weight scales G's adversarial term only (at 0, with no variant, D is neither run
  nor updated: StepConfig.trains_d); D minimises d_loss_weight x its
  adversarial loss (0.5 in pix2pix: pix2pix_model.py backward_D) plus gradient_penalty_weight x
  penalty. The penalty is taken w.r.t. the image D judges (the
  condition is held fixed) and enters D's loss only, with the fake detached, so its gradient
  reaches D's params only.
- Mixed precision: modules compute in train.compute_dtype; params, gradients, optimizer state
  and every loss are float32 (outputs are cast to float32 before any loss).

Relativistic losses (ragan, ragan_ls) with loss.relativistic_centres 'pool' (DeblurGAN-v2): every
D update adds D's outputs on the real and the fake batch, detached, to `state.logit_pool`
(jaxgan.losses.logit_pool) and centres its loss on the pool's means; G's loss uses the pool as the
step's last D update left it. 'batch': the batch's means, differentiated through.

Variants (config.variants; all off by default, and then the steps are exactly the plain ones) hook
into the plain step (step_parts.Variant), in this order: multi-stage G (jaxgan.train.multistage),
image history (jaxgan.train.image_history), semi-supervised (jaxgan.train.semi_supervised).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgan import config_io, losses, ops
from jaxgan.losses import logit_pool
from jaxgan.train.image_history import ImageHistory
from jaxgan.train.multistage import MultiStage
from jaxgan.train.semi_supervised import SemiSupervised
from jaxgan.train.state import GANState, ModelState
from jaxgan.train.step_parts import (StepConfig, apply, d_fake_logits, d_input, d_logits, fake_image, final_output,
                                     load_loss_nets, real_image, resize_target, supervised_loss)

__all__ = ["StepConfig", "StepFns", "resolve_step_config", "bind_steps", "make_step_fns", "make_loss_nets",
           "load_loss_nets", "d_step", "g_step", "train_step", "fake_image", "real_image", "resize_target",
           "d_logits", "supervised_loss", "final_output"]

Metrics = dict


class StepFns(NamedTuple):
    d_step: Callable[[GANState, dict, Any], tuple[GANState, Metrics]]
    g_step: Callable[[GANState, dict, Any], tuple[GANState, Metrics]]
    train_step: Callable[[GANState, dict, Any], tuple[GANState, Metrics]]


def resolve_step_config(config: ml_collections.ConfigDict) -> StepConfig:
    """The StepConfig of `config` with its variants' hooks (once per run: jaxgan.train.build), after
    config_io.check_values (a config made in Python has not been read through it)."""
    config_io.check_values(config)
    variants = config.variants
    hooks = []
    if config.generator.name == "multistage":
        hooks.append(MultiStage(float(variants.stage_loss_weight)))
    if int(variants.history_size) > 0:
        hooks.append(ImageHistory(int(variants.history_size)))
    if variants.semi_supervised:
        hooks.append(SemiSupervised(float(variants.semi_adversarial_weight), float(variants.semi_self_training_weight),
                                    float(variants.semi_threshold), int(variants.semi_start_step),
                                    bool(variants.semi_d_unlabelled)))
    return dataclasses.replace(StepConfig.from_config(config), variants=tuple(hooks))


def make_loss_nets(config: ml_collections.ConfigDict) -> dict:
    """load_loss_nets of the config's StepConfig."""
    return load_loss_nets(StepConfig.from_config(config))


# ---- D update --------------------------------------------------------------------------------

def _mean_logit(logits) -> jax.Array:
    leaves = jax.tree.leaves(logits)
    return sum(jnp.mean(l) for l in leaves) / len(leaves)


def _gp_alpha(s: StepConfig, d: ModelState, batch):
    """The WGAN-GP mixing weights of this critic update when the batch carries them (`gp_alpha`:
    (n_critic, B) for wgan_gp, (n_critic,) for wgan_gp_deblurgan; row d.step mod n_critic), else None."""
    if batch is None or "gp_alpha" not in batch:
        return None
    alphas = jnp.asarray(batch["gp_alpha"], jnp.float32)
    return alphas[d.step % s.n_critic]


def _penalty(s: StepConfig, critic, real_img, fake_img, key, alpha):
    if s.gradient_penalty in ("wgan_gp", "wgan_gp_deblurgan"):
        wgan_gp = losses.wgan_gp if s.gradient_penalty == "wgan_gp" else losses.wgan_gp_deblurgan
        return wgan_gp(critic, real_img, fake_img, key, alpha)
    if s.gradient_penalty == "r1":
        return losses.r1(critic, real_img)
    return jnp.zeros((), jnp.float32)


def _d_update(s: StepConfig, d: ModelState, condition, real_img, fake_img, step_key, fake_condition=None,
              batch=None, pool=None):
    """One D update on a detached fake; returns (new D ModelState, metrics, logit pool). With a logit
    pool (relativistic losses) D's outputs are added to it (detached) before its means centre the loss."""
    key = jax.random.fold_in(jax.random.fold_in(step_key, 1), d.step)
    logit_key, gp_key = jax.random.split(key)
    gp_alpha = _gp_alpha(s, d, batch)
    adversarial = s.adversarial_loss

    def loss_fn(params):
        real_logits, fake_logits, stats = d_logits(s, d, params, condition, real_img, fake_img, logit_key,
                                                   fake_condition)
        new_pool = pool
        if s.logit_pool_size:  # DeblurGAN-v2 models/losses.py:200-212: add, then query
            new_pool = logit_pool.add(pool, real_logits, fake_logits)
            adv = adversarial.d_loss(real_logits, fake_logits, logit_pool.centres(new_pool))
        else:
            adv = adversarial.d_loss(real_logits, fake_logits)

        def critic(image):
            return apply(d, params, d.batch_stats, d_input(s, condition, image), True, logit_key)[0]

        n = real_img.shape[0]  # (a variant may add fakes without a real counterpart; the penalty takes none)
        penalty = _penalty(s, critic, real_img, fake_img[:n], gp_key, gp_alpha)
        total = s.d_loss_weight * adv + s.gradient_penalty_weight * penalty
        metrics = {"d_loss": total, "d_adv": adv, "d_penalty": penalty,
                   "d_real_logit": _mean_logit(real_logits), "d_fake_logit": _mean_logit(fake_logits)}
        return total, (stats, metrics, new_pool)

    grads, (stats, metrics, pool) = jax.grad(loss_fn, has_aux=True)(d.params)
    metrics["d_grad_norm"] = optax.tree.norm(grads)
    return d.apply_gradients(grads=grads).replace(batch_stats=stats), metrics, pool


# ---- G forward, D's fakes, G's loss ------------------------------------------------------------

def _step_key(state: GANState) -> jax.Array:
    return jax.random.fold_in(state.key, state.step)


def _labelled(s: StepConfig, output, batch):
    for variant in s.variants:
        output = variant.labelled(output, batch)
    return output


def _g_forward(s: StepConfig, state: GANState, params, batch, step_key):
    """(output pytree, G's batch_stats) of G in train mode on the batch (as the variants extend it)."""
    x = batch["input"]
    method = None
    for variant in s.variants:
        x = variant.g_input(batch, x)
        method = variant.g_method or method
    return apply(state.g, params, state.g.batch_stats, x, True, jax.random.fold_in(step_key, 0), method=method)


def _d_fakes(s: StepConfig, state: GANState, batch, output, step_key):
    """(state, fake condition, fake image) for D's updates: the detached fakes of the labelled rows with
    their condition, as the variants change them (the image history's pool advances in the state)."""
    fake_img = jax.lax.stop_gradient(fake_image(s, final_output(_labelled(s, output, batch))))
    condition = batch["input"]
    for variant in s.variants:
        state, condition, fake_img = variant.d_fakes(s, state, batch, output, condition, fake_img, step_key)
    return state, condition, fake_img


def _g_loss(s: StepConfig, d: ModelState, output, batch, loss_nets, step_key, step=0, pool=None):
    """G's loss given its float32 output pytree (differentiable w.r.t. `output`); returns (loss,
    metrics). A logit pool (relativistic losses) is queried, not added to (DeblurGAN-v2
    models/losses.py:186-194)."""
    adversarial = s.adversarial_loss
    condition, target = batch["input"], batch["target"]
    labelled = _labelled(s, output, batch)
    final = final_output(labelled)
    if not s.trains_d:  # no adversarial term: D is not run
        total, metrics = supervised_loss(s, final, target, loss_nets, total=jnp.zeros((), jnp.float32))
        metrics["g_loss"] = total
        return total, metrics
    fake_img = fake_image(s, final)
    key = jax.random.fold_in(step_key, 2)
    if adversarial.needs_real:  # relativistic: G's loss needs D(real) too
        real_img = real_image(s, target, final.shape[-1])
        real_logits, fake_logits, _ = d_logits(s, d, d.params, condition, real_img, fake_img, key)
    else:
        real_logits, fake_logits = None, d_fake_logits(s, d, condition, fake_img, key)
    centres = logit_pool.centres(pool) if s.logit_pool_size else None
    adv = adversarial.g_loss(real_logits, fake_logits, centres)
    total, metrics = supervised_loss(s, final, target, loss_nets, total=s.adversarial_weight * adv)
    metrics["g_adv"] = adv
    for variant in s.variants:
        extra = variant.g_loss(s, d, output, labelled, batch, loss_nets, step_key, step)
        if extra is not None:
            total = total + extra[0]
            metrics.update(extra[1])
    metrics["g_loss"] = total
    return total, metrics


def _finish_g(s: StepConfig, state: GANState, grads, g_stats, metrics) -> tuple[GANState, Metrics]:
    metrics["g_grad_norm"] = optax.tree.norm(grads)
    g = state.g.apply_gradients(grads=grads).replace(batch_stats=g_stats)
    average = lambda old, new: jax.tree.map(lambda e, p: s.ema_decay * e + (1.0 - s.ema_decay) * p, old, new)  # noqa: E731
    ema, ema_stats = state.ema_params, state.ema_batch_stats
    if ema is not None:
        ema = average(ema, g.params)
    if ema_stats is not None:  # the statistics the averaged params are applied with (as timm's ModelEmaV2)
        ema_stats = average(ema_stats, g.batch_stats)
    return state.replace(g=g, ema_params=ema, ema_batch_stats=ema_stats), metrics


# ---- the three steps -------------------------------------------------------------------------

def d_step(s: StepConfig, state: GANState, batch: dict, loss_nets) -> tuple[GANState, Metrics]:
    """One D update against the current G (G's params and statistics unchanged); none without an
    adversarial term (StepConfig.trains_d)."""
    del loss_nets
    if not s.trains_d:
        return state, {}
    step_key = _step_key(state)
    output, _ = _g_forward(s, state, state.g.params, batch, step_key)
    state, fake_condition, fake_img = _d_fakes(s, state, batch, output, step_key)
    real_img = real_image(s, batch["target"], fake_img.shape[-1])
    d, metrics, pool = _d_update(s, state.d, batch["input"], real_img, fake_img, step_key, fake_condition, batch,
                                 state.logit_pool)
    return state.replace(d=d, logit_pool=pool), metrics


def g_step(s: StepConfig, state: GANState, batch: dict, loss_nets) -> tuple[GANState, Metrics]:
    """One G update against the current D (D's params and statistics unchanged); step += 1."""
    step_key = _step_key(state)

    def loss_fn(params):
        output, g_stats = _g_forward(s, state, params, batch, step_key)
        loss, metrics = _g_loss(s, state.d, output, batch, loss_nets, step_key, state.step, state.logit_pool)
        return loss, (g_stats, metrics)

    grads, (g_stats, metrics) = jax.grad(loss_fn, has_aux=True)(state.g.params)
    return _finish_g(s, state, grads, g_stats, metrics)


def _critic_updates(s: StepConfig, state: GANState, batch: dict, output, step_key):
    """n_critic D updates against G's detached output (none without an adversarial term:
    StepConfig.trains_d); returns (state with D and its logit pool updated, the D that judges G, D's metrics)."""
    if not s.trains_d:
        return state, state.d, {}
    d_before = state.d
    state, fake_condition, fake_img = _d_fakes(s, state, batch, output, step_key)
    real_img = real_image(s, batch["target"], fake_img.shape[-1])

    def critic_update(_, carry):
        return _d_update(s, carry[0], batch["input"], real_img, fake_img, step_key, fake_condition, batch, carry[2])

    d, d_metrics, pool = critic_update(0, (state.d, None, state.logit_pool))
    if s.n_critic > 1:
        # Unrolled on CPU only: inside an XLA while loop the CPU backend leaves the D kernel-gradient
        # convs in a form that runs ~100x slower (benchmarks/README.md); elsewhere a rolled loop.
        d, d_metrics, pool = jax.lax.fori_loop(1, s.n_critic, critic_update, (d, d_metrics, pool),
                                               unroll=ops.on_cpu())
    return state.replace(d=d, logit_pool=pool), (d if s.g_sees_updated_d else d_before), d_metrics


def train_step(s: StepConfig, state: GANState, batch: dict, loss_nets) -> tuple[GANState, Metrics]:
    """n_critic D updates then one G update, with one G forward (see the module docstring)."""
    step_key = _step_key(state)
    forward = lambda params: _g_forward(s, state, params, batch, step_key)  # noqa: E731
    output, g_vjp, g_stats = jax.vjp(forward, state.g.params, has_aux=True)
    state, judge, d_metrics = _critic_updates(s, state, batch, output, step_key)
    loss_fn = lambda out: _g_loss(s, judge, out, batch, loss_nets, step_key, state.step,  # noqa: E731
                                  state.logit_pool)
    (_, g_metrics), d_output = jax.value_and_grad(loss_fn, has_aux=True)(output)
    (grads,) = g_vjp(d_output)
    state, g_metrics = _finish_g(s, state, grads, g_stats, g_metrics)
    return state, {**d_metrics, **g_metrics}


def bind_steps(s: StepConfig, conv_impl: str = "auto") -> StepFns:
    """The three steps with `s` bound: each `(state, batch, loss_nets)`; the convolutions of
    train.conv_impl (read when the step is traced)."""
    conv_impl = ops.check_impl(conv_impl, "train.conv_impl")

    def bind(fn):
        def step(state, batch, loss_nets):
            with ops.conv_impl(conv_impl):
                return fn(s, state, batch, loss_nets)
        step.__name__ = fn.__name__
        step.__doc__ = fn.__doc__
        return step

    return StepFns(bind(d_step), bind(g_step), bind(train_step))


def make_step_fns(config: ml_collections.ConfigDict) -> StepFns:
    """bind_steps of the config's resolved StepConfig (jaxgan.train.build resolves it once per run)."""
    return bind_steps(resolve_step_config(config), config.train.get("conv_impl", "auto"))
