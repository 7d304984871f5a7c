"""pix2pix (Isola et al. 2017) as a segmenter on Oxford-IIIT Pet: image -> pet / background mask.

Follows junyanz/pytorch-CycleGAN-and-pix2pix (cited from its fork Bleuje/pytorch-CycleGAN-and-pix2pix,
same files) step for step; docs/fidelity.md lists every item with its test:
- U-Net 256 (8 downsamplings, width 64, batch norm, dropout 0.5 in the inner decoder blocks),
  conditional 70x70 PatchGAN on concat(image, mask) (models/networks.py UnetGenerator, NLayerDiscriminator).
- Vanilla GAN + 100 x mask loss (L1 in the original, the image-to-image loss; here the mask's
  sigmoid cross-entropy, the one deliberate change of task). D's loss x 0.5: `loss.d_loss_weight`
  (models/pix2pix_model.py backward_D: (loss_D_fake + loss_D_real) * 0.5).
- Image pool 0: `variants.history_size` (pix2pix_model.py modify_commandline_options: pool_size=0).
- Adam 2e-4 betas (0.5, 0.999), batch 1 (options/train_options.py).
- Every pair resized to 286 x 286 (bicubic; masks nearest), then a random 256 crop and a random
  horizontal flip: `data.load_size` (options/base_options.py loadSize 286, fineSize 256;
  data/base_dataset.py get_transform, data/aligned_dataset.py __getitem__).
- 100 epochs at the base rate, then 100 of linear decay, the rate stepped once per epoch with
  factor 1 - max(0, e + 1 - 100) / 101 at epoch e (models/networks.py get_scheduler lambda_rule):
  decay_start 99 epochs, decay_steps 101 epochs, schedule_period 1 epoch.
- Test time as test.py without --eval: dropout on and batch norm on the test batch's statistics,
  `eval.train_mode_inference` (test.py: model.eval() only if opt.eval).
Remaining differences: evaluation crops the centre 256 x 256 of the image resized to a 256 short
side (test_options.py resizes the whole image to 256 x 256); masks instead of RGB targets.
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
    c.data.load_size = (286, 286)
    c.data.crop_size = 256
    c.data.scale_jitter = 0.0
    c.data.batch_size = 1
    c.data.eval_size = 256
    c.data.eval_batch_size = 1  # test.py:41: batch 1, so train-mode batch norm sees one image
    c.data.flip = True
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
    c.loss.d_loss_weight = 0.5
    c.loss.mask = "sigmoid_ce"
    c.loss.mask_weight = 100.0
    c.loss.pixel = "none"
    c.variants.history_size = 0
    c.optim.g_lr = c.optim.d_lr = 2e-4
    c.optim.b1, c.optim.b2 = 0.5, 0.999
    c.optim.schedule = "linear_decay"
    c.train.steps = 200 * EPOCH
    c.optim.decay_start = 99 * EPOCH
    c.optim.decay_steps = 101 * EPOCH
    c.optim.schedule_period = EPOCH
    c.eval.train_mode_inference = True
    c.train.eval_every = 5 * EPOCH
    c.train.checkpoint_every = EPOCH
    c.train.log_every = 100
    c.train.best_metric = "mean_iou"
    return c
