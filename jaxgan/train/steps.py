"""Pure update steps: `d_step`, `g_step` and the fused `train_step`, all `(state, batch, loss_nets) ->
(new_state, metrics)` where metrics is a dict of float32 scalars.

`make_step_fns(config)` binds the `StepConfig` resolved from the config and returns the three
functions (jit them with jaxgan.train.parallel). `loss_nets` holds the frozen networks the losses
need, today `{'vgg': params}` for the perceptual loss (see `make_loss_nets`); it is an argument,
never a closure, so XLA cannot constant-fold the network into the program.

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
- The adversarial weight scales G's adversarial term only; D minimises d_loss_weight x its
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

Variants (config.variants; all off by default, and then the steps are exactly the plain ones):
- Multi-stage G (generator.name 'multistage'): G runs its `stages` method; D and the adversarial
  and perceptual terms see the last stage; every earlier stage adds stage_loss_weight x its pixel /
  mask loss against the target resized to its size (deep supervision; metrics g_stage0, ...).
- Image history (history_size > 0): D's fakes pass through `jaxgan.train.history.query` once per
  train step (fold_in(step_key, 4)); the pool lives in `state.pool`. A pooled fake keeps its own
  condition; the gradient penalty's interpolation keeps the current batch's condition.
- Semi-supervised (segment): the batch also holds `unlabelled_input`; G runs once over
  concat([input, unlabelled_input]); D's fakes are the labelled and (semi_d_unlabelled) the
  unlabelled predictions, its reals the labelled masks (one mean over each); G's loss adds
  semi_adversarial_weight x adversarial loss of the unlabelled predictions from step 0 and, from
  step semi_start_step on, semi_self_training_weight x the confidence-masked self-training CE
  (jaxgan.losses.semi); D's pass on the unlabelled rows uses fold_in(step_key, 3).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgan import losses, ops
from jaxgan.losses import logit_pool
from jaxgan.losses import perceptual as perceptual_lib
from jaxgan.losses import semi
from jaxgan.task import MASK_INPUTS, get_task
from jaxgan.train import history
from jaxgan.train.state import GANState, ModelState, model_variables

Metrics = dict
PENALTIES = ("none", "wgan_gp", "wgan_gp_deblurgan", "r1")
RELATIVISTIC_CENTRES = ("pool", "batch")


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """What the steps read of the config, resolved once (hashable, static): the task object, the loss
    terms and weights, the critic updates, EMA, and the variants."""

    task: Any  # jaxgan.task.Deblur | Segment
    conditional: bool
    adversarial_loss: Any  # the resolved jaxgan.losses.AdversarialLoss (kind, needs_real, d_loss, g_loss)
    adversarial_weight: float
    pixel: str
    pixel_weight: float
    mask: str
    mask_weight: float
    perceptual_weight: float
    perceptual_layers: tuple
    gradient_penalty: str
    gradient_penalty_weight: float
    n_critic: int
    ema_decay: float
    d_loss_weight: float = 1.0
    perceptual_net: str = "vgg16"
    perceptual_input: str = "imagenet"
    pixel_input: str = "raw"
    # research variants (config.variants; see the "Variants" section of the module docstring)
    multistage: bool = False
    stage_loss_weight: float = 1.0
    history_size: int = 0
    semi: bool = False
    semi_adversarial_weight: float = 0.0
    semi_self_training_weight: float = 0.0
    semi_threshold: float = 0.2
    semi_start_step: int = 0
    semi_d_unlabelled: bool = True
    # Hung et al.'s D input range, D map resized to the image, G judged by D before its update
    d_mask_input: str = "signed"
    d_upsample_logits: bool = False
    g_sees_updated_d: bool = True
    # ragan / ragan_ls centred on a pool of D's recent outputs (0: on the batch's means)
    logit_pool_size: int = 0

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> "StepConfig":
        lo = config.loss
        if lo.gradient_penalty not in PENALTIES:
            raise ValueError(f"loss.gradient_penalty must be one of {PENALTIES}, got {lo.gradient_penalty!r}")
        task = get_task(config.task)
        if lo.perceptual_net not in perceptual_lib.NETS:
            raise ValueError(f"loss.perceptual_net must be one of {perceptual_lib.NETS}, got {lo.perceptual_net!r}")
        for key in ("perceptual_input", "pixel_input"):
            if lo[key] not in perceptual_lib.INPUTS:
                raise ValueError(f"loss.{key} must be one of {perceptual_lib.INPUTS}, got {lo[key]!r}")
        if int(lo.n_critic) < 1:
            raise ValueError(f"loss.n_critic must be >= 1, got {lo.n_critic}")
        v = config.variants
        semi = bool(v.semi_supervised)
        if semi and not task.semi_supervised:
            raise ValueError("variants.semi_supervised needs task 'segment'")
        adversarial_loss = losses.get_adversarial(lo.adversarial)
        if semi and adversarial_loss.needs_real:
            raise ValueError(f"variants.semi_supervised needs a non-relativistic loss.adversarial, got "
                             f"{lo.adversarial!r} (unlabelled images have no real counterpart)")
        if int(v.history_size) < 0:
            raise ValueError(f"variants.history_size must be >= 0, got {v.history_size}")
        mask_input = config.discriminator.mask_input
        if mask_input not in MASK_INPUTS:
            raise ValueError(f"discriminator.mask_input must be one of {MASK_INPUTS}, got {mask_input!r}")
        if mask_input != "signed" and task.target_is_image:
            raise ValueError(f"discriminator.mask_input {mask_input!r} needs task 'segment'")
        centres = lo.get("relativistic_centres", "batch")
        if centres not in RELATIVISTIC_CENTRES:
            raise ValueError(f"loss.relativistic_centres must be one of {RELATIVISTIC_CENTRES}, got {centres!r}")
        pool_size = int(lo.get("relativistic_pool_size", logit_pool.DEBLURGANV2_POOL_SIZE))
        if centres == "pool" and pool_size < 1:
            raise ValueError(f"loss.relativistic_pool_size must be >= 1, got {pool_size}")
        pool_size = pool_size if (adversarial_loss.needs_real and centres == "pool") else 0
        return cls(task=task, conditional=bool(config.discriminator.conditional),
                   adversarial_loss=adversarial_loss, adversarial_weight=float(lo.adversarial_weight),
                   pixel=lo.pixel, pixel_weight=float(lo.pixel_weight), mask=lo.mask,
                   mask_weight=float(lo.mask_weight), perceptual_weight=float(lo.perceptual_weight),
                   perceptual_layers=tuple(lo.perceptual_layers), gradient_penalty=lo.gradient_penalty,
                   gradient_penalty_weight=float(lo.gradient_penalty_weight),
                   n_critic=int(lo.n_critic), ema_decay=float(config.train.ema_decay),
                   d_loss_weight=float(lo.d_loss_weight), perceptual_net=lo.perceptual_net,
                   perceptual_input=lo.perceptual_input, pixel_input=lo.pixel_input,
                   multistage=config.generator.name == "multistage",
                   stage_loss_weight=float(v.stage_loss_weight), history_size=int(v.history_size),
                   semi=semi, semi_adversarial_weight=float(v.semi_adversarial_weight),
                   semi_self_training_weight=float(v.semi_self_training_weight),
                   semi_threshold=float(v.semi_threshold), semi_start_step=int(v.semi_start_step),
                   semi_d_unlabelled=bool(v.semi_d_unlabelled), d_mask_input=mask_input,
                   d_upsample_logits=bool(config.discriminator.upsample_logits),
                   g_sees_updated_d=bool(lo.g_sees_updated_d), logit_pool_size=pool_size)

    @property
    def uses_perceptual(self) -> bool:
        return self.task.perceptual and self.perceptual_weight > 0


class StepFns(NamedTuple):
    d_step: Callable[[GANState, dict, Any], tuple[GANState, Metrics]]
    g_step: Callable[[GANState, dict, Any], tuple[GANState, Metrics]]
    train_step: Callable[[GANState, dict, Any], tuple[GANState, Metrics]]


def make_loss_nets(config: ml_collections.ConfigDict) -> dict:
    """Constant weights for the steps: {'vgg': params of loss.perceptual_net} when the perceptual
    loss is on, else {}. VGG19 without its weights file stops here, before any step runs."""
    s = StepConfig.from_config(config)
    if s.uses_perceptual:
        return {"vgg": perceptual_lib.load_params(s.perceptual_net)}
    return {}


# ---- forward helpers -------------------------------------------------------------------------

def _to_float32(tree):
    return jax.tree.map(lambda a: a.astype(jnp.float32), tree)


def _apply(model: ModelState, params, batch_stats, x, train: bool, key, method=None):
    """Runs a module (its `method` when given, e.g. 'stages'); returns (float32 output pytree,
    batch_stats after the pass)."""
    variables = model_variables(params, batch_stats)
    rngs = {"dropout": key}
    kwargs = {} if method is None else {"method": method}
    if train and batch_stats:
        out, updates = model.apply_fn(variables, x, train=True, rngs=rngs, mutable=["batch_stats"], **kwargs)
        return _to_float32(out), updates["batch_stats"]
    return _to_float32(model.apply_fn(variables, x, train=train, rngs=rngs, **kwargs)), batch_stats


def final_output(output):
    """G's output as the step sees it -> the final image / logits (the last stage of a multi-stage G)."""
    return output[-1] if isinstance(output, (list, tuple)) else output


