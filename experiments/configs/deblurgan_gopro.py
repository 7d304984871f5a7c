"""DeblurGAN (Kupyn et al. 2018) on the GoPro dataset (a GoPro-layout folder you provide).

ResNet generator, 9 blocks, instance norm, learn_residual (output = clip(blurred + G(blurred))),
unconditional 70x70 PatchGAN critic, WGAN-GP (lambda 10) with 5 critic steps per G step, perceptual
loss on VGG16 conv3_3 x 100, Adam 1e-4 beta1 0.5, batch 1, random 256 crops, 150 epochs + 150 of
linear decay. Published: 28.7 dB PSNR on GoPro test (corrected figure).

    jaxgan train --config experiments/configs/deblurgan_gopro.py --workdir runs/deblurgan \
        --config.data.path=/data/GOPRO_Large
"""

import ml_collections

from jaxgan.config import base_config

EPOCH = 2103  # GoPro train pairs


def get_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.task = "deblur"
    c.data.name = "folder_deblur"
    c.data.path = ""  # set on the command line: --config.data.path=/data/GOPRO_Large
    c.data.train_split = "train"
    c.data.eval_split = "test"
    c.data.crop_size = 256
    c.data.batch_size = 1
    c.data.eval_size = 0  # full 1280x720 frames
    c.data.eval_batch_size = 1
    c.data.rot90 = False
    c.generator.name = "resnet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=3, num_blocks=9, base_width=64, norm="instance",
        learn_residual=True, upsample="transpose"))
    c.discriminator.name = "patchgan"
    c.discriminator.conditional = False
    c.discriminator.options = ml_collections.ConfigDict(dict(
        in_channels=3, base_width=64, num_layers=3, norm="instance"))
    c.loss.adversarial = "wgan"
    c.loss.gradient_penalty = "wgan_gp"
    c.loss.gradient_penalty_weight = 10.0
    c.loss.n_critic = 5
    c.loss.pixel = "none"
    c.loss.perceptual_weight = 100.0
    c.loss.perceptual_layers = ("conv3_3",)
    c.optim.g_lr = c.optim.d_lr = 1e-4
    c.optim.b1, c.optim.b2 = 0.5, 0.999
    c.optim.schedule = "linear_decay"
    c.train.steps = 300 * EPOCH
    c.optim.decay_start = 150 * EPOCH
    c.train.eval_every = 10 * EPOCH
    c.train.checkpoint_every = EPOCH
    c.train.log_every = 100
    c.train.best_metric = "psnr"
    return c
