"""The shipped deblurring model's recipe: deblur_pretrained's two stages trained on `leaves_blur`, whose
training images do not run out of variety (dead-leaves scenes mixed with crops of 9 photos, camera
shake / defocus / noise / JPEG from jaxgan.data.blur's camera model).

Front end (classical, jaxgan/blind_deconvolution.py, computed once per example and cached on disk, so
the training pool is the dataset's train split: config.data.num_train_examples images of 256x256 with
their front-end channels, from which every step cuts fresh random 128x128 crops, flips and rotations):
blind kernel estimation, then three non-blind deconvolutions with gradient-prior weights 1e-2 (the
baseline `prior_*`), 1e-3 and 1e-1. Learned stage: NAFNet-style U-Net (space-to-depth 4, width 32) on
[blurred, the three deconvolutions] (12 channels), residual on the 1e-2 one; L1 x 100 + LSGAN x 0.2 from a
conditional PatchGAN (pix2pix's recipe, junyanz/pytorch-CycleGAN-and-pix2pix models/pix2pix_model.py,
with LSGAN as its --gan_mode lsgan), Adam 5e-4 after 100 warm-up steps, EMA 0.995 of G's weights.
The best checkpoint is chosen on leaves_blur's val split (scenes of another stream and crops of the
motorcycle photos, never trained on); the test split (chelsea, coffee, rocket) is evaluated once.

    jaxgan train --config experiments/configs/deblur_leaves.py --workdir /work/runs/deblur_leaves
    # the ablation: the same run without the adversarial term
    jaxgan train --config experiments/configs/deblur_leaves.py --workdir /work/runs/deblur_leaves_noadv \\
        --config.loss.adversarial_weight=0
"""

import ml_collections

from jaxgan.config import base_config


def get_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.task = "deblur"
    c.data.name = "leaves_blur"
    c.data.num_train_examples = 1536
    c.data.synthetic_fraction = 0.5
    c.data.prior = "blind_deconv"
    c.data.prior_options.deconv_weights = (1e-2, 1e-3, 1e-1)
    c.data.crop_size = 128
    c.data.eval_size = 256
    c.data.batch_size = 8
    c.data.eval_batch_size = 16
    c.generator.name = "nafnet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=12, out_channels=3, residual_from=3, base_width=32, depth=3, blocks=1, middle_blocks=2,
        space_to_depth=4, norm="layer"))
    c.discriminator.name = "patchgan"
    c.discriminator.conditional = True
    c.discriminator.options = ml_collections.ConfigDict(dict(
        in_channels=15, base_width=16, num_layers=2, norm="none"))
    c.loss.adversarial = "lsgan"
    c.loss.adversarial_weight = 0.2
    c.loss.pixel = "l1"
    c.loss.pixel_weight = 100.0
    c.optim.g_lr = 5e-4
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.9
    c.optim.schedule = "constant"
    c.optim.warmup_steps = 100
    c.train.steps = 30000  # stopped (SIGTERM checkpoints) and exported from the best checkpoint
    c.train.ema_decay = 0.995
    c.train.log_every = 50
    c.train.eval_every = 250
    c.train.checkpoint_every = 250
    c.train.eval_lpips = False  # `jaxgan evaluate` reports LPIPS; in-run evaluations stay cheap
    c.train.best_metric = "psnr"
    return c