def _labelled(s: StepConfig, output, batch):
    """The rows of G's output that belong to the labelled batch (all rows unless semi-supervised)."""
    if not s.semi:
        return output
    n = batch["input"].shape[0]
    return jax.tree.map(lambda o: o[:n], output)


def fake_image(s: StepConfig, output: jax.Array) -> jax.Array:
    """G's output as D sees it (B, H, W, c) in [-1, 1] ([0, 1]: mask_input 'probabilities')."""
    return s.task.fake_image(output, s.d_mask_input)


def real_image(s: StepConfig, target: jax.Array, channels: int) -> jax.Array:
    """The target as D sees it: the sharp image, or the mask one-hot ({0,1} for 1 channel) in [-1, 1]
    ([0, 1]: mask_input 'probabilities')."""
    return s.task.real_image(target, channels, s.d_mask_input)


def _judged(s: StepConfig, logits, image):
    """D's logits as the adversarial losses see them: resized to `image`'s size with
    discriminator.upsample_logits (AdvSemiSeg train.py:345, 399, 425, 444 interp(model_D(...)))."""
    if not s.d_upsample_logits:
        return logits
    height, width = image.shape[1:3]
    return jax.tree.map(lambda l: semi.resize_aligned(l, height, width), logits)


def _d_input(s: StepConfig, condition, image):
    return jnp.concatenate([condition.astype(jnp.float32), image], axis=-1) if s.conditional else image


