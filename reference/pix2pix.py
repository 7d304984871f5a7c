"""pix2pix's U-Net generator and N-layer PatchGAN (Bleuje/pytorch-CycleGAN-and-pix2pix models/networks.py,
the same file as junyanz's upstream at that fork's snapshot).

State-dict keys equal the original's: `model.model.0.weight` (outermost down conv),
`model.model.1.model.1.weight` (level 1 down conv), ..., `model.model.3.weight|bias` (outermost up conv).
"""

from __future__ import annotations

import torch
from torch import nn

from reference.common import MaskableDropout, norm_layer


class UnetSkipConnectionBlock(nn.Module):
    """One level (networks.py:260-310): [LeakyReLU(0.2), down conv 4/2/1, norm] + inner levels +
    [ReLU, up conv 4/2/1, norm] (+ Dropout(0.5) at the use_dropout levels, :299-300); the outermost
    level has no LeakyReLU / norm and ends in Tanh (:281-284), the innermost has no down norm (:288-291).
    Convs carry a bias only with instance norm (:265-268), the outermost up conv always (:280).
    forward: cat([x, model(x)], 1) except the outermost (:306-310)."""

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None, submodule=None,
                 outermost=False, innermost=False, norm: str = "batch", use_dropout=False):
        super().__init__()
        self.outermost = outermost
        use_bias = norm == "instance"
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu, uprelu = nn.LeakyReLU(0.2, True), nn.ReLU(True)
        downnorm, upnorm = norm_layer(norm, inner_nc), norm_layer(norm, outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                model.append(MaskableDropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x):
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """networks.py:237-257: `num_downs` levels built from the innermost out; the num_downs - 5 levels
    around the innermost (widths ngf * 8) carry dropout; then ngf*4, ngf*2, ngf and the outermost.
    pix2pix's unet_256 is num_downs=8, ngf=64, batch norm, use_dropout (train.py default: no --no_dropout)."""

    def __init__(self, input_nc=3, output_nc=3, num_downs=8, ngf=64, norm: str = "batch", use_dropout=True):
        super().__init__()
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm=norm, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             norm=norm)

    def forward(self, x):
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """networks.py:314-358: conv 4/2/padw + LeakyReLU(0.2); n_layers - 1 more stride-2 convs with
    width ndf * min(2**n, 8), norm, LeakyReLU; one stride-1 conv (width ndf * min(2**n_layers, 8)),
    norm, LeakyReLU; a stride-1 conv to 1 channel. pix2pix: padw = 1 (:323). DeblurGAN and DeblurGAN-v2
    use padw = ceil(3 / 2) = 2 (their networks.py); `padw` selects it. Logits out (no sigmoid)."""

    def __init__(self, input_nc=6, ndf=64, n_layers=3, norm: str = "batch", padw: int = 1,
                 track_running_stats: bool = False):
        super().__init__()
        use_bias = norm == "instance"
        kw = 4
        seq = [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2 ** n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, kernel_size=kw, stride=2, padding=padw, bias=use_bias),
                    norm_layer(norm, ndf * mult, track_running_stats), nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, kernel_size=kw, stride=1, padding=padw, bias=use_bias),
                norm_layer(norm, ndf * mult, track_running_stats), nn.LeakyReLU(0.2, True)]
        seq += [nn.Conv2d(ndf * mult, 1, kernel_size=kw, stride=1, padding=padw)]
        self.model = nn.Sequential(*seq)

    def forward(self, x):
        return self.model(x)


def init_weights(net: nn.Module, gain: float = 0.02, generator: torch.Generator | None = None) -> nn.Module:
    """pix2pix's init_weights 'normal' (networks.py:41-62): conv weights N(0, gain), biases 0,
    BatchNorm weight N(1, gain), bias 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            with torch.no_grad():
                m.weight.normal_(0.0, gain, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.normal_(1.0, gain, generator=generator)
                m.bias.zero_()
    return net
