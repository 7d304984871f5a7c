"""Multi-stage (coarse-to-fine) deblurring on the built-in `photo_blur`: two small residual U-Nets,
the first at half resolution, the second refining at full resolution from the blurred image and the
upsampled first result; L1 on both stages (deep supervision, the coarse one against the half-size
sharp image), LSGAN from a conditional PatchGAN on the final output. Otherwise as deblur_quick.

    jaxgan train --config experiments/configs/multistage_deblur.py --workdir runs/multistage_deblur
"""

import ml_collections

from jaxgan.config import base_config


def get_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.task = "deblur"
    c.data.name = "photo_blur"
    c.data.blur_strength = "realistic"
    c.data.crop_size = 64
    c.data.eval_size = 128
    c.data.batch_size = 16
    c.data.eval_batch_size = 16
    c.generator.name = "multistage"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=3, out_activation="tanh", num_stages=2, stage="unet",
        stage_options=dict(depth=4, base_width=24, norm="none", dropout=False, upsample="resize",
                           learn_residual=True)))
    c.discriminator.name = "patchgan"
    c.discriminator.conditional = True
    c.discriminator.options = ml_collections.ConfigDict(dict(
        in_channels=6, base_width=32, num_layers=3, norm="none"))
    c.loss.adversarial = "lsgan"
    c.loss.pixel = "l1"
    c.loss.pixel_weight = 100.0
    c.variants.stage_loss_weight = 0.5
    c.optim.g_lr = 1e-3
    c.optim.d_lr = 2e-4
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 100
    c.train.steps = 3000
    c.train.log_every = 100
    c.train.eval_every = 1000
    c.train.checkpoint_every = 1000
    c.train.best_metric = "psnr"
    return c
