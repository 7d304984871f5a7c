"""The image-history variant (variants.history_size > 0; pix2pix / CycleGAN's image pool): D's fakes
pass through the pool of jaxgan.train.history once per train step (fold_in(step_key, 4)); the pool
lives in `state.pool`. A pooled fake keeps its own condition; the gradient penalty's interpolation
keeps the current batch's condition."""

from __future__ import annotations

import dataclasses

import jax

from jaxgan.train import history
from jaxgan.train.step_parts import StepConfig, Variant, d_input


@dataclasses.dataclass(frozen=True)
class ImageHistory(Variant):
    size: int

    def d_fakes(self, s: StepConfig, state, batch, output, condition, fake_img, step_key):
        pool, mixed = history.query(state.pool, d_input(s, condition, fake_img), jax.random.fold_in(step_key, 4))
        state = state.replace(pool=pool)
        if s.conditional:
            channels = condition.shape[-1]
            return state, mixed[..., :channels], mixed[..., channels:]
        return state, condition, mixed
