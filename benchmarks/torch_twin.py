"""PyTorch twins of jaxgan's benchmark training steps (timing references only, NCHW).

Written from the published architecture descriptions (pix2pix UnetGenerator / NLayerDiscriminator,
DeblurGAN ResnetGenerator + WGAN-GP + VGG16 conv3_3 perceptual loss, DeblurGAN-v2 FPN-MobileNet with a
double-scale discriminator and RaGAN-LS). Only the layer shapes, losses and optimizers matter here: all
weights are random (the VGG16 of the perceptual loss too, which does not change its cost).

Imported only by `benchmarks.train_step --torch`; jaxgan itself never imports torch.
Images are float32 (B, 3, H, W) in [-1, 1].
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def norm_layer(kind: str, channels: int) -> nn.Module:
    """'batch' | 'instance' (no affine, like DeblurGAN) | 'none'."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be batch|instance|none, got {kind!r}")


# ---- pix2pix U-Net ----------------------------------------------------------------------------
class UnetLevel(nn.Module):
    """One U-Net level: down conv, the inner levels, up conv, concatenated with the input."""

    def __init__(self, outer: int, inner: int, sub: nn.Module | None, *, in_ch: int | None = None,
                 out_ch: int | None = None, outermost=False, innermost=False, norm="batch", dropout=False):
        super().__init__()
        bias = norm != "batch"
        in_ch = outer if in_ch is None else in_ch
        self.outermost = outermost
        down = [nn.Conv2d(in_ch, inner, 4, 2, 1, bias=bias)]
        if not outermost:
            down = [nn.LeakyReLU(0.2)] + down + ([] if innermost else [norm_layer(norm, inner)])
        up_in = inner if innermost else 2 * inner
        if outermost:
            up = [nn.ReLU(), nn.ConvTranspose2d(up_in, out_ch, 4, 2, 1), nn.Tanh()]
        else:
            up = [nn.ReLU(), nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=bias), norm_layer(norm, outer)]
            if dropout:
                up.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*down, *([sub] if sub is not None else []), *up)

    def forward(self, x):
        y = self.model(x)
        return y if self.outermost else torch.cat([x, y], 1)


def unet(in_ch=3, out_ch=3, width=64, depth=8, norm="batch", dropout=True) -> nn.Module:
    """pix2pix UnetGenerator: `depth` stride-2 levels, widths w, 2w, 4w, 8w, 8w, ..."""
    level = UnetLevel(width * 8, width * 8, None, innermost=True, norm=norm)
    for _ in range(depth - 5):
        level = UnetLevel(width * 8, width * 8, level, norm=norm, dropout=dropout)
    for mult in (4, 2, 1):
        level = UnetLevel(width * mult, width * mult * 2, level, norm=norm)
    return UnetLevel(out_ch, width, level, in_ch=in_ch, out_ch=out_ch, outermost=True, norm=norm)


# ---- PatchGAN ---------------------------------------------------------------------------------
def patchgan(in_ch=6, width=64, num_layers=3, norm="batch") -> nn.Module:
    """NLayerDiscriminator (70x70 PatchGAN at 3 layers): 4x4 convs, padding 1, logits out."""
    bias = norm != "batch"
    layers = [nn.Conv2d(in_ch, width, 4, 2, 1), nn.LeakyReLU(0.2)]
    ch = width
    for n in range(1, num_layers + 1):
        nxt = width * min(2 ** n, 8)
        layers += [nn.Conv2d(ch, nxt, 4, 2 if n < num_layers else 1, 1, bias=bias), norm_layer(norm, nxt),
                   nn.LeakyReLU(0.2)]
        ch = nxt
    layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
    return nn.Sequential(*layers)


class DoubleScaleD(nn.Module):
    """DeblurGAN-v2 double-scale D: a 3-layer PatchGAN plus a deeper (5-layer) 'full' one."""

    def __init__(self, in_ch=3, width=64, norm="instance", patch_layers=3, full_layers=5):
        super().__init__()
        self.patch = patchgan(in_ch, width, patch_layers, norm)
        self.full = patchgan(in_ch, width, full_layers, norm)

    def forward(self, x):
        return [self.patch(x), self.full(x)]


