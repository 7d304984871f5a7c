"""DeblurGAN-v2 (Kupyn et al. 2019), FPN-MobileNet generator, on GoPro (a folder you provide).

Follows VITA-Group/DeblurGANv2 as released (commit adb9e7d, 2019-09, before the 2022 rewrite of
config/config.yaml); docs/fidelity.md lists every item with its test:
- FPN over a MobileNetV2 backbone with a global residual (models/fpn_mobilenet.py), the backbone
  initialised from ImageNet weights (fpn_mobilenet.py:84-87 loads mobilenetv2.pth.tar) and frozen for
  the first 3 epochs (:112-113 requires_grad False; config.yaml:42 warmup_num 3; train.py:35-38 calls
  netG.module.unfreeze() at that epoch): `variants.transfer_from='imagenet:mobilenet_v2'`
  (+ `variants.transfer_file`, the file you supply), `variants.freeze_prefixes=('backbone/',)`,
  `variants.unfreeze_step` = 3 epochs; at unfreezing train.py:37-40 builds a new optimizer and
  scheduler for the whole G (the head's Adam restarts, G's decay runs 3 epochs behind D's):
  `variants.unfreeze_restart='model'` (jaxgan.train.optim.switch_at). The G follows d76d9c6,
  the same day's fix of adb9e7d's fpn_mobilenet.py (norm passed to the FPN, head width 64).
- Double-scale D (a 3-layer patch PatchGAN and a 5-layer "full" one, instance norm, padding 2:
  models/networks.py NLayerDiscriminator padw = 2, get_fullD n_layers 5), the two losses averaged
  (adversarial_trainer.py:79-94 DoubleGAN). RaGAN-LS as in the paper (models/losses.py:175-215
  RelativisticDiscLossLS; the released config.yaml:56 names 'wgan-gp'), centred as the original on
  the means of a pool of each D's last 50 outputs (util/image_pool.py:8-33, ImagePool(50) at
  losses.py:183-184; stored from `.data`, so the means are constants: no gradient through them, in
  D's loss or G's; D adds its outputs before querying, G queries only): `loss.relativistic_centres=
  'pool'`, `loss.relativistic_pool_size=50`. The batch's means (Jolicoeur-Martineau's form,
  differentiated through) are the named option 'batch', off here.
- Initialisation: PyTorch's default (kaiming_uniform(a=sqrt(5)), bias U(+-1/sqrt(fan_in))) for the
  FPN head and both D's, which the original never re-initialises (models/fpn_mobilenet.py,
  models/networks.py have no init; the backbone comes from ImageNet): `weight_init='torch'`.
- Content loss 0.5 x MSE + 0.006 x VGG19 conv3_3 perceptual (features[:15]), both on
  ImageNet-normalised images (models/losses.py PerceptualLoss.get_loss normalises item 0 of the
  batch in place before both terms; the batch is 1): `loss.pixel_input='imagenet'`,
  `loss.perceptual_input='imagenet'`, `loss.perceptual_net='vgg19'` (the ImageNet VGG19 weights you
  supply; 'vgg16' runs offline).
- Adversarial weight 0.001 (config.yaml adv_lambda) on G's term, and D's loss x 0.001 too
  (train.py _update_d: loss_D = adv_lambda * loss_d): `loss.d_loss_weight`.
- Adam lr 1e-4 with PyTorch's default betas (0.9, 0.999) (train.py _get_optim: optim.Adam(params, lr)).
- Schedule: LinearDecay (schedulers.py): the base rate for 50 epochs, then base - (base - min_lr) /
  num_epochs x (epoch - 50), min_lr 1e-7, num_epochs 200, stepped once per epoch of 1000 batches
  (config.yaml train_batches_per_epoch; the loop takes 1001): decay_start 50 epochs, decay_steps
  200 epochs (so it ends at 25.6 % of the base, as released), schedule_period 1 epoch.
- Augmentation (aug.py, config.yaml scope 'geometric' + corrupt list): `data.augment='deblurganv2'`
  (jaxgan.data.deblurganv2_aug; OpticalDistortion and the elastic field of ElasticTransform are
  approximated as its docstring says); no other flip / rot90. Batch 1, random 256 crops of the
  native frames (no resize; preload_size 0).
- Test time in train mode, as predict.py (model.train(True)): `eval.train_mode_inference`.
- Channel order: RGB throughout (torchvision's VGG19 / MobileNetV2 order, and what predict.py:86 and
  test_metrics.py:38 feed). The original's training reads frames with cv2.imread (dataset.py:43-48)
  and never converts them, so there its VGG19, ImageNet normalisation and backbone see BGR.
Published: 28.17 dB / SSIM 0.925 on GoPro test, 0.06 s per 1280x720 frame on a GPU.

    jaxgan train --config experiments/configs/deblurganv2_mobilenet_gopro.py --workdir runs/dgv2 \
        --config.data.path=/data/GOPRO_Large --config.variants.transfer_file=/weights/mobilenet_v2.pth
"""

