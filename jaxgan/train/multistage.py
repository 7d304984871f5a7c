"""The multi-stage G variant (generator.name 'multistage'): G runs its `stages` method; D and the
adversarial and perceptual terms see the last stage; every earlier stage adds stage_loss_weight x
its pixel / mask loss against the target resized to its size (deep supervision; metrics g_stage0, ...)."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jaxgan.train.step_parts import StepConfig, Variant, resize_target, supervised_loss


@dataclasses.dataclass(frozen=True)
class MultiStage(Variant):
    stage_loss_weight: float = 1.0
    g_method = "stages"

    def g_loss(self, s: StepConfig, d, output, labelled, batch, loss_nets, step_key, step):
        """The supervised loss of every stage but the last (no perceptual term) against the target resized
        to the stage's size, times stage_loss_weight; metrics g_stageK = the unweighted loss."""
        target = batch["target"]
        total = jnp.zeros((), jnp.float32)
        metrics = {}
        for k, out in enumerate(labelled[:-1]):
            loss, parts = supervised_loss(s, out, resize_target(s, target, *out.shape[1:3]), loss_nets,
                                          perceptual=False, total=jnp.zeros((), jnp.float32))
            total = total + self.stage_loss_weight * loss
            metrics[f"g_stage{k}"] = parts.get("g_pixel", parts.get("g_mask", loss))  # unweighted
        return total, metrics
