"""Deblurring U-Net on `photo_blur` (the source run of transfer_deblur_to_seg.py): a pix2pix-style U-Net
(5 levels, width 32, no norm, resize-conv upsampling) predicting the residual, on 64x64 crops,
L1 x 100 + LSGAN from a conditional PatchGAN, Adam with warm-up and cosine decay. Its encoder has the
shapes of seg_quick's U-Net, so transfer_deblur_to_seg.py can start from it.

    jaxgan train --config experiments/configs/deblur_unet.py --workdir runs/deblur_unet
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
    c.generator.name = "unet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=3, depth=5, base_width=32, norm="none", dropout=False,
        upsample="resize", learn_residual=True))
    c.discriminator.name = "patchgan"
    c.discriminator.conditional = True
    c.discriminator.options = ml_collections.ConfigDict(dict(
        in_channels=6, base_width=32, num_layers=3, norm="none"))
    c.loss.adversarial = "lsgan"
    c.loss.adversarial_weight = 1.0
    c.loss.pixel = "l1"
    c.loss.pixel_weight = 100.0
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
