"""The training state: G's and D's flax TrainStates, an optional EMA of G's params, the RNG key.

`GANState` is one pytree, so one jitted step takes it and returns it, one checkpoint saves it and
one sharding (replicated) places it. `GANState.step` (= G's update count) is the number of finished
train steps; D's own count is `n_critic` times that.

Optimizers are optax Adam (AdamW when optim.weight_decay > 0) with betas (optim.b1, optim.b2), a
learning-rate schedule in train steps (constant | linear_decay | cosine, times an optional linear
warmup) and optional gradient clipping by global norm. Params and optimizer state are float32; the
modules compute in train.compute_dtype.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct
from flax.training import train_state

from jaxgan.data.prior import input_channels

SCHEDULES = ("constant", "linear_decay", "cosine")
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


class ModelState(train_state.TrainState):
    """A flax TrainState (step, apply_fn, params, tx, opt_state) plus BatchNorm statistics
    (`batch_stats`, an empty dict for a module without batch norm)."""

    batch_stats: Any = None


@struct.dataclass
class GANState:
    g: ModelState
    d: ModelState
    ema_params: Any  # EMA of g.params (same tree), or None when train.ema_decay == 0
    key: jax.Array  # uint32[2]; step randomness is fold_in(key, step)
    pool: Any = None  # image history for D (jaxgan.train.history) when variants.history_size > 0

    @property
    def step(self) -> jax.Array:
        """Finished train steps (int32 scalar)."""
        return self.g.step

    def generator_variables(self, use_ema: bool = True) -> dict:
        """The variables to apply G with for inference: EMA params when kept (and use_ema)."""
        params = self.ema_params if (use_ema and self.ema_params is not None) else self.g.params
        return model_variables(params, self.g.batch_stats)


def model_variables(params, batch_stats) -> dict:
    """{'params': ..., 'batch_stats': ...} (no batch_stats entry for a module without batch norm)."""
    if batch_stats:
        return {"params": params, "batch_stats": batch_stats}
    return {"params": params}


def compute_dtype(config: ml_collections.ConfigDict):
    name = config.train.compute_dtype
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"train.compute_dtype must be one of {sorted(COMPUTE_DTYPES)}, got {name!r}")
    return COMPUTE_DTYPES[name]


def d_image_channels(config: ml_collections.ConfigDict) -> int:
    """Channels of the image D judges: 3 (deblur), or G's output channels (segment masks as
    probabilities: 1 for a sigmoid mask, C for a softmax one)."""
    if config.task == "deblur":
        return 3
    return int(config.generator.options.get("out_channels", config.data.num_classes))


def make_modules(config: ml_collections.ConfigDict):
    """(g_module, d_module) from config.generator / config.discriminator, computing in
    train.compute_dtype. Checks D's in_channels against what the step feeds it."""
    from jaxgan import nets  # imported here so that state.py does not need the nets to exist

    dtype = compute_dtype(config)
    g_options = dict(config.generator.options)
    d_options = dict(config.discriminator.options)
    condition = input_channels(config.data)
    expected = d_image_channels(config) + (condition if config.discriminator.conditional else 0)
    if d_options.get("in_channels", expected) != expected:
        what = f"condition ({condition}) + image" if config.discriminator.conditional else "image"
        raise ValueError(
            f"discriminator.options.in_channels is {d_options['in_channels']} but D sees {what} "
            f"channels = {expected} (task {config.task!r}, conditional="
            f"{config.discriminator.conditional})")
    d_options["in_channels"] = expected
    g_module = nets.make_generator(config.generator.name, dtype=dtype, **g_options)
    d_module = nets.make_discriminator(config.discriminator.name, dtype=dtype, **d_options)
    return g_module, d_module


