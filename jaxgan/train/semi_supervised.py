"""The semi-supervised variant (Hung et al. 2018, hfslyc/AdvSemiSeg; task segment): the batch also
holds `unlabelled_input`; G runs once over concat([input, unlabelled_input]); D's fakes are the
labelled and (semi_d_unlabelled) the unlabelled predictions, its reals the labelled masks (one mean
over each); G's loss adds semi_adversarial_weight x the adversarial loss of the unlabelled
predictions from step 0 and, from step semi_start_step on, semi_self_training_weight x the
confidence-masked self-training CE (jaxgan.losses.semi); D's pass on the unlabelled rows uses
fold_in(step_key, 3)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxgan.losses import semi
from jaxgan.train.step_parts import StepConfig, Variant, d_fake_logits, fake_image, final_output


@dataclasses.dataclass(frozen=True)
class SemiSupervised(Variant):
    adversarial_weight: float = 0.0
    self_training_weight: float = 0.0
    threshold: float = 0.2
    start_step: int = 0
    d_unlabelled: bool = True

    def g_input(self, batch, x):
        return jnp.concatenate([x, batch["unlabelled_input"]], 0)

    def labelled(self, output, batch):
        n = batch["input"].shape[0]
        return jax.tree.map(lambda o: o[:n], output)

    def d_fakes(self, s: StepConfig, state, batch, output, condition, fake_img, step_key):
        """The unlabelled rows' fakes after the labelled ones (AdvSemiSeg train.py D_remain:
        pred = cat(pred, pred_remain)) when semi_d_unlabelled."""
        if not self.d_unlabelled:
            return state, condition, fake_img
        n = batch["input"].shape[0]
        fake_u = jax.lax.stop_gradient(fake_image(s, final_output(output)[n:]))
        condition = jnp.concatenate([condition, batch["unlabelled_input"].astype(condition.dtype)], 0)
        return state, condition, jnp.concatenate([fake_img, fake_u], 0)

    def g_loss(self, s: StepConfig, d, output, labelled, batch, loss_nets, step_key, step):
        """Hung et al.'s unlabelled terms: adversarial_weight x adversarial loss from step 0 +
        self_training_weight x masked self-training CE from step start_step on (AdvSemiSeg
        train.py: semi_start_adv 0, semi_start 5000)."""
        n = batch["input"].shape[0]
        logits_u = final_output(output)[n:]
        d_logits_u = d_fake_logits(s, d, batch["unlabelled_input"], fake_image(s, logits_u),
                                   jax.random.fold_in(step_key, 3))
        adv_u = s.adversarial_loss.g_loss(None, d_logits_u)
        self_training, selected = semi.self_training_loss(logits_u, d_logits_u, self.threshold)
        on = (jnp.asarray(step) >= self.start_step).astype(jnp.float32)
        total = self.adversarial_weight * adv_u + on * self.self_training_weight * self_training
        return total, {"g_semi_adv": adv_u, "g_semi_ce": self_training, "semi_selected": selected}
