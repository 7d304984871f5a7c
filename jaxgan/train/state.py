"""The training state: G's and D's flax TrainStates, an optional EMA of G's params, the RNG key.

`GANState` is one pytree, so one jitted step takes it and returns it, one checkpoint saves it and
one sharding (replicated) places it. `GANState.step` (= G's update count) is the number of finished
train steps; D's own count is `n_critic` times that.

Optimizers and schedules are jaxgan.train.optim's. Params and optimizer state are float32; the
modules compute in train.compute_dtype.
"""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import struct
from flax.training import train_state

from jaxgan import nets
from jaxgan.data.prior import input_channels
from jaxgan.losses import get_adversarial, logit_pool
from jaxgan.task import get_task
from jaxgan.train import history
from jaxgan.train.optim import MODELS, make_optimizer, with_freezing
from jaxgan.trees import count_params  # noqa: F401  (re-exported: parameter counts of a state's trees)

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
    logit_pool: Any = None  # recent D outputs centring ragan / ragan_ls (jaxgan.losses.logit_pool), or None
    ema_batch_stats: Any = None  # EMA of g.batch_stats beside ema_params (train.ema_batch_stats), or None

    @property
    def step(self) -> jax.Array:
        """Finished train steps (int32 scalar)."""
        return self.g.step

    def generator_variables(self, use_ema: bool = True) -> dict:
        """The variables to apply G with for inference: EMA params (and EMA batch-norm statistics,
        when kept) when use_ema; the live ones otherwise."""
        if not use_ema or self.ema_params is None:
            return model_variables(self.g.params, self.g.batch_stats)
        stats = self.g.batch_stats if self.ema_batch_stats is None else self.ema_batch_stats
        return model_variables(self.ema_params, stats)


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


def d_image_channels(config: ml_collections.ConfigDict, task=None) -> int:
    """Channels of the image D judges: 3 (deblur), or G's output channels (segment masks as
    probabilities: 1 for a sigmoid mask, C for a softmax one). `task`: config.task's object when
    the caller has resolved it."""
    return (task or get_task(config.task)).d_image_channels(config)


def make_modules(config: ml_collections.ConfigDict, task=None):
    """(g_module, d_module) from config.generator / config.discriminator, computing in
    train.compute_dtype. Checks D's in_channels against what the step feeds it. `task`: config.task's
    object when the caller has resolved it (jaxgan.train.build)."""
    dtype = compute_dtype(config)
    g_options = dict(config.generator.options)
    d_options = dict(config.discriminator.options)
    condition = input_channels(config.data)
    expected = d_image_channels(config, task) + (condition if config.discriminator.conditional else 0)
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
    g_tx = make_optimizer(config, config.optim.g_lr)
    d_tx = make_optimizer(config, config.optim.d_lr, n_critic)
    variants = config.variants
    if variants.freeze_prefixes:  # transfer learning: freeze parts of one model (jaxgan.train.optim)
        if variants.transfer_model == "generator":
            g_tx = with_freezing(lambda offset: make_optimizer(config, config.optim.g_lr, 1, offset),
                                 variants.freeze_prefixes, int(variants.unfreeze_step),
                                 restart=variants.unfreeze_restart)
        elif variants.transfer_model == "discriminator":
            d_tx = with_freezing(lambda offset: make_optimizer(config, config.optim.d_lr, n_critic, offset),
                                 variants.freeze_prefixes, int(variants.unfreeze_step), n_critic,
                                 restart=variants.unfreeze_restart)
        else:
            raise ValueError(f"variants.transfer_model must be one of {MODELS}, got {variants.transfer_model!r}")
    g = _init_model(g_module, x, g_key, g_tx)
    channels = d_sample_input(config, np.zeros((1, 1, 1, x.shape[-1]), np.float32)).shape[-1]
    d_x = jnp.zeros(x.shape[:-1] + (channels,), jnp.float32)  # (abstract under eval_shape: no host copy)
    d = _init_model(d_module, d_x, d_key, d_tx)
    ema = jax.tree.map(jnp.copy, g.params) if config.train.ema_decay > 0 else None
    ema_stats = (jax.tree.map(jnp.copy, g.batch_stats)
                 if ema is not None and config.train.ema_batch_stats and g.batch_stats else None)
    pool = None
    if int(config.variants.history_size) > 0:
        pool = history.init_pool(int(config.variants.history_size), d_x.shape[1:])
    return GANState(g=g, d=d, ema_params=ema, key=run_key, pool=pool, logit_pool=_logit_pool(config, d, d_x),
                    ema_batch_stats=ema_stats)


def _logit_pool(config: ml_collections.ConfigDict, d: ModelState, d_x):
    """An empty pool of D's outputs for ragan / ragan_ls with loss.relativistic_centres 'pool', else None."""
    loss = config.loss
    if not get_adversarial(loss.adversarial).needs_real or loss.get("relativistic_centres", "batch") != "pool":
        return None
    outputs = jax.eval_shape(lambda p, x: d.apply_fn(model_variables(p, d.batch_stats), x, train=False), d.params, d_x)
    return logit_pool.init(len(jax.tree_util.tree_leaves(outputs)), int(loss.relativistic_pool_size))

