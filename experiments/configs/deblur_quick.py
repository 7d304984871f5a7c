"""(docstring rewritten after the measured run)"""

import ml_collections

from jaxgan.config import base_config


def get_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.task = "deblur"
    c.data.name = "photo_blur"
    c.data.blur_strength = "realistic"
    c.data.prior = "blind_deconv"
    c.data.crop_size = 128
    c.data.eval_size = 256
    c.data.batch_size = 8
    c.data.eval_batch_size = 16
    c.generator.name = "nafnet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=6, out_channels=3, residual_from=3, base_width=32, depth=3, blocks=1, middle_blocks=2,
        space_to_depth=4, norm="layer"))
    c.discriminator.name = "patchgan"
    c.discriminator.conditional = True
    c.discriminator.options = ml_collections.ConfigDict(dict(
        in_channels=9, base_width=16, num_layers=2, norm="none"))
    c.loss.adversarial = "lsgan"
    c.loss.adversarial_weight = 0.2
    c.loss.pixel = "l1"
    c.loss.pixel_weight = 100.0
    c.optim.g_lr = 1e-3
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.9
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 50
    c.train.steps = 500
    c.train.log_every = 50
    c.train.eval_every = 500
    c.train.checkpoint_every = 500
    c.train.eval_lpips = False  # `jaxgan evaluate` reports LPIPS; in-run evaluations stay cheap
    c.train.best_metric = "psnr"
    return c
