"""The registries of the zoo: a generator or discriminator class by its config name.

`STAGE_GENERATORS` holds the single-network generators, the ones a multi-stage generator
(jaxgan.nets.multistage) chains; jaxgan.nets adds 'multistage' itself to its `GENERATORS`.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from jaxgan.nets.discriminators import (DoubleScaleDiscriminator, FCDiscriminator, MultiScaleDiscriminator, PatchGAN,
                                        PixelGAN)
from jaxgan.nets.fpn_inception import FPNInception
from jaxgan.nets.fpn_mobilenet import FPNMobileNet
from jaxgan.nets.nafnet import NAFNet
from jaxgan.nets.resnet import ResNetGenerator
from jaxgan.nets.unet import UNet
from jaxgan.nets.vgg_unet import VGGUNet

STAGE_GENERATORS = {"unet": UNet, "resnet": ResNetGenerator, "fpn_mobilenet": FPNMobileNet, "nafnet": NAFNet,
                    "fpn_inception": FPNInception,  # (fpn_inception: DeblurGAN-v2's default generator)
                    "vgg_unet": VGGUNet}  # (vgg_unet: ImageNet VGG16 encoder, TernausNet-style)
DISCRIMINATORS = {"patchgan": PatchGAN, "pixelgan": PixelGAN, "multiscale": MultiScaleDiscriminator,
                  "double_scale": DoubleScaleDiscriminator, "fc": FCDiscriminator}  # (fc: Hung et al.)


def module_options(cls: type[nn.Module]) -> list[str]:
    """The keyword options a zoo module accepts (its dataclass fields minus flax's parent / name)."""
    return [f.name for f in dataclasses.fields(cls) if f.name not in ("parent", "name")]


def make(family: str, registry: dict, name: str, options: dict) -> nn.Module:
    if name not in registry:
        raise ValueError(f"unknown {family} {name!r}; valid names: {sorted(registry)}")
    cls = registry[name]
    valid = module_options(cls)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for {family} {name!r}; valid options: {valid}")
    return cls(**options)
