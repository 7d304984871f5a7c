"""PyTorch twins of jaxgan's benchmark training steps (timing references, NCHW).

The networks are the reference modules of `reference/` (written from the original repositories,
the same ones the parity tests compare jaxgan against): pix2pix UnetGenerator / NLayerDiscriminator,
DeblurGAN ResnetGenerator, DeblurGAN-v2 FPNMobileNet and its double-scale D. Where a jaxgan benchmark
config computes something else than the original (the critics' padding 1 instead of DeblurGAN's 2,
no block dropout, VGG16 instead of VGG19 for the perceptual loss), the twin is built with jaxgan's
choice so that both frameworks do the same work. All weights are random (the VGG16 too, which does
not change its cost).

Imported only by `benchmarks.train_step --torch`; jaxgan itself never imports torch.
Images are float32 (B, 3, H, W) in [-1, 1].
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F

from reference import deblurgan, deblurganv2, pix2pix
from reference.torchvision_layout import VGG, VGG16_CFG

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def unet(in_ch=3, out_ch=3, width=64, depth=8, norm="batch", dropout=True) -> nn.Module:
    """pix2pix UnetGenerator: `depth` stride-2 levels, widths w, 2w, 4w, 8w, 8w, ..."""
    return pix2pix.UnetGenerator(in_ch, out_ch, num_downs=depth, ngf=width, norm=norm, use_dropout=dropout)


def patchgan(in_ch=6, width=64, num_layers=3, norm="batch", padw=1) -> nn.Module:
    """NLayerDiscriminator (70x70 PatchGAN at 3 layers): 4x4 convs, logits out; padding 1 as jaxgan's
    PatchGAN (pix2pix's; DeblurGAN / -v2 use 2)."""
    return pix2pix.NLayerDiscriminator(in_ch, width, num_layers, norm, padw=padw)


def DoubleScaleD(in_ch=3, width=64, norm="instance", patch_layers=3, full_layers=5):  # noqa: N802
    """DeblurGAN-v2 double-scale D (3-layer patch + 5-layer full PatchGAN), padding 1 as jaxgan's."""
    assert norm == "instance" and full_layers == 5
    return deblurganv2.DoubleScaleD(in_ch, width, d_layers=patch_layers, padw=1)


def ResnetGenerator(in_ch=3, out_ch=3, width=64, num_blocks=9, norm="instance", learn_residual=True,  # noqa: N802
                    dropout=False):
    """DeblurGAN ResnetGenerator (dropout in the blocks only when jaxgan's config has it)."""
    return deblurgan.ResnetGenerator(in_ch, out_ch, ngf=width, norm=norm, use_dropout=dropout, n_blocks=num_blocks,
                                     learn_residual=learn_residual)


def FPNMobileNet(out_ch=3, width=64, fpn_width=128, norm="instance"):  # noqa: N802
    """DeblurGAN-v2 FPNMobileNet (its instance norms keep running statistics, as the original's)."""
    assert norm == "instance"
    return deblurganv2.FPNMobileNet(out_ch, num_filters=width, num_filters_fpn=fpn_width)


# ---- VGG16 perceptual -------------------------------------------------------------------------
def vgg16_conv3_3() -> nn.Module:
    """VGG16 `features[:14]` (through conv3_3, before its ReLU, as jaxgan's perceptual loss), random
    weights, frozen. DeblurGAN itself used VGG19 features[:15] (the same conv3_3, one block deeper net)."""
    net = nn.Sequential(*list(VGG(VGG16_CFG).features)[:14])
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def perceptual(vgg: nn.Module, pred, target):
    """MSE between VGG features of ImageNet-normalised [0, 1] images (target features not differentiated)."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    prep = lambda x: ((x + 1) / 2 - mean) / std
    with torch.no_grad():
        t = vgg(prep(target))
    return F.mse_loss(vgg(prep(pred)), t)


# ---- losses -----------------------------------------------------------------------------------
def as_list(x):
    return x if isinstance(x, (list, tuple)) else [x]


def bce_logits(logits, label: float):
    return sum(F.binary_cross_entropy_with_logits(l, torch.full_like(l, label)) for l in as_list(logits)) / len(
        as_list(logits))


def ragan_ls(a, b):
    """Relativistic average LSGAN loss that wants a > mean(b) by 1: mean((a - mean(b) - 1)^2 + (b - mean(a) + 1)^2)/2."""
    terms = [(torch.mean((x - y.mean() - 1) ** 2) + torch.mean((y - x.mean() + 1) ** 2)) / 2
             for x, y in zip(as_list(a), as_list(b))]
    return sum(terms) / len(terms)


def wgan_gp_penalty(critic: nn.Module, real, fake):
    alpha = torch.rand(real.shape[0], 1, 1, 1)
    x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = sum(o.sum() for o in as_list(critic(x)))
    (g,) = torch.autograd.grad(out, x, create_graph=True)
    return ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()


# ---- training steps ---------------------------------------------------------------------------
@dataclasses.dataclass
class TwinSetup:
    """A generator, a discriminator, their Adam optimizers and one full training step."""

    name: str
    generator: nn.Module
    discriminator: nn.Module
    step: Callable[[torch.Tensor, torch.Tensor], dict]
    extra_modules: tuple = ()

    def param_counts(self) -> dict:
        count = lambda m: sum(p.numel() for p in m.parameters())
        return {"generator": count(self.generator), "discriminator": count(self.discriminator)}


def set_requires_grad(module: nn.Module, flag: bool):
    for p in module.parameters():
        p.requires_grad_(flag)


def train_mode_adam(g: nn.Module, d: nn.Module, lr: float):
    """G and D in train mode, and an Adam (betas 0.5, 0.999) for each, as all three setups train."""
    g.train(), d.train()
    return (torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999)),
            torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999)))


def pix2pix_setup(width=64, depth=8, d_width=64, lr=2e-4, l1_weight=100.0) -> TwinSetup:
    """pix2pix: conditional PatchGAN on concat(input, image), vanilla GAN + 100 x L1, one D and one G update."""
    g, d = unet(3, 3, width, depth, "batch", True), patchgan(6, d_width, 3, "batch")
    opt_g, opt_d = train_mode_adam(g, d, lr)

    def step(inp, tgt):
        fake = g(inp)
        set_requires_grad(d, True)
        opt_d.zero_grad(set_to_none=True)
        d_loss = 0.5 * (bce_logits(d(torch.cat([inp, fake.detach()], 1)), 0.0)
                        + bce_logits(d(torch.cat([inp, tgt], 1)), 1.0))
        d_loss.backward()
        opt_d.step()
        set_requires_grad(d, False)
        opt_g.zero_grad(set_to_none=True)
        g_loss = bce_logits(d(torch.cat([inp, fake], 1)), 1.0) + l1_weight * F.l1_loss(fake, tgt)
        g_loss.backward()
        opt_g.step()
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    return TwinSetup("pix2pix", g, d, step)


def deblurgan_setup(width=64, num_blocks=9, d_width=64, lr=1e-4, n_critic=5, gp_weight=10.0,
                    perceptual_weight=100.0, dropout=False) -> TwinSetup:
    """DeblurGAN: unconditional PatchGAN critic, WGAN-GP (5 critic updates on one G output), perceptual x100."""
    g = ResnetGenerator(3, 3, width, num_blocks, "instance", True, dropout)
    d = patchgan(3, d_width, 3, "instance")
    vgg = vgg16_conv3_3()
    opt_g, opt_d = train_mode_adam(g, d, lr)

    def step(inp, tgt):
        fake = g(inp)
        set_requires_grad(d, True)
        for _ in range(n_critic):
            opt_d.zero_grad(set_to_none=True)
            fd = fake.detach()
            d_loss = d(fd).mean() - d(tgt).mean() + gp_weight * wgan_gp_penalty(d, tgt, fd)
            d_loss.backward()
            opt_d.step()
        set_requires_grad(d, False)
        opt_g.zero_grad(set_to_none=True)
        g_loss = -d(fake).mean() + perceptual_weight * perceptual(vgg, fake, tgt)
        g_loss.backward()
        opt_g.step()
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    return TwinSetup("deblurgan", g, d, step, (vgg,))


def fpn_mobilenet_setup(width=64, fpn_width=128, d_width=64, lr=1e-4, mse_weight=0.5, perceptual_weight=0.006,
                        adv_weight=0.01) -> TwinSetup:
    """DeblurGAN-v2: double-scale D, RaGAN-LS, 0.5 MSE + 0.006 perceptual + 0.01 adversarial."""
    g = FPNMobileNet(3, width, fpn_width, "instance")
    d = DoubleScaleD(3, d_width, "instance")
    vgg = vgg16_conv3_3()
    opt_g, opt_d = train_mode_adam(g, d, lr)

    def step(inp, tgt):
        fake = g(inp)
        set_requires_grad(d, True)
        opt_d.zero_grad(set_to_none=True)
        d_loss = ragan_ls(d(tgt), d(fake.detach()))
        d_loss.backward()
        opt_d.step()
        set_requires_grad(d, False)
        opt_g.zero_grad(set_to_none=True)
        g_loss = (adv_weight * ragan_ls(d(fake), d(tgt)) + mse_weight * F.mse_loss(fake, tgt)
                  + perceptual_weight * perceptual(vgg, fake, tgt))
        g_loss.backward()
        opt_g.step()
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach()}

    return TwinSetup("fpn_mobilenet", g, d, step, (vgg,))


SETUPS = {"pix2pix": pix2pix_setup, "deblurgan": deblurgan_setup, "fpn_mobilenet": fpn_mobilenet_setup}
