"""DeblurGAN-v2's generators and double-scale discriminator (VITA-Group/DeblurGANv2 at c16bd9f).

- FPNMobileNet / FPN / FPNHead: models/fpn_mobilenet.py; its MobileNetV2: models/mobilenet_v2.py.
- FPNInception / FPN: models/fpn_inception.py over Cadene's pretrainedmodels InceptionResNetV2
  (pretrainedmodels/models/inceptionresnetv2.py), rebuilt here with the same attribute names.
- DoubleScaleD: models/networks.py:304-312 ('double_gan'): {'patch': NLayerDiscriminator(n_layers=3),
  'full': NLayerDiscriminator(n_layers=5)} (get_fullD, :264-268), padw 2 (:227), instance norm.
Norm: get_norm_layer('instance') = InstanceNorm2d(affine=False, track_running_stats=True)
(networks.py:17-24), so the checkpoints hold running statistics of the instance norms too; predict.py
runs the net in train mode (predict.py:23-25), i.e. per-image statistics everywhere (batch norm included).
`per_image_norm_eval(model)` gives jaxgan's eval semantics: batch norm on running averages, instance
norm on the image's own statistics.

State-dict keys (`model.state_dict()`) equal the original's without DataParallel's 'module.' prefix; the
backbone appears twice (fpn.features.* / fpn.inception.* and the fpn.enc* aliases of the same modules).
"""

from __future__ import annotations

import functools

import torch
from torch import nn
import torch.nn.functional as F

from reference.common import norm_layer
from reference.pix2pix import NLayerDiscriminator

v2_norm = functools.partial(norm_layer, "instance", track_running_stats=True)


def per_image_norm_eval(model: nn.Module) -> nn.Module:
    """eval() except the instance norms, which keep normalising with each image's statistics."""
    model.eval()
    for m in model.modules():
        if isinstance(m, nn.InstanceNorm2d):
            m.train()
    return model


def _upsample(x, factor):
    return F.interpolate(x, scale_factor=factor, mode="nearest") if factor != 1 else x


# ---- MobileNetV2 (models/mobilenet_v2.py) -------------------------------------------------------
def conv_bn(inp, oup, stride):
    """mobilenet_v2.py:5-10: 3x3 conv (no bias), BN, ReLU6."""
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), nn.ReLU6(True))


def conv_1x1_bn(inp, oup):
    """mobilenet_v2.py:13-18."""
    return nn.Sequential(nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup), nn.ReLU6(True))


class InvertedResidual(nn.Module):
    """mobilenet_v2.py:21-59: [1x1 expand, BN, ReLU6] (expand_ratio != 1), depthwise 3x3, BN, ReLU6,
    1x1 linear, BN; identity skip when stride 1 and inp == oup. hidden = round(inp * expand_ratio)."""

    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = round(inp * expand_ratio)
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers += [nn.Conv2d(inp, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(True)]
        layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                   nn.ReLU6(True), nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


MOBILENET_V2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                        (6, 320, 1, 1))  # mobilenet_v2.py:68-77 (t, c, n, s)


class MobileNetV2(nn.Module):
    """mobilenet_v2.py:62-110: features = conv_bn(3, 32, 2), 17 inverted residuals, conv_1x1_bn(320, 1280);
    classifier Dropout(0.2) + Linear(1280, n_class)."""

    def __init__(self, n_class=1000, width_mult=1.0):
        super().__init__()
        channel = int(32 * width_mult)
        last = int(1280 * width_mult) if width_mult > 1.0 else 1280
        features = [conv_bn(3, channel, 2)]
        for t, c, n, s in MOBILENET_V2_SETTING:
            out = int(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(channel, out, s if i == 0 else 1, t))
                channel = out
        features.append(conv_1x1_bn(channel, last))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, n_class))

    def forward(self, x):
        return self.classifier(self.features(x).mean(3).mean(2))


# ---- FPN heads (both generators) ---------------------------------------------------------------
class FPNHead(nn.Module):
    """fpn_mobilenet.py:5-15: two bias-free 3x3 convs, each followed by ReLU."""

    def __init__(self, num_in, num_mid, num_out):
        super().__init__()
        self.block0 = nn.Conv2d(num_in, num_mid, kernel_size=3, padding=1, bias=False)
        self.block1 = nn.Conv2d(num_mid, num_out, kernel_size=3, padding=1, bias=False)

    def forward(self, x):
        return F.relu(self.block1(F.relu(self.block0(x))))


