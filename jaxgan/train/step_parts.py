"""The step config resolved once per run, and the pieces the plain step (jaxgan.train.steps) and its
variants (multistage, history, semi_supervised) are made of: running a module, what D sees, D's
logits on real and fake, G's supervised loss.

G's output as a step sees it is an array, or the list of a multi-stage G's stage outputs whose
last is the final one (`final_output`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from jaxgan import losses
from jaxgan.losses import logit_pool
from jaxgan.losses import perceptual as perceptual_lib
from jaxgan.losses import semi
from jaxgan.task import SupervisedLoss, get_task
from jaxgan.train.state import ModelState, model_variables


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """What the plain step reads of the config (hashable, static): the task object, the adversarial
    loss and its weights, G's supervised terms, the critic updates, EMA and what D sees."""

    task: Any  # jaxgan.task.Deblur | Segment
    conditional: bool
    adversarial_loss: Any  # the resolved jaxgan.losses.AdversarialLoss (kind, needs_real, d_loss, g_loss)
    adversarial_weight: float
    supervised: SupervisedLoss
    gradient_penalty: str
    gradient_penalty_weight: float
    n_critic: int
    ema_decay: float
    d_loss_weight: float = 1.0
    # Hung et al.'s D input range, D map resized to the image, G judged by D before its update
    d_mask_input: str = "signed"
    d_upsample_logits: bool = False
    g_sees_updated_d: bool = True
    # ragan / ragan_ls centred on a pool of D's recent outputs (0: on the batch's means)
    logit_pool_size: int = 0
    # the research variants' hooks (Variant instances, in the order they apply; steps.resolve_step_config)
    variants: tuple = ()

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> "StepConfig":
        """The plain step's part of the config (no variants: jaxgan.train.steps.resolve_step_config adds them)."""
        loss = config.loss
        task = get_task(config.task)
        adversarial_loss = losses.get_adversarial(loss.adversarial)
        centres = loss.get("relativistic_centres", "batch")
        pool_size = int(loss.get("relativistic_pool_size", logit_pool.DEBLURGANV2_POOL_SIZE))
        pool_size = pool_size if (adversarial_loss.needs_real and centres == "pool") else 0
        supervised = SupervisedLoss.from_config(loss)
        task.check_losses(supervised)
        return cls(task=task, conditional=bool(config.discriminator.conditional),
                   adversarial_loss=adversarial_loss, adversarial_weight=float(loss.adversarial_weight),
                   supervised=supervised, gradient_penalty=loss.gradient_penalty,
                   gradient_penalty_weight=float(loss.gradient_penalty_weight),
                   n_critic=int(loss.n_critic), ema_decay=float(config.train.ema_decay),
                   d_loss_weight=float(loss.d_loss_weight), d_mask_input=config.discriminator.mask_input,
                   d_upsample_logits=bool(config.discriminator.upsample_logits),
                   g_sees_updated_d=bool(loss.g_sees_updated_d), logit_pool_size=pool_size)

    @property
    def trains_d(self) -> bool:
        """False with adversarial_weight 0 and no variant (G's loss does not depend on D): the steps
        then neither update nor run D (an L1-only ablation costs G's step alone)."""
        return self.adversarial_weight != 0.0 or bool(self.variants)

    @property
    def uses_perceptual(self) -> bool:
        return self.task.perceptual and self.supervised.perceptual_weight > 0


class Variant:
    """A research variant's hooks into the plain step; each default leaves the step as it is."""

    g_method: str | None = None  # the G method the step runs (None: __call__)

    def g_input(self, batch: dict, x: jax.Array) -> jax.Array:
        """What G runs on, given `x` (the batch's input)."""
        return x

    def labelled(self, output, batch: dict):
        """The rows of G's output that belong to the labelled batch."""
        return output

    def d_fakes(self, s: StepConfig, state, batch: dict, output, condition, fake_img, step_key):
        """(state, condition, fake image) D's updates see, given the detached labelled ones."""
        return state, condition, fake_img

    def g_loss(self, s: StepConfig, d: ModelState, output, labelled, batch: dict, loss_nets, step_key, step):
        """(loss, metrics) this variant adds to G's loss, or None."""
        return None


def to_float32(tree):
    return jax.tree.map(lambda a: a.astype(jnp.float32), tree)


