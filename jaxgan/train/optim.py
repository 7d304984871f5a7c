"""Optimizers of the training state: optax Adam / AdamW, learning-rate schedules and freezing.

Optimizers are optax Adam (AdamW when optim.weight_decay > 0) with betas (optim.b1, optim.b2), a
learning-rate schedule in train steps (constant | linear_decay | cosine, times an optional linear
warmup) and optional gradient clipping by global norm.

Freezing (variants.freeze_prefixes, unfreeze_step): optax.multi_transform sends the frozen leaves
to `start_at(start, fresh optimizer)`: exactly zero updates before unfreeze_step, and the
optimizer's state (Adam's moments AND its count) held at its initial value until then, so at
unfreezing those leaves start like a new Adam (bias correction from step 1: first |update| / lr
about 1, not the 2-10x of moments that were fed zeros while the count ran on). Its learning-rate
schedule is offset by the start, so it joins the same schedule position as the trained leaves.
unfreeze_step 0 means frozen for the whole run (optax.set_to_zero). A zero update leaves a param
bitwise unchanged. With restart="model" (variants.unfreeze_restart), the whole model's optimizer is
replaced at unfreezing by a new one whose state and schedule start from zero, as DeblurGAN-v2 does
(train.py:35-40 at adb9e7d: a new optimizer and scheduler for all of G at the warm-up epoch).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgan.trees import path_name

SCHEDULES = ("constant", "linear_decay", "cosine")
MODELS = ("generator", "discriminator")  # what variants.transfer_model names
RESTARTS = ("unfrozen", "model")  # what variants.unfreeze_restart names: who gets a new optimizer


def selected(name: str, prefixes) -> bool:
    """True when a parameter path starts with one of `prefixes` (all paths when there are none)."""
    return not prefixes or any(name.startswith(p) for p in prefixes)


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
    linear = optax.join_schedules(
        [optax.constant_schedule(1.0),
         optax.linear_schedule(1.0, float(config.optim.min_lr) / base_lr if base_lr else 0.0, decay_steps)],
        [decay_start])
    cosine = optax.cosine_decay_schedule(1.0, max(total - warmup, 1))  # from the end of the warmup
    # min(1, (step + 1) / warmup): linear from 1 / warmup at step 0 to 1 at step warmup - 1
    warm = optax.linear_schedule(1.0 / warmup, 1.0, warmup - 1) if warmup > 1 else None

    def schedule(count):
        step = (jnp.asarray(count) + count_offset) // updates_per_step
        step = (step // period * period).astype(jnp.float32)
        if kind == "linear_decay":
            factor = linear(step)
        elif kind == "cosine":
            factor = cosine(jnp.maximum(step - warmup, 0.0))
        else:
            factor = jnp.ones_like(step)
        if warm is not None:
            factor = factor * warm(step)
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


class StartState(NamedTuple):
    count: jax.Array  # updates seen so far (int32)
    inner: Any  # the wrapped optimizer's state, at its initial value until `start`


def start_at(start: int, inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """`inner` from the `start`-th update on (0-based count >= start), as if created then: zero
    updates before, and inner's state (moments, count) kept at its initial value until then."""
    def init(params):
        return StartState(count=jnp.zeros((), jnp.int32), inner=inner.init(params))

    def update(updates, state, params=None):
        on = state.count >= start
        new_updates, new_inner = inner.update(updates, state.inner, params)
        keep = lambda new, old: jnp.where(on, new, old)  # noqa: E731
        inner_state = jax.tree.map(keep, new_inner, state.inner)
        updates = jax.tree.map(lambda u: jnp.where(on, u, jnp.zeros_like(u)), new_updates)
        return updates, StartState(count=state.count + 1, inner=inner_state)

    return optax.GradientTransformation(init, update)


class SwitchState(NamedTuple):
    before: Any  # the optimizer used until the switch (held once it is over)
    after: StartState  # the one used from the switch on, started then


def switch_at(start: int, before: optax.GradientTransformation,
              after: optax.GradientTransformation) -> optax.GradientTransformation:
    """`before` for the first `start` updates, then `after` as if created at that update (its
    state and its schedule's count start from zero then)."""
    after = start_at(start, after)

    def init(params):
        return SwitchState(before=before.init(params), after=after.init(params))

    def update(updates, state, params=None):
        on = state.after.count >= start
        before_updates, before_state = before.update(updates, state.before, params)
        after_updates, after_state = after.update(updates, state.after, params)
        updates = jax.tree.map(lambda a, b: jnp.where(on, a, b), after_updates, before_updates)
        before_state = jax.tree.map(lambda old, new: jnp.where(on, old, new), state.before, before_state)
        return updates, SwitchState(before=before_state, after=after_state)

    return optax.GradientTransformation(init, update)


def freeze_labels(params, prefixes) -> Any:
    """The params tree with 'frozen' on leaves whose path starts with a prefix, 'train' elsewhere."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "frozen" if selected(path_name(path), tuple(prefixes)) else "train", params)


def with_freezing(make_tx: Callable[[int], optax.GradientTransformation], prefixes, unfreeze_step: int,
                  updates_per_step: int = 1, restart: str = "unfrozen") -> optax.GradientTransformation:
    """make_tx(0) for the trained leaves; the leaves under `prefixes` frozen until train step
    unfreeze_step (0 = always), then trained by a fresh make_tx(start) (its schedule counts from
    the update count `start`) with restart="unfrozen", or, with restart="model", the whole model
    by a fresh make_tx(0) from then on (state and schedule from zero; see the module docstring)."""
    if unfreeze_step < 0:
        raise ValueError(f"variants.unfreeze_step must be >= 0, got {unfreeze_step}")
    if restart not in RESTARTS:
        raise ValueError(f"variants.unfreeze_restart must be one of {RESTARTS}, got {restart!r}")
    prefixes = tuple(prefixes)
    labels = lambda params: freeze_labels(params, prefixes)  # noqa: E731
    if unfreeze_step == 0:
        return optax.multi_transform({"train": make_tx(0), "frozen": optax.set_to_zero()}, labels)
    start = int(unfreeze_step) * int(updates_per_step)
    if restart == "model":
        frozen_phase = optax.multi_transform({"train": make_tx(0), "frozen": optax.set_to_zero()}, labels)
        return switch_at(start, frozen_phase, make_tx(0))
    return optax.multi_transform({"train": make_tx(0), "frozen": start_at(start, make_tx(start))}, labels)
