"""DeblurGAN-v2 (Kupyn et al. 2019), FPN-Inception generator (the release's default), on GoPro (a folder
you provide).

The recipe of deblurganv2_mobilenet_gopro.py (its docstring lists what follows the original and how;
VITA-Group/DeblurGANv2 at adb9e7d), with the generator config.yaml:44 names (g_name fpn_inception):
- FPN over Cadene's Inception-ResNet-v2 (models/fpn_inception.py:32-81 FPNInception(num_filters=128,
  num_filters_fpn=256), :84-167 FPN), instance norm (config.yaml norm_layer), the global residual
  clamp(tanh(final) + x, -1, 1) (:78-81): `generator.name='fpn_inception'`, `base_width=128`.
- The backbone starts from ImageNet weights (fpn_inception.py:94 inceptionresnetv2(pretrained='imagenet'),
  which downloads Cadene's inceptionresnetv2-520b38e4.pth; here you supply that file:
  `variants.transfer_from='imagenet:inception_resnet_v2'`, `variants.transfer_file` or
  $JAXGAN_INCEPTION_RESNET_V2_WEIGHTS) and is frozen for the first 3 epochs (fpn_inception.py:132-133
  requires_grad False, :135-137 unfreeze; train.py:35-38 unfreezes at epoch warmup_num = config.yaml:42
  3 and builds a new Adam for all of G, train.py:164 the first one over the trainable params only):
  `variants.freeze_prefixes=('backbone/',)`, `variants.unfreeze_step` = 3 epochs,
  `variants.unfreeze_restart='model'` (read from deblurganv2_mobilenet_gopro.py).
- FPN and head init: PyTorch's default (the original never re-initialises them): `weight_init='torch'`.
Published: 29.55 dB / SSIM 0.934 on GoPro test (the paper's FPN-Inception row).

    jaxgan train --config experiments/configs/deblurganv2_inception_gopro.py --workdir runs/dgv2_inception \
        --config.data.path=/data/GOPRO_Large --config.variants.transfer_file=/weights/inceptionresnetv2-520b38e4.pth
"""

from pathlib import Path

import ml_collections

from jaxgan.config_io import load_config_file


def get_config() -> ml_collections.ConfigDict:
    c = load_config_file(Path(__file__).with_name("deblurganv2_mobilenet_gopro.py"))
    c.generator.name = "fpn_inception"
    c.generator.options = ml_collections.ConfigDict(dict(in_channels=3, out_channels=3, base_width=128,
                                                         norm="instance", weight_init="torch"))
    c.variants.transfer_from = "imagenet:inception_resnet_v2"
    return c
