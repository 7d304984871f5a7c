"""VGG and MobileNetV2 with torchvision's module layout, so `state_dict()` has the keys of
torchvision's `vgg16()` / `vgg19()` / `mobilenet_v2()` files (torchvision is not needed; weights random).

- vgg(cfg).features: Conv2d(3x3, padding 1) + ReLU per entry, MaxPool2d(2, 2) per 'M'
  (features.{i}.weight|bias at torchvision's indices: VGG19 conv3_3 is features.14, conv5_4 features.34).
- MobileNetV2: features.0 = [conv 3x3 s2, BN, ReLU6]; features.1..17 InvertedResidual whose `conv` is
  [[dw conv, BN, ReLU6], pw conv, BN] (expand 1) or [[pw, BN, ReLU6], [dw, BN, ReLU6], pw conv, BN];
  features.18 = [1x1 conv 320 -> 1280, BN, ReLU6]; classifier = [Dropout(0.2), Linear(1280, 1000)].
"""

from __future__ import annotations

import torch
from torch import nn

VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


class VGG(nn.Module):
    """Only `features` (the classifier is not needed for feature losses; a torchvision file's
    classifier.* keys are ignored by jaxgan's loader)."""

    def __init__(self, cfg=VGG19_CFG):
        super().__init__()
        layers, cin = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(cin, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers)


def vgg19_features_upto(vgg: VGG, index: int) -> nn.Sequential:
    """features[:index + 1], as DeblurGAN's PerceptualLoss.contentFunc (index 14 = conv3_3)."""
    return nn.Sequential(*list(vgg.features)[: index + 1])


def _conv_bn_relu6(cin, cout, kernel, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [] if expand_ratio == 1 else [_conv_bn_relu6(inp, hidden, 1)]
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
               (6, 320, 1, 1))

    def __init__(self, num_classes=1000):
        super().__init__()
        features, cin = [_conv_bn_relu6(3, 32, 3, 2)], 32
        for t, c, n, s in self.SETTING:
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(_conv_bn_relu6(cin, 1280, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))