def _conv_norm_relu(cin, cout, norm):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel_size=3, padding=1), norm(cout), nn.ReLU(True))


class _FPNGenerator(nn.Module):
    """The part FPNMobileNet (fpn_mobilenet.py:18-69) and FPNInception (fpn_inception.py:32-81) share:
    4 heads, smooth (3x3 conv + norm + ReLU), x2, + map0, smooth2, x2, final 3x3 conv;
    clamp(tanh(final) + x, -1, 1)."""

    def _build_heads(self, num_filters_fpn, num_filters, output_ch, norm):
        for i in range(1, 5):
            setattr(self, f"head{i}", FPNHead(num_filters_fpn, num_filters, num_filters))
        self.smooth = _conv_norm_relu(4 * num_filters, num_filters, norm)
        self.smooth2 = _conv_norm_relu(num_filters, num_filters // 2, norm)
        self.final = nn.Conv2d(num_filters // 2, output_ch, kernel_size=3, padding=1)

    def forward(self, x):
        map0, map1, map2, map3, map4 = self.fpn(x)
        heads = [_upsample(self.head4(map4), 8), _upsample(self.head3(map3), 4), _upsample(self.head2(map2), 2),
                 self.head1(map1)]
        smoothed = _upsample(self.smooth(torch.cat(heads, dim=1)), 2)
        smoothed = _upsample(self.smooth2(smoothed + map0), 2)
        return torch.clamp(torch.tanh(self.final(smoothed)) + x, min=-1, max=1)


class FPN(nn.Module):
    """fpn_mobilenet.py:72-146: MobileNetV2 features sliced into enc0..enc4 (features[0:2], [2:4], [4:7],
    [7:11], [11:16]); bias-free 1x1 laterals (lateral0 has num_filters // 2 channels); top-down
    map_i = td(lateral_i + nearest x2 of the coarser map), td = 3x3 conv + norm + ReLU; returns
    (lateral0, map1, map2, map3, map4). The features' tail (16-18) is held but unused."""

    def __init__(self, num_filters=128, norm=v2_norm):
        super().__init__()
        self.features = MobileNetV2(n_class=1000).features
        self.enc0 = nn.Sequential(*self.features[0:2])
        self.enc1 = nn.Sequential(*self.features[2:4])
        self.enc2 = nn.Sequential(*self.features[4:7])
        self.enc3 = nn.Sequential(*self.features[7:11])
        self.enc4 = nn.Sequential(*self.features[11:16])
        self.td1, self.td2, self.td3 = (_conv_norm_relu(num_filters, num_filters, norm) for _ in range(3))
        self.lateral4 = nn.Conv2d(160, num_filters, kernel_size=1, bias=False)
        self.lateral3 = nn.Conv2d(64, num_filters, kernel_size=1, bias=False)
        self.lateral2 = nn.Conv2d(32, num_filters, kernel_size=1, bias=False)
        self.lateral1 = nn.Conv2d(24, num_filters, kernel_size=1, bias=False)
        self.lateral0 = nn.Conv2d(16, num_filters // 2, kernel_size=1, bias=False)

    def forward(self, x):
        enc0 = self.enc0(x)
        enc1 = self.enc1(enc0)
        enc2 = self.enc2(enc1)
        enc3 = self.enc3(enc2)
        enc4 = self.enc4(enc3)
        map4 = self.lateral4(enc4)
        map3 = self.td1(self.lateral3(enc3) + _upsample(map4, 2))
        map2 = self.td2(self.lateral2(enc2) + _upsample(map3, 2))
        map1 = self.td3(self.lateral1(enc1) + _upsample(map2, 2))
        return self.lateral0(enc0), map1, map2, map3, map4


class FPNMobileNet(_FPNGenerator):
    """fpn_mobilenet.py:18-69; num_filters 64, num_filters_fpn 128 in the release."""

    def __init__(self, output_ch=3, num_filters=64, num_filters_fpn=128, norm=v2_norm):
        super().__init__()
        self.fpn = FPN(num_filters=num_filters_fpn, norm=norm)
        self._build_heads(num_filters_fpn, num_filters, output_ch, norm)


# ---- Inception-ResNet-v2 (Cadene pretrainedmodels, rebuilt) -------------------------------------
class BasicConv2d(nn.Module):
    """conv (no bias) + BatchNorm2d(eps=0.001) + ReLU."""

    def __init__(self, cin, cout, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001, momentum=0.1, affine=True)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


def _seq(*convs):
    return nn.Sequential(*(BasicConv2d(*c[:3], **(c[3] if len(c) > 3 else {})) for c in convs))


class Mixed_5b(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(192, 96, 1)
        self.branch1 = _seq((192, 48, 1), (48, 64, 5, dict(padding=2)))
        self.branch2 = _seq((192, 64, 1), (64, 96, 3, dict(padding=1)), (96, 96, 3, dict(padding=1)))
        self.branch3 = nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
                                     BasicConv2d(192, 64, 1))

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class _ResidualInception(nn.Module):
    """relu?(conv2d(cat(branches)) * scale + x)."""
    relu_out = True

    def forward(self, x):
        out = self.conv2d(torch.cat([b(x) for b in self.branches()], 1)) * self.scale + x
        return torch.relu(out) if self.relu_out else out


class Block35(_ResidualInception):
    def __init__(self, scale=0.17):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(320, 32, 1)
        self.branch1 = _seq((320, 32, 1), (32, 32, 3, dict(padding=1)))
        self.branch2 = _seq((320, 32, 1), (32, 48, 3, dict(padding=1)), (48, 64, 3, dict(padding=1)))
        self.conv2d = nn.Conv2d(128, 320, kernel_size=1)

    def branches(self):
        return self.branch0, self.branch1, self.branch2


class Mixed_6a(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(320, 384, 3, 2)
        self.branch1 = _seq((320, 256, 1), (256, 256, 3, dict(padding=1)), (256, 384, 3, dict(stride=2)))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


class Block17(_ResidualInception):
    def __init__(self, scale=0.10):
        super().__init__()
        self.scale = scale
        self.branch0 = BasicConv2d(1088, 192, 1)
        self.branch1 = _seq((1088, 128, 1), (128, 160, (1, 7), dict(padding=(0, 3))),
                            (160, 192, (7, 1), dict(padding=(3, 0))))
        self.conv2d = nn.Conv2d(384, 1088, kernel_size=1)

    def branches(self):
        return self.branch0, self.branch1


class Mixed_7a(nn.Module):
    def __init__(self):
        super().__init__()
        self.branch0 = _seq((1088, 256, 1), (256, 384, 3, dict(stride=2)))
        self.branch1 = _seq((1088, 256, 1), (256, 288, 3, dict(stride=2)))
        self.branch2 = _seq((1088, 256, 1), (256, 288, 3, dict(padding=1)), (288, 320, 3, dict(stride=2)))
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class Block8(_ResidualInception):
    def __init__(self, scale=0.20, noReLU=False):
        super().__init__()
        self.scale = scale
        self.relu_out = not noReLU
        self.branch0 = BasicConv2d(2080, 192, 1)
        self.branch1 = _seq((2080, 192, 1), (192, 224, (1, 3), dict(padding=(0, 1))),
                            (224, 256, (3, 1), dict(padding=(1, 0))))
        self.conv2d = nn.Conv2d(448, 2080, kernel_size=1)

    def branches(self):
        return self.branch0, self.branch1


class InceptionResNetV2(nn.Module):
    """Cadene's InceptionResNetV2 (the `pretrained='imagenet'` variant: 1000 classes): stem
    conv2d_1a..conv2d_4a + max pools, mixed_5b, 10 x Block35 (0.17), mixed_6a, 20 x Block17 (0.10),
    mixed_7a, 9 x Block8 (0.20), block8 (no ReLU), conv2d_7b, avgpool, last_linear. All of it is in
    FPNInception's state dict; the FPN uses up to mixed_7a."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, 3, 2)
        self.conv2d_2a = BasicConv2d(32, 32, 3, 1)
        self.conv2d_2b = BasicConv2d(32, 64, 3, 1, 1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3)
        self.maxpool_5a = nn.MaxPool2d(3, stride=2)
        self.mixed_5b = Mixed_5b()
        self.repeat = nn.Sequential(*(Block35(0.17) for _ in range(10)))
        self.mixed_6a = Mixed_6a()
        self.repeat_1 = nn.Sequential(*(Block17(0.10) for _ in range(20)))
        self.mixed_7a = Mixed_7a()
        self.repeat_2 = nn.Sequential(*(Block8(0.20) for _ in range(9)))
        self.block8 = Block8(noReLU=True)
        self.conv2d_7b = BasicConv2d(2080, 1536, 1)
        self.avgpool_1a = nn.AvgPool2d(8, count_include_pad=False)
        self.last_linear = nn.Linear(1536, num_classes)


class FPNInceptionBackbone(nn.Module):
    """fpn_inception.py:84-167: enc0 = conv2d_1a; enc1 = 2a, 2b, maxpool_3a; enc2 = 3b, 4a, maxpool_5a;
    enc3 = mixed_5b, repeat, mixed_6a; enc4 = repeat_1, mixed_7a. Laterals (bias-free 1x1): 2080, 1088,
    192, 64 -> num_filters, 32 -> num_filters // 2; lateral4 / 3 / 1 reflect-padded by 1 (:154-157),
    lateral2 by (1, 2, 1, 2) (:161, :165), lateral0 by (0, 1, 0, 1) (:162, :167), which brings the
    valid-padded Inception sizes back to H/2, H/4, ... for H a multiple of 32 (H >= 128)."""

    def __init__(self, num_filters=256, norm=v2_norm):
        super().__init__()
        self.inception = InceptionResNetV2(num_classes=1000)
        i = self.inception
        self.enc0 = i.conv2d_1a
        self.enc1 = nn.Sequential(i.conv2d_2a, i.conv2d_2b, i.maxpool_3a)
        self.enc2 = nn.Sequential(i.conv2d_3b, i.conv2d_4a, i.maxpool_5a)
        self.enc3 = nn.Sequential(i.mixed_5b, i.repeat, i.mixed_6a)
        self.enc4 = nn.Sequential(i.repeat_1, i.mixed_7a)
        self.td1, self.td2, self.td3 = (_conv_norm_relu(num_filters, num_filters, norm) for _ in range(3))
        self.pad = nn.ReflectionPad2d(1)
        self.lateral4 = nn.Conv2d(2080, num_filters, kernel_size=1, bias=False)
        self.lateral3 = nn.Conv2d(1088, num_filters, kernel_size=1, bias=False)
        self.lateral2 = nn.Conv2d(192, num_filters, kernel_size=1, bias=False)
        self.lateral1 = nn.Conv2d(64, num_filters, kernel_size=1, bias=False)
        self.lateral0 = nn.Conv2d(32, num_filters // 2, kernel_size=1, bias=False)

    def forward(self, x):
        enc0 = self.enc0(x)
        enc1 = self.enc1(enc0)
        enc2 = self.enc2(enc1)
        enc3 = self.enc3(enc2)
        enc4 = self.enc4(enc3)
        map4 = self.pad(self.lateral4(enc4))
        map3 = self.td1(self.pad(self.lateral3(enc3)) + _upsample(map4, 2))
        map2 = self.td2(F.pad(self.lateral2(enc2), (1, 2, 1, 2), "reflect") + _upsample(map3, 2))
        map1 = self.td3(self.pad(self.lateral1(enc1)) + _upsample(map2, 2))
        return F.pad(self.lateral0(enc0), (0, 1, 0, 1), "reflect"), map1, map2, map3, map4


class FPNInception(_FPNGenerator):
    """fpn_inception.py:32-81; num_filters 128, num_filters_fpn 256 in the release."""

    def __init__(self, output_ch=3, num_filters=128, num_filters_fpn=256, norm=v2_norm):
        super().__init__()
        self.fpn = FPNInceptionBackbone(num_filters=num_filters_fpn, norm=norm)
        self._build_heads(num_filters_fpn, num_filters, output_ch, norm)


# ---- double-scale D ---------------------------------------------------------------------------
class DoubleScaleD(nn.Module):
    """networks.py:304-312: a 3-layer and a 5-layer NLayerDiscriminator (padw 2, instance norm with
    running stats) on the same image; returns [patch logits, full logits]."""

    def __init__(self, input_nc=3, ndf=64, d_layers=3, padw=2):
        super().__init__()
        kw = dict(input_nc=input_nc, ndf=ndf, norm="instance", padw=padw, track_running_stats=True)
        self.patch = NLayerDiscriminator(n_layers=d_layers, **kw)
        self.full = NLayerDiscriminator(n_layers=5, **kw)

    def forward(self, x):
        return [self.patch(x), self.full(x)]
