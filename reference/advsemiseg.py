"""Hung et al. 2018's fully-convolutional discriminator (hfslyc/AdvSemiSeg model/discriminator.py:5-34):
five 4x4 stride-2 convs (padding 1, with bias) of widths ndf, 2 ndf, 4 ndf, 8 ndf, 1, LeakyReLU(0.2)
between them; input: class-probability maps (softmax of G or one-hot labels), output: logits at 1/32."""

from __future__ import annotations

from torch import nn


class FCDiscriminator(nn.Module):
    def __init__(self, num_classes: int, ndf: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(num_classes, ndf, kernel_size=4, stride=2, padding=1)
        self.conv2 = nn.Conv2d(ndf, ndf * 2, kernel_size=4, stride=2, padding=1)
        self.conv3 = nn.Conv2d(ndf * 2, ndf * 4, kernel_size=4, stride=2, padding=1)
        self.conv4 = nn.Conv2d(ndf * 4, ndf * 8, kernel_size=4, stride=2, padding=1)
        self.classifier = nn.Conv2d(ndf * 8, 1, kernel_size=4, stride=2, padding=1)
        self.leaky_relu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x):
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = self.leaky_relu(conv(x))
        return self.classifier(x)