import ml_collections

from jaxgan.config import base_config

EPOCH = 1000  # config.yaml train_batches_per_epoch


def get_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.task = "deblur"
    c.data.name = "folder_deblur"
    c.data.path = ""
    c.data.crop_size = 256
    c.data.batch_size = 1
    c.data.eval_size = 0
    c.data.eval_batch_size = 1
    c.data.flip = False
    c.data.rot90 = False
    c.data.augment = "deblurganv2"
    c.data.store = "auto"  # each split decoded once into ~/.cache/jaxgan/stores (jaxgan.data.store;
    # '' = decode the PNGs at every use)
    c.generator.name = "fpn_mobilenet"
    c.generator.options = ml_collections.ConfigDict(dict(in_channels=3, out_channels=3, weight_init="torch"))
    c.discriminator.name = "double_scale"
    c.discriminator.conditional = False
    c.discriminator.options = ml_collections.ConfigDict(dict(
        in_channels=3, base_width=64, norm="instance", padding=2, weight_init="torch"))
    c.loss.adversarial = "ragan_ls"
    c.loss.relativistic_centres = "pool"  # models/losses.py:175-215 over util/image_pool.py; 'batch': off
    c.loss.relativistic_pool_size = 50
    c.loss.adversarial_weight = 0.001
    c.loss.d_loss_weight = 0.001
    c.loss.pixel = "l2"
    c.loss.pixel_weight = 0.5
    c.loss.pixel_input = "imagenet"
    c.loss.perceptual_weight = 0.006
    c.loss.perceptual_layers = ("conv3_3",)
    c.loss.perceptual_net = "vgg19"  # ImageNet weights you supply; 'vgg16' runs offline
    c.loss.perceptual_input = "imagenet"
    c.optim.g_lr = c.optim.d_lr = 1e-4
    c.optim.b1, c.optim.b2 = 0.9, 0.999
    c.optim.schedule = "linear_decay"
    c.train.steps = 200 * EPOCH
    c.optim.decay_start = 50 * EPOCH
    c.optim.decay_steps = 200 * EPOCH
    c.optim.min_lr = 1e-7
    c.optim.schedule_period = EPOCH
    c.variants.transfer_from = "imagenet:mobilenet_v2"
    c.variants.transfer_model = "generator"
    c.variants.transfer_prefixes = ("backbone/",)
    c.variants.freeze_prefixes = ("backbone/",)
    c.variants.unfreeze_step = 3 * EPOCH
    c.variants.unfreeze_restart = "model"  # train.py:37-40: a new Adam and scheduler for all of G
    c.eval.train_mode_inference = True
    c.train.eval_every = 10 * EPOCH
    c.train.checkpoint_every = EPOCH
    c.train.log_every = 100
    c.train.best_metric = "psnr"
    return c
