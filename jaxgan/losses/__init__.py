"""jaxgan.losses: pure loss functions with scalar outputs.

Adversarial pairs (`get_adversarial`) and the relativistic kinds' pool of D outputs (`logit_pool`), gradient penalties (`wgan_gp`, `wgan_gp_deblurgan`, `r1`), pixel losses
(`get_pixel_loss`), mask losses (`get_mask_loss`) and the VGG16 perceptual loss (`perceptual_loss`).
"""

from jaxgan.losses import logit_pool
from jaxgan.losses.adversarial import ADVERSARIAL_KINDS, AdversarialLoss, get_adversarial
from jaxgan.losses.penalty import r1, wgan_gp, wgan_gp_deblurgan
from jaxgan.losses.perceptual import perceptual_loss
from jaxgan.losses.pixel import (
    CHARBONNIER_EPS,
    MASK_LOSSES,
    PIXEL_LOSSES,
    ce_dice_loss,
    charbonnier_loss,
    dice_loss,
    get_mask_loss,
    get_pixel_loss,
    l1_loss,
    l2_loss,
    sigmoid_ce_loss,
    softmax_ce_loss,
)

__all__ = [
    "ADVERSARIAL_KINDS", "AdversarialLoss", "get_adversarial", "logit_pool",
    "wgan_gp", "wgan_gp_deblurgan", "r1",
    "perceptual_loss",
    "CHARBONNIER_EPS", "PIXEL_LOSSES", "MASK_LOSSES", "get_pixel_loss", "get_mask_loss",
    "l1_loss", "l2_loss", "charbonnier_loss",
    "sigmoid_ce_loss", "softmax_ce_loss", "dice_loss", "ce_dice_loss",
]