def _d_logits(s: StepConfig, d: ModelState, params, condition, real_img, fake_img, key,
              fake_condition=None):
    """D (train mode) on real and fake -> (real_logits, fake_logits, batch_stats after). The fake's
    condition is `condition` unless fake_condition is given (fakes from the image history)."""
    fake_condition = condition if fake_condition is None else fake_condition
    real_in, fake_in = _d_input(s, condition, real_img), _d_input(s, fake_condition, fake_img)
    if d.batch_stats:  # separate passes: each normalised by its own batch statistics (pix2pix)
        fake_logits, stats = _apply(d, params, d.batch_stats, fake_in, True, jax.random.fold_in(key, 0))
        real_logits, stats = _apply(d, params, stats, real_in, True, jax.random.fold_in(key, 1))
        return _judged(s, real_logits, real_img), _judged(s, fake_logits, fake_img), stats
    n = real_in.shape[0]
    both, stats = _apply(d, params, d.batch_stats, jnp.concatenate([real_in, fake_in], 0), True, key)
    both = _judged(s, both, real_img)
    return (jax.tree.map(lambda l: l[:n], both), jax.tree.map(lambda l: l[n:], both), stats)


def _mean_logit(logits) -> jax.Array:
    leaves = jax.tree.leaves(logits)
    return sum(jnp.mean(l) for l in leaves) / len(leaves)


# ---- D update --------------------------------------------------------------------------------

def _gp_alpha(s: StepConfig, d: ModelState, batch):
    """The WGAN-GP mixing weights of this critic update when the batch carries them (`gp_alpha`:
    (n_critic, B) for wgan_gp, (n_critic,) for wgan_gp_deblurgan; row d.step mod n_critic), else None."""
    if batch is None or "gp_alpha" not in batch:
        return None
    alphas = jnp.asarray(batch["gp_alpha"], jnp.float32)
    return alphas[d.step % s.n_critic]


