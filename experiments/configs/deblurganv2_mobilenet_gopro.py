"""DeblurGAN-v2 (Kupyn et al. 2019), FPN-MobileNet generator, on GoPro (a folder you provide).

FPN over a MobileNetV2 backbone with a global residual, double-scale discriminator (a 70x70 patch D
plus a full-image D), relativistic average LSGAN (RaGAN-LS), loss 0.5 x MSE + 0.006 x perceptual
(VGG16 conv3_3) + 0.01 x adversarial, Adam 1e-4 with linear decay, batch 1, 256 crops.
Published: 28.17 dB / SSIM 0.925 on GoPro test, 0.06 s per 1280x720 frame on a GPU.

    jaxgan train --config experiments/configs/deblurganv2_mobilenet_gopro.py --workdir runs/dgv2 \
        --config.data.path=/data/GOPRO_Large
"""

import ml_collections

from jaxgan.config import base_config

EPOCH = 2103  # GoPro train pairs


def get_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.task = "deblur"
    c.data.name = "folder_deblur"
    c.data.path = ""
    c.data.crop_size = 256
    c.data.batch_size = 1
    c.data.eval_size = 0
    c.data.eval_batch_size = 1
    c.data.rot90 = False
    c.generator.name = "fpn_mobilenet"
    c.generator.options = ml_collections.ConfigDict(dict(in_channels=3, out_channels=3))
    c.discriminator.name = "double_scale"
    c.discriminator.conditional = False
    c.discriminator.options = ml_collections.ConfigDict(dict(in_channels=3, base_width=64, norm="instance"))
    c.loss.adversarial = "ragan_ls"
    c.loss.adversarial_weight = 0.01
    c.loss.pixel = "l2"
    c.loss.pixel_weight = 0.5
    c.loss.perceptual_weight = 0.006
    c.loss.perceptual_layers = ("conv3_3",)
    c.optim.g_lr = c.optim.d_lr = 1e-4
    c.optim.b1, c.optim.b2 = 0.5, 0.999
    c.optim.schedule = "linear_decay"
    c.train.steps = 200 * EPOCH
    c.optim.decay_start = 0
    c.train.eval_every = 10 * EPOCH
    c.train.checkpoint_every = EPOCH
    c.train.log_every = 100
    c.train.best_metric = "psnr"
    return c