def apply(model: ModelState, params, batch_stats, x, train: bool, key, method=None):
    """Runs a module (its `method` when given, e.g. 'stages'); returns (float32 output pytree,
    batch_stats after the pass)."""
    variables = model_variables(params, batch_stats)
    rngs = {"dropout": key}
    kwargs = {} if method is None else {"method": method}
    if train and batch_stats:
        out, updates = model.apply_fn(variables, x, train=True, rngs=rngs, mutable=["batch_stats"], **kwargs)
        return to_float32(out), updates["batch_stats"]
    return to_float32(model.apply_fn(variables, x, train=train, rngs=rngs, **kwargs)), batch_stats


def final_output(output):
    """G's output as the step sees it -> the final image / logits (the last stage of a multi-stage G)."""
    return output[-1] if isinstance(output, (list, tuple)) else output


def fake_image(s: StepConfig, output: jax.Array) -> jax.Array:
    """G's output as D sees it (B, H, W, c) in [-1, 1] ([0, 1]: mask_input 'probabilities')."""
    return s.task.fake_image(output, s.d_mask_input)


def real_image(s: StepConfig, target: jax.Array, channels: int) -> jax.Array:
    """The target as D sees it: the sharp image, or the mask one-hot ({0,1} for 1 channel) in [-1, 1]
    ([0, 1]: mask_input 'probabilities')."""
    return s.task.real_image(target, channels, s.d_mask_input)


def judged(s: StepConfig, logits, image):
    """D's logits as the adversarial losses see them: resized to `image`'s size with
    discriminator.upsample_logits (AdvSemiSeg train.py:345, 399, 425, 444 interp(model_D(...)))."""
    if not s.d_upsample_logits:
        return logits
    height, width = image.shape[1:3]
    return jax.tree.map(lambda l: semi.resize_aligned(l, height, width), logits)


def d_input(s: StepConfig, condition, image):
    """D's input: concat([condition, image], -1) for a conditional D, else the image."""
    return jnp.concatenate([condition.astype(jnp.float32), image], axis=-1) if s.conditional else image


def d_fake_logits(s: StepConfig, d: ModelState, condition, fake_img, key):
    """D (train mode, its statistics discarded) on a fake, as the adversarial losses see it."""
    logits, _ = apply(d, d.params, d.batch_stats, d_input(s, condition, fake_img), True, key)
    return judged(s, logits, fake_img)


def d_logits(s: StepConfig, d: ModelState, params, condition, real_img, fake_img, key, fake_condition=None):
    """D (train mode) on real and fake -> (real_logits, fake_logits, batch_stats after). The fake's
    condition is `condition` unless fake_condition is given (fakes from the image history)."""
    fake_condition = condition if fake_condition is None else fake_condition
    real_in, fake_in = d_input(s, condition, real_img), d_input(s, fake_condition, fake_img)
    if d.batch_stats:  # separate passes: each normalised by its own batch statistics (pix2pix)
        fake_logits, stats = apply(d, params, d.batch_stats, fake_in, True, jax.random.fold_in(key, 0))
        real_logits, stats = apply(d, params, stats, real_in, True, jax.random.fold_in(key, 1))
        return judged(s, real_logits, real_img), judged(s, fake_logits, fake_img), stats
    n = real_in.shape[0]
    both, stats = apply(d, params, d.batch_stats, jnp.concatenate([real_in, fake_in], 0), True, key)
    both = judged(s, both, real_img)
    return (jax.tree.map(lambda l: l[:n], both), jax.tree.map(lambda l: l[n:], both), stats)


def supervised_loss(s: StepConfig, output, target, loss_nets, perceptual: bool = True, total=0.0):
    """total + the task's weighted supervised loss (jaxgan.task: pixel (+ perceptual) for deblur,
    mask for segment); returns (total, metrics)."""
    return s.task.supervised_loss(s.supervised, output, target, loss_nets, perceptual and s.uses_perceptual, total)


def resize_target(s: StepConfig, target: jax.Array, height: int, width: int) -> jax.Array:
    """The target at a stage's size: images bilinear (antialiased), class masks nearest."""
    if target.shape[1:3] == (height, width):
        return target
    return s.task.resize_target(target, height, width)


def load_loss_nets(s: StepConfig) -> dict:
    """Constant weights for the steps: {'vgg': params of loss.perceptual_net} when the perceptual
    loss is on, else {}. VGG19 without its weights file stops here, before any step runs."""
    if s.uses_perceptual:
        return {"vgg": perceptual_lib.load_params(s.supervised.perceptual_net)}
    return {}