# ---- DeblurGAN ResNet generator ---------------------------------------------------------------
class ResBlock(nn.Module):
    def __init__(self, ch: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), norm_layer(norm, ch), nn.ReLU(),
                                  nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), norm_layer(norm, ch))

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """DeblurGAN ResnetGenerator: 7x7 stem, 2 stride-2 downs, residual blocks, 2 transposed ups, 7x7 out."""

    def __init__(self, in_ch=3, out_ch=3, width=64, num_blocks=9, norm="instance", learn_residual=True):
        super().__init__()
        bias = norm != "batch"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_ch, width, 7, bias=bias), norm_layer(norm, width), nn.ReLU()]
        for m in (1, 2):
            layers += [nn.Conv2d(width * m, width * m * 2, 3, 2, 1, bias=bias), norm_layer(norm, width * m * 2),
                       nn.ReLU()]
        layers += [ResBlock(width * 4, norm) for _ in range(num_blocks)]
        for m in (4, 2):
            layers += [nn.ConvTranspose2d(width * m, width * m // 2, 3, 2, 1, output_padding=1, bias=bias),
                       norm_layer(norm, width * m // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_ch, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.learn_residual = learn_residual

    def forward(self, x):
        y = self.model(x)
        return torch.clamp(x + y, -1, 1) if self.learn_residual else y


# ---- DeblurGAN-v2 FPN-MobileNet ---------------------------------------------------------------
class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(), nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


# MobileNetV2 (expand t, channels c, repeats n, first stride s) up to the 160-channel stage (enc4).
MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2))


def mobilenet_blocks() -> list[nn.Module]:
    blocks = [nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6())]
    cin = 32
    for t, c, n, s in MOBILENET_V2_STAGES:
        for i in range(n):
            blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    return blocks


def conv_norm_relu(cin, cout, norm):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), norm_layer(norm, cout), nn.ReLU())


class FPNMobileNet(nn.Module):
    """FPN over MobileNetV2 features (strides 2..32), 4 heads, smoothing convs, residual tanh output."""

    def __init__(self, out_ch=3, width=64, fpn_width=128, norm="instance"):
        super().__init__()
        b = mobilenet_blocks()  # 0 stem, 1 (16), 2-3 (24), 4-6 (32), 7-10 (64), 11-13 (96), 14-16 (160)
        self.enc = nn.ModuleList([nn.Sequential(*b[0:2]), nn.Sequential(*b[2:4]), nn.Sequential(*b[4:7]),
                                  nn.Sequential(*b[7:11]), nn.Sequential(*b[11:16])])
        self.lateral = nn.ModuleList([nn.Conv2d(c, fpn_width // 2 if i == 0 else fpn_width, 1, bias=False)
                                      for i, c in enumerate((16, 24, 32, 64, 160))])
        self.td = nn.ModuleList([conv_norm_relu(fpn_width, fpn_width, norm) for _ in range(3)])
        self.heads = nn.ModuleList([
            nn.Sequential(nn.Conv2d(fpn_width, width, 3, padding=1, bias=False), nn.ReLU(),
                          nn.Conv2d(width, width, 3, padding=1, bias=False), nn.ReLU()) for _ in range(4)])
        self.smooth = conv_norm_relu(4 * width, width, norm)
        self.smooth2 = conv_norm_relu(width, width // 2, norm)
        self.final = nn.Conv2d(width // 2, out_ch, 3, padding=1)

    def forward(self, x):
        feats, h = [], x
        for enc in self.enc:
            h = enc(h)
            feats.append(h)
        lat = [l(f) for l, f in zip(self.lateral, feats)]
        maps = [lat[4]]
        for td, l in zip(self.td, (lat[3], lat[2], lat[1])):
            maps.append(td(l + F.interpolate(maps[-1], scale_factor=2, mode="nearest")))
        m4, m3, m2, m1 = maps
        up = lambda t, s: F.interpolate(t, scale_factor=s, mode="nearest")
        heads = [up(self.heads[3](m4), 8), up(self.heads[2](m3), 4), up(self.heads[1](m2), 2), self.heads[0](m1)]
        s = up(self.smooth(torch.cat(heads, 1)), 2)
        s = up(self.smooth2(s + lat[0]), 2)
        return torch.clamp(torch.tanh(self.final(s)) + x, -1, 1)


# ---- VGG16 perceptual -------------------------------------------------------------------------
def vgg16_conv3_3() -> nn.Module:
    """VGG16 `features[:14]` (through conv3_3, before its ReLU, as jaxgan's perceptual loss), random
    weights, frozen. DeblurGAN itself used features[:15] (one more ReLU: negligible cost)."""
    cfg, layers, cin = (64, 64, "M", 128, 128, "M", 256, 256, 256), [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
            cin = v
    net = nn.Sequential(*layers[:-1])
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


def pix2pix_setup(width=64, depth=8, d_width=64, lr=2e-4, l1_weight=100.0) -> TwinSetup:
    """pix2pix: conditional PatchGAN on concat(input, image), vanilla GAN + 100 x L1, one D and one G update."""
    g, d = unet(3, 3, width, depth, "batch", True), patchgan(6, d_width, 3, "batch")
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999))
    g.train(), d.train()

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
                    perceptual_weight=100.0) -> TwinSetup:
    """DeblurGAN: unconditional PatchGAN critic, WGAN-GP (5 critic updates on one G output), perceptual x100."""
    g = ResnetGenerator(3, 3, width, num_blocks, "instance", True)
    d = patchgan(3, d_width, 3, "instance")
    vgg = vgg16_conv3_3()
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999))
    g.train(), d.train()

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
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999))
    g.train(), d.train()

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
