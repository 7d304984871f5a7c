"""pix2pix (Isola et al. 2017) as a segmenter on Oxford-IIIT Pet: image -> pet / background mask.

U-Net 256 (8 downsamplings, width 64, batch norm, dropout), conditional 70x70 PatchGAN on
concat(image, mask), vanilla GAN + 100 x mask loss, Adam 2e-4 betas (0.5, 0.999), batch 1,
random 256 crops of images resized to 286, 100 epochs at constant rate + 100 epochs of linear decay.
Needs the prepared tfds dataset: see README ("Standard datasets").
"""

import ml_collections

from jaxgan.config import base_config

EPOCH = 3680  # oxford_iiit_pet train split


def get_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.task = "segment"
    c.data.name = "oxford_iiit_pet"
    c.data.num_classes = 2
    c.data.crop_size = 256
    c.data.scale_jitter = 0.0
    c.data.batch_size = 1
    c.data.eval_size = 256
    c.data.eval_batch_size = 8
    c.data.rot90 = False
    c.generator.name = "unet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=1, depth=8, base_width=64, norm="batch", dropout=True,
        out_activation="none", upsample="transpose"))
    c.discriminator.name = "patchgan"
    c.discriminator.conditional = True
    c.discriminator.options = ml_collections.ConfigDict(dict(
        in_channels=4, base_width=64, num_layers=3, norm="batch"))
    c.loss.adversarial = "vanilla"
    c.loss.mask = "sigmoid_ce"
    c.loss.mask_weight = 100.0
    c.loss.pixel = "none"
    c.optim.g_lr = c.optim.d_lr = 2e-4
    c.optim.b1, c.optim.b2 = 0.5, 0.999
    c.optim.schedule = "linear_decay"
    c.train.steps = 200 * EPOCH
    c.optim.decay_start = 100 * EPOCH
    c.train.eval_every = 5 * EPOCH
    c.train.checkpoint_every = EPOCH
    c.train.log_every = 100
    c.train.best_metric = "mean_iou"
    return c
