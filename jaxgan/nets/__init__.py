"""jaxgan.nets: Flax (linen) generators and discriminators, NHWC, images in [-1, 1].

Every module is called as `module.apply(variables, x, train=...)`; BatchNorm statistics live in the
`batch_stats` collection (running averages when train=False), dropout draws from the `dropout` rng
stream when train=True. `dtype` is the compute dtype (params stay float32); outputs are float32.

    g = make_generator("unet", in_channels=3, out_channels=3, depth=8, base_width=64, norm="batch")
    d = make_discriminator("patchgan", in_channels=6, num_layers=3)

Options are the module fields (see each class); unknown names or options raise ValueError.
"""

from __future__ import annotations

import flax.linen as nn

from jaxgan.nets.discriminators import (DoubleScaleDiscriminator, FCDiscriminator, MultiScaleDiscriminator, PatchGAN,
                                        PixelGAN)
from jaxgan.nets.fpn_inception import FPNInception
from jaxgan.nets.fpn_mobilenet import FPNMobileNet
from jaxgan.nets.layers import ConvTranspose, Norm, count_params
from jaxgan.nets.multistage import MultiStageGenerator
from jaxgan.nets.nafnet import NAFBlock, NAFNet
from jaxgan.nets.registry import DISCRIMINATORS, STAGE_GENERATORS, make, module_options
from jaxgan.nets.resnet import ResidualBlock, ResNetGenerator
from jaxgan.nets.unet import UNet
from jaxgan.nets.vgg_unet import VGGUNet
from jaxgan.ops import conv2d_transpose as conv_transpose
from jaxgan.ops import conv2d_transpose_lax as conv_transpose_reference

GENERATORS = {**STAGE_GENERATORS, "multistage": MultiStageGenerator}  # (multistage: research variants)


def make_generator(name: str, **options) -> nn.Module:
    """Generator by name: 'unet' (UNet), 'resnet' (ResNetGenerator), 'fpn_mobilenet' (FPNMobileNet),
    'nafnet' (NAFNet, a small restoration U-Net), 'multistage' (MultiStageGenerator: a coarse-to-fine
    chain of another one), 'fpn_inception' (FPNInception, DeblurGAN-v2's FPN-InceptionResNetV2), 'vgg_unet'
    (VGGUNet, a U-Net on the ImageNet VGG16 encoder)."""
    return make("generator", GENERATORS, name, options)


def make_discriminator(name: str, **options) -> nn.Module:
    """Discriminator by name: 'patchgan', 'pixelgan', 'multiscale', 'double_scale', 'fc' (Hung et al.)."""
    return make("discriminator", DISCRIMINATORS, name, options)


__all__ = [
    "GENERATORS", "DISCRIMINATORS", "make_generator", "make_discriminator", "module_options",
    "UNet", "ResNetGenerator", "MultiStageGenerator", "ResidualBlock", "FPNMobileNet", "FPNInception", "NAFNet",
    "NAFBlock", "VGGUNet",
    "PatchGAN", "PixelGAN", "MultiScaleDiscriminator", "DoubleScaleDiscriminator", "FCDiscriminator",
    "ConvTranspose", "Norm", "conv_transpose", "conv_transpose_reference", "count_params",
]