def _d_update(s: StepConfig, d: ModelState, condition, real_img, fake_img, step_key, fake_condition=None,
              batch=None, pool=None):
    """One D update on a detached fake; returns (new D ModelState, metrics, logit pool). With a logit
    pool (relativistic losses) D's outputs are added to it (detached) before its means centre the loss."""
    key = jax.random.fold_in(jax.random.fold_in(step_key, 1), d.step)
    logit_key, gp_key = jax.random.split(key)
    gp_alpha = _gp_alpha(s, d, batch)
    adversarial = s.adversarial_loss

    def loss_fn(params):
        real_logits, fake_logits, stats = _d_logits(s, d, params, condition, real_img, fake_img, logit_key,
                                                    fake_condition)
        new_pool = pool
        if s.logit_pool_size:  # DeblurGAN-v2 models/losses.py:200-212: add, then query
            new_pool = logit_pool.add(pool, real_logits, fake_logits)
            adv = adversarial.d_loss(real_logits, fake_logits, logit_pool.centres(new_pool))
        else:
            adv = adversarial.d_loss(real_logits, fake_logits)

        def critic(image):
            return _apply(d, params, d.batch_stats, _d_input(s, condition, image), True, logit_key)[0]

        n = real_img.shape[0]  # (semi-supervised: D's fakes also hold unlabelled rows; the penalty not)
        if s.gradient_penalty in ("wgan_gp", "wgan_gp_deblurgan"):
            wgan_gp = losses.wgan_gp if s.gradient_penalty == "wgan_gp" else losses.wgan_gp_deblurgan
            penalty = wgan_gp(critic, real_img, fake_img[:n], gp_key, gp_alpha)
        elif s.gradient_penalty == "r1":
            penalty = losses.r1(critic, real_img)
        else:
            penalty = jnp.zeros((), jnp.float32)
        total = s.d_loss_weight * adv + s.gradient_penalty_weight * penalty
        metrics = {"d_loss": total, "d_adv": adv, "d_penalty": penalty,
                   "d_real_logit": _mean_logit(real_logits), "d_fake_logit": _mean_logit(fake_logits)}
        return total, (stats, metrics, new_pool)

    grads, (stats, metrics, pool) = jax.grad(loss_fn, has_aux=True)(d.params)
    metrics["d_grad_norm"] = optax.tree.norm(grads)
    return d.apply_gradients(grads=grads).replace(batch_stats=stats), metrics, pool


# ---- G loss and update -----------------------------------------------------------------------

def _supervised_loss(s: StepConfig, output, target, loss_nets, perceptual: bool = True, total=0.0):
    """total + the task's weighted supervised loss (jaxgan.task: pixel (+ perceptual) for deblur,
    mask for segment); returns (total, metrics)."""
    return s.task.supervised_loss(s, output, target, loss_nets, perceptual and s.uses_perceptual, total)


def resize_target(s: StepConfig, target: jax.Array, height: int, width: int) -> jax.Array:
    """The target at a stage's size: images bilinear (antialiased), class masks nearest."""
    if target.shape[1:3] == (height, width):
        return target
    return s.task.resize_target(target, height, width)


def _stage_losses(s: StepConfig, stages, target, loss_nets):
    """Deep supervision: the supervised loss of every stage but the last (pixel_weight x pixel loss
    or mask_weight x mask loss, no perceptual term) against the target resized to the stage's
    size, times stage_loss_weight; returns (loss, metrics g_stageK = the unweighted loss)."""
    total = jnp.zeros((), jnp.float32)
    metrics = {}
    for k, out in enumerate(stages[:-1]):
        loss, parts = _supervised_loss(s, out, resize_target(s, target, *out.shape[1:3]), loss_nets, perceptual=False,
                                       total=jnp.zeros((), jnp.float32))
        total = total + s.stage_loss_weight * loss
        metrics[f"g_stage{k}"] = parts.get("g_pixel", parts.get("g_mask", loss))  # unweighted
    return total, metrics


