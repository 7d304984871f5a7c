"""DeblurGAN's generator and critic (KupynOrest/DeblurGAN models/networks.py at commit a6f4ad0, the
author's last version of the file, which the released latest_net_G.pth was trained with; the 2019
rewrite on master builds a one-conv residual block through an operator-precedence slip at its
networks.py:220-227 and is not followed here).

State-dict keys equal the original's: `model.1.weight` (7x7 stem), `model.4.weight` / `model.7.weight`
(downs), `model.{10..18}.conv_block.{1,6}.weight|bias` (blocks, with dropout), `model.19` / `model.22`
(up convs), `model.26` (7x7 head). Instance norm has no affine parameters and no running statistics.
"""

from __future__ import annotations

import torch
from torch import nn

from reference.common import MaskableDropout, norm_layer
from reference.pix2pix import NLayerDiscriminator  # noqa: F401  (the critic; DeblurGAN uses padw=2)


class ResnetBlock(nn.Module):
    """a6f4ad0 networks.py:154-193: x + [ReflectionPad(1), conv 3x3, norm, ReLU, (Dropout 0.5),
    ReflectionPad(1), conv 3x3, norm]."""

    def __init__(self, dim: int, norm: str = "instance", use_dropout: bool = True, use_bias: bool = True):
        super().__init__()
        block = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, bias=use_bias), norm_layer(norm, dim),
                 nn.ReLU(True)]
        if use_dropout:
            block.append(MaskableDropout(0.5))
        block += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, bias=use_bias), norm_layer(norm, dim)]
        self.conv_block = nn.Sequential(*block)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """a6f4ad0 networks.py:95-150: ReflectionPad(3) + 7x7 conv (ngf), norm, ReLU; two 3x3 stride-2
    convs (x2 width); n_blocks ResnetBlocks; two ConvTranspose2d(3, 2, 1, output_padding=1); ReflectionPad(3)
    + 7x7 conv; Tanh; learn_residual: clamp(input + output, -1, 1) (:147-149). Bias only with instance
    norm (:105-108), the last conv always. DeblurGAN's train.py: resnet_9blocks, ngf 64, instance norm,
    dropout on (base_options.py --no_dropout off), --learn_residual."""

    def __init__(self, input_nc=3, output_nc=3, ngf=64, norm: str = "instance", use_dropout=True, n_blocks=9,
                 learn_residual=True):
        super().__init__()
        self.learn_residual = learn_residual
        use_bias = norm == "instance"
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
                 norm_layer(norm, ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2 ** i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                      norm_layer(norm, ngf * mult * 2), nn.ReLU(True)]
        model += [ResnetBlock(ngf * 4, norm, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, kernel_size=3, stride=2, padding=1,
                                         output_padding=1, bias=use_bias),
                      norm_layer(norm, ngf * mult // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        y = self.model(x)
        if self.learn_residual:
            y = torch.clamp(x + y, min=-1, max=1)
        return y