def make_schedule(config: ml_collections.ConfigDict, base_lr: float, updates_per_step: int = 1,
                  count_offset: int = 0) -> Callable[[jax.Array], jax.Array]:
    """Learning rate as a function of the optimizer's update count; the shape is in train steps
    (step = (count + count_offset) // updates_per_step, so D's n_critic updates per step follow the
    same curve, and an optimizer started later (an unfrozen part) can join at the same position).

    The step is first rounded down to a multiple of optim.schedule_period (1 = every step; an epoch
    gives the originals' once-per-epoch scheduler steps). constant: base_lr. linear_decay
    (optax.join_schedules of a constant and an optax.linear_schedule): base_lr until optim.decay_start,
    then linear to optim.min_lr over optim.decay_steps steps (0 = until train.steps) and held there;
    pix2pix is min_lr 0, DeblurGAN-v2's LinearDecay a floor and a slope set by its num_epochs.
    cosine: half a cosine from base_lr (after warmup) to 0 at train.steps. warmup_steps > 0
    multiplies by min(1, (step + 1) / warmup_steps).
    """
    kind = config.optim.schedule
    if kind not in SCHEDULES:
        raise ValueError(f"optim.schedule must be one of {SCHEDULES}, got {kind!r}")
    total = int(config.train.steps)
    warmup = int(config.optim.warmup_steps)
    decay_start = int(config.optim.decay_start)
    decay_steps = int(config.optim.decay_steps) or max(total - decay_start, 1)
    period = int(config.optim.schedule_period)
    if period < 1:
        raise ValueError(f"optim.schedule_period must be >= 1 step, got {period}")
    linear = optax.join_schedules(
        [optax.constant_schedule(1.0),
         optax.linear_schedule(1.0, float(config.optim.min_lr) / base_lr if base_lr else 0.0, decay_steps)],
        [decay_start])

    def schedule(count):
        step = (jnp.asarray(count) + count_offset) // updates_per_step
        step = (step // period * period).astype(jnp.float32)
        if kind == "linear_decay":
            factor = linear(step)
        elif kind == "cosine":
            progress = jnp.clip((step - warmup) / max(total - warmup, 1), 0.0, 1.0)
            factor = 0.5 * (1.0 + jnp.cos(math.pi * progress))
        else:
            factor = jnp.ones_like(step)
        if warmup > 0:
            factor = factor * jnp.minimum(1.0, (step + 1.0) / warmup)
        return base_lr * factor

    return schedule


def make_optimizer(config: ml_collections.ConfigDict, base_lr: float, updates_per_step: int = 1,
                   count_offset: int = 0) -> optax.GradientTransformation:
    """Adam / AdamW with the configured schedule (see make_schedule), after optional global-norm
    clipping."""
    o = config.optim
    schedule = make_schedule(config, base_lr, updates_per_step, count_offset)
    if o.weight_decay > 0:
        opt = optax.adamw(schedule, b1=o.b1, b2=o.b2, weight_decay=o.weight_decay)
    else:
        opt = optax.adam(schedule, b1=o.b1, b2=o.b2)
    if o.grad_clip_norm > 0:
        opt = optax.chain(optax.clip_by_global_norm(o.grad_clip_norm), opt)
    return opt


def d_sample_input(config: ml_collections.ConfigDict, sample_input: np.ndarray) -> np.ndarray:
    """A zero array shaped like D's input for a batch whose `input` is `sample_input` (B, H, W, C)."""
    channels = d_image_channels(config) + (sample_input.shape[-1] if config.discriminator.conditional else 0)
    return np.zeros(sample_input.shape[:-1] + (channels,), np.float32)


def _init_model(module, x, key, tx) -> ModelState:
    params_key, dropout_key = jax.random.split(key)
    variables = module.init({"params": params_key, "dropout": dropout_key}, x, train=False)
    variables = flax.core.unfreeze(variables)
    params = variables.pop("params")
    batch_stats = variables.pop("batch_stats", {})
    return ModelState.create(apply_fn=module.apply, params=params, tx=tx, batch_stats=batch_stats)


def create_state(config: ml_collections.ConfigDict, g_module, d_module, sample_batch: dict,
                 key: jax.Array) -> GANState:
    """Initial GANState. sample_batch: a dict with `input` (B, H, W, C) (only its shape matters);
    key: a uint32[2] PRNG key (jax.random.PRNGKey). Runs eagerly; see parallel.create_sharded_state
    for the placed version."""
    x = jnp.zeros(np.shape(sample_batch["input"]), jnp.float32)
    g_key, d_key, run_key = jax.random.split(key, 3)
    n_critic = int(config.loss.n_critic)
    if n_critic < 1:
        raise ValueError(f"loss.n_critic must be >= 1, got {n_critic}")
    g_tx = make_optimizer(config, config.optim.g_lr)
    d_tx = make_optimizer(config, config.optim.d_lr, n_critic)
    v = config.variants
    if v.freeze_prefixes:  # transfer learning: freeze parts of one model (jaxgan.train.transfer)
        from jaxgan.train import transfer

        if v.transfer_model == "generator":
            g_tx = transfer.with_freezing(lambda offset: make_optimizer(config, config.optim.g_lr, 1, offset),
                                          v.freeze_prefixes, int(v.unfreeze_step))
        elif v.transfer_model == "discriminator":
            d_tx = transfer.with_freezing(lambda offset: make_optimizer(config, config.optim.d_lr, n_critic, offset),
                                          v.freeze_prefixes, int(v.unfreeze_step), n_critic)
        else:
            raise ValueError(f"variants.transfer_model must be one of {transfer.MODELS}, got {v.transfer_model!r}")
    g = _init_model(g_module, x, g_key, g_tx)
    d_x = jnp.asarray(d_sample_input(config, np.zeros(x.shape, np.float32)))
    d = _init_model(d_module, d_x, d_key, d_tx)
    ema = jax.tree.map(jnp.copy, g.params) if config.train.ema_decay > 0 else None
    pool = None
    if int(config.variants.history_size) > 0:
        from jaxgan.train import history

        pool = history.init_pool(int(config.variants.history_size), d_x.shape[1:])
    return GANState(g=g, d=d, ema_params=ema, key=run_key, pool=pool)


def count_params(params) -> int:
    return int(sum(np.prod(np.shape(p)) for p in jax.tree.leaves(params)))