def _semi_loss(s: StepConfig, d: ModelState, logits_u, condition_u, key, step):
    """Hung et al.'s unlabelled terms: semi_adversarial_weight x adversarial loss from step 0 +
    semi_self_training_weight x masked self-training CE from step semi_start_step on (AdvSemiSeg
    train.py: semi_start_adv 0, semi_start 5000); returns (loss, metrics)."""
    adversarial = s.adversarial_loss
    fake_u = fake_image(s, logits_u)
    d_logits_u, _ = _apply(d, d.params, d.batch_stats, _d_input(s, condition_u, fake_u), True, key)
    d_logits_u = _judged(s, d_logits_u, fake_u)
    adv_u = adversarial.g_loss(None, d_logits_u)
    self_training, selected = semi.self_training_loss(logits_u, d_logits_u, s.semi_threshold)
    on = (jnp.asarray(step) >= s.semi_start_step).astype(jnp.float32)
    total = s.semi_adversarial_weight * adv_u + on * s.semi_self_training_weight * self_training
    return total, {"g_semi_adv": adv_u, "g_semi_ce": self_training, "semi_selected": selected}


def _g_loss(s: StepConfig, d: ModelState, output, batch, loss_nets, step_key, step=0, pool=None):
    """G's loss given its float32 output pytree (differentiable w.r.t. `output`: an array, or the
    list of stage outputs of a multi-stage G; semi-supervised: labelled rows, then unlabelled
    ones); returns (loss, metrics). A logit pool (relativistic losses) is queried, not added to
    (DeblurGAN-v2 models/losses.py:186-194)."""
    adversarial = s.adversarial_loss
    condition, target = batch["input"], batch["target"]
    labelled = _labelled(s, output, batch)
    final = final_output(labelled)
    fake_img = fake_image(s, final)
    key = jax.random.fold_in(step_key, 2)
    if adversarial.needs_real:  # relativistic: G's loss needs D(real) too
        real_img = real_image(s, target, final.shape[-1])
        real_logits, fake_logits, _ = _d_logits(s, d, d.params, condition, real_img, fake_img, key)
    else:
        real_logits = None
        fake_logits, _ = _apply(d, d.params, d.batch_stats, _d_input(s, condition, fake_img), True, key)
        fake_logits = _judged(s, fake_logits, fake_img)
    centres = logit_pool.centres(pool) if s.logit_pool_size else None
    adv = adversarial.g_loss(real_logits, fake_logits, centres)
    total, metrics = _supervised_loss(s, final, target, loss_nets, total=s.adversarial_weight * adv)
    metrics["g_adv"] = adv
    if s.multistage:
        stage_loss, stage_metrics = _stage_losses(s, labelled, target, loss_nets)
        total = total + stage_loss
        metrics.update(stage_metrics)
    if s.semi:
        n = condition.shape[0]
        semi_loss, semi_metrics = _semi_loss(s, d, final_output(output)[n:], batch["unlabelled_input"],
                                             jax.random.fold_in(step_key, 3), step)
        total = total + semi_loss
        metrics.update(semi_metrics)
    metrics["g_loss"] = total
    return total, metrics


def _finish_g(s: StepConfig, state: GANState, grads, g_stats, metrics) -> tuple[GANState, Metrics]:
    metrics["g_grad_norm"] = optax.tree.norm(grads)
    g = state.g.apply_gradients(grads=grads).replace(batch_stats=g_stats)
    ema = state.ema_params
    if ema is not None:
        ema = jax.tree.map(lambda e, p: s.ema_decay * e + (1.0 - s.ema_decay) * p, ema, g.params)
    return state.replace(g=g, ema_params=ema), metrics


def _step_key(state: GANState) -> jax.Array:
    return jax.random.fold_in(state.key, state.step)


def _g_input(s: StepConfig, batch: dict) -> jax.Array:
    """What G runs on: the input, plus (semi-supervised) the unlabelled images after it."""
    if s.semi:
        return jnp.concatenate([batch["input"], batch["unlabelled_input"]], 0)
    return batch["input"]


def _g_forward(s: StepConfig, state: GANState, params, batch, step_key):
    """(output pytree, G's batch_stats): every stage's output for a multi-stage G, else the output."""
    return _apply(state.g, params, state.g.batch_stats, _g_input(s, batch), True, jax.random.fold_in(step_key, 0),
                  method="stages" if s.multistage else None)


def _d_fakes(s: StepConfig, state: GANState, batch, output, step_key):
    """(state, fake condition, fake image) for D's update: the detached fakes of the labelled rows,
    mixed with earlier ones by the image history buffer when it is on (the state's pool advances);
    semi-supervised with semi_d_unlabelled, followed by the unlabelled rows' fakes (Hung et al.)."""
    state, condition, fake_img = _labelled_d_fakes(s, state, batch, output, step_key)
    if s.semi and s.semi_d_unlabelled:  # AdvSemiSeg train.py D_remain: pred = cat(pred, pred_remain)
        n = batch["input"].shape[0]
        fake_u = jax.lax.stop_gradient(fake_image(s, final_output(output)[n:]))
        condition = jnp.concatenate([condition, batch["unlabelled_input"].astype(condition.dtype)], 0)
        fake_img = jnp.concatenate([fake_img, fake_u], 0)
    return state, condition, fake_img


def _labelled_d_fakes(s: StepConfig, state: GANState, batch, output, step_key):
    fake_img = jax.lax.stop_gradient(fake_image(s, final_output(_labelled(s, output, batch))))
    condition = batch["input"]
    if not s.history_size:
        return state, condition, fake_img
    pool, mixed = history.query(state.pool, _d_input(s, condition, fake_img), jax.random.fold_in(step_key, 4))
    state = state.replace(pool=pool)
    if s.conditional:
        channels = condition.shape[-1]
        return state, mixed[..., :channels], mixed[..., channels:]
    return state, condition, mixed


# ---- the three steps -------------------------------------------------------------------------

def d_step(s: StepConfig, state: GANState, batch: dict, loss_nets) -> tuple[GANState, Metrics]:
    """One D update against the current G (G's params and statistics unchanged)."""
    del loss_nets
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


def train_step(s: StepConfig, state: GANState, batch: dict, loss_nets) -> tuple[GANState, Metrics]:
    """n_critic D updates then one G update, with one G forward (see the module docstring)."""
    step_key = _step_key(state)
    forward = lambda params: _g_forward(s, state, params, batch, step_key)  # noqa: E731
    output, g_vjp, g_stats = jax.vjp(forward, state.g.params, has_aux=True)
    d_before = state.d
    state, fake_condition, fake_img = _d_fakes(s, state, batch, output, step_key)
    real_img = real_image(s, batch["target"], fake_img.shape[-1])
    d, d_metrics, pool = _d_update(s, state.d, batch["input"], real_img, fake_img, step_key, fake_condition, batch,
                                   state.logit_pool)
    if s.n_critic > 1:
        def critic_update(_, carry):
            return _d_update(s, carry[0], batch["input"], real_img, fake_img, step_key, fake_condition, batch,
                             carry[2])

        # Unrolled on CPU only: inside an XLA while loop the CPU backend leaves the D kernel-gradient
        # convs in a form that runs ~100x slower (benchmarks/README.md); elsewhere a rolled loop.
        d, d_metrics, pool = jax.lax.fori_loop(1, s.n_critic, critic_update, (d, d_metrics, pool),
                                               unroll=ops.on_cpu())
    state = state.replace(d=d, logit_pool=pool)
    judge = d if s.g_sees_updated_d else d_before
    loss_fn = lambda out: _g_loss(s, judge, out, batch, loss_nets, step_key, state.step, pool)  # noqa: E731
    (_, g_metrics), d_output = jax.value_and_grad(loss_fn, has_aux=True)(output)
    (grads,) = g_vjp(d_output)
    state, g_metrics = _finish_g(s, state, grads, g_stats, g_metrics)
    return state, {**d_metrics, **g_metrics}


def make_step_fns(config: ml_collections.ConfigDict) -> StepFns:
    """The three steps with the config's StepConfig bound: each `(state, batch, loss_nets)`."""
    s = StepConfig.from_config(config)  # (fails early on a bad adversarial kind)
    s.task.check_losses(s)

    conv_impl = ops.check_impl(config.train.get("conv_impl", "auto"), "train.conv_impl")

    def bind(fn):
        def step(state, batch, loss_nets):
            with ops.conv_impl(conv_impl):  # read when the step is traced
                return fn(s, state, batch, loss_nets)
        step.__name__ = fn.__name__
        step.__doc__ = fn.__doc__
        return step

    return StepFns(bind(d_step), bind(g_step), bind(train_step))
