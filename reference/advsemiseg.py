"""Hung et al. 2018 (hfslyc/AdvSemiSeg): the fully-convolutional discriminator (model/discriminator.py:5-34):
five 4x4 stride-2 convs (padding 1, with bias) of widths ndf, 2 ndf, 4 ndf, 8 ndf, 1, LeakyReLU(0.2)
between them; input: class-probability maps (softmax of G or one-hot labels), output: logits at 1/32.
And one iteration of its train.py (`semi_train_step`) with its losses (utils/loss.py), written from
their behaviour, for any segmentation G that returns logits (B, C, H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


IGNORE_LABEL = 255  # train.py:39


def interp(x, size):
    """train.py:295-300: nn.Upsample(size, mode='bilinear', align_corners=True). (The original
    passes (input_size[1], input_size[0]), i.e. (w, h): the same for its square 321 crops.)"""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def bce_2d(logits, target):
    """utils/loss.py:38-66 BCEWithLogitsLoss2d: mean BCE over the entries whose target is not 255."""
    keep = (target >= 0) & (target != IGNORE_LABEL)
    return F.binary_cross_entropy_with_logits(logits[keep], target[keep])


def cross_entropy_2d(logits, labels):
    """utils/loss.py:6-35 CrossEntropy2d: mean softmax CE over the pixels whose label is not 255
    (0 when there are none, :30-31)."""
    keep = (labels >= 0) & (labels != IGNORE_LABEL)
    if not keep.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits.permute(0, 2, 3, 1)[keep], labels[keep])


def d_label(value: float, ignore):
    """train.py:184-190 make_D_label: a (B, 1, H, W) map of `value`, 255 where `ignore`."""
    label = torch.full((ignore.shape[0], 1, *ignore.shape[1:]), float(value))
    label[ignore.unsqueeze(1)] = IGNORE_LABEL
    return label


def one_hot(labels, num_classes: int):
    """train.py:176-182: (B, H, W) int -> (B, C, H, W) float; an ignored pixel is all zeros."""
    return torch.stack([(labels == c).float() for c in range(num_classes)], 1)


def semi_train_step(model, model_d, optimizer, optimizer_d, images, labels, images_remain, labels_gt, *,
                    lambda_adv_pred: float, lambda_semi_adv: float, lambda_semi: float, mask_t: float,
                    semi_start: int = 0, i_iter: int = 0, d_remain: bool = True) -> dict:
    """One iteration of AdvSemiSeg train.py's loop (lines 308-453, iter_size 1): G on the unlabelled
    `images_remain` (the unlabelled adversarial term, and from `semi_start` on the self-training CE
    on the pixels where sigmoid(D) >= mask_t), G on the labelled `images` (CE + adversarial term);
    gradients of G accumulated with D frozen; then D on cat(labelled, unlabelled) predictions
    (detached) as fake and on one_hot(`labels_gt`) as real, each BCE / 2; finally both optimizers
    step (:452-453), so G's gradients are those of D before its update. Every D map is upsampled to
    the label size (`interp`) before its loss. Labels are (B, H, W) int64, 255 ignored.

    As the original, when no unlabelled pixel passes mask_t after `semi_start` nothing of the
    unlabelled branch is back-propagated, not even its adversarial term (:369-370).
    Returns the unweighted losses (loss_seg, loss_adv_pred, loss_semi_adv, loss_semi), loss_D (its
    two halves summed), semi_ratio, the logits pred / pred_remain and the confidence map."""
    size = tuple(labels.shape[1:])
    for p in model_d.parameters():  # :325-327
        p.requires_grad_(False)
    optimizer.zero_grad()
    optimizer_d.zero_grad()
    out = {}

    pred = interp(model(images_remain), size)  # :342-350
    pred_remain = pred.detach()
    d_out = interp(model_d(F.softmax(pred, dim=1)), size)
    confidence = torch.sigmoid(d_out).detach().squeeze(1)
    ignore_remain = torch.zeros(confidence.shape, dtype=torch.bool)
    loss_semi_adv = lambda_semi_adv * bce_2d(d_out, d_label(1, ignore_remain))
    out["loss_semi_adv"] = loss_semi_adv.item() / lambda_semi_adv
    out["loss_semi"], out["semi_ratio"] = 0.0, 0.0
    if lambda_semi <= 0 or i_iter < semi_start:  # :356-358
        loss_semi_adv.backward()
    else:  # :360-378
        semi_ignore = confidence < mask_t
        semi_gt = pred.detach().argmax(1)
        semi_gt[semi_ignore] = IGNORE_LABEL
        out["semi_ratio"] = 1.0 - float(semi_ignore.sum()) / semi_ignore.numel()
        if out["semi_ratio"] > 0.0:
            loss_semi = lambda_semi * cross_entropy_2d(pred, semi_gt)
            out["loss_semi"] = loss_semi.item() / lambda_semi
            (loss_semi + loss_semi_adv).backward()

    ignore = labels == IGNORE_LABEL  # :392-409
    pred = interp(model(images), size)
    loss_seg = cross_entropy_2d(pred, labels)
    d_out = interp(model_d(F.softmax(pred, dim=1)), size)
    loss_adv_pred = bce_2d(d_out, d_label(1, ignore))
    (loss_seg + lambda_adv_pred * loss_adv_pred).backward()
    out["loss_seg"], out["loss_adv_pred"] = loss_seg.item(), loss_adv_pred.item()

    for p in model_d.parameters():  # :414-448
        p.requires_grad_(True)
    fake = pred.detach()
    if d_remain:
        fake = torch.cat((fake, pred_remain), 0)
        ignore = torch.cat((ignore, ignore_remain), 0)
    loss_d_fake = bce_2d(interp(model_d(F.softmax(fake, dim=1)), size), d_label(0, ignore)) / 2
    loss_d_fake.backward()
    real = one_hot(labels_gt, pred.shape[1])
    loss_d_real = bce_2d(interp(model_d(real), size), d_label(1, labels_gt == IGNORE_LABEL)) / 2
    loss_d_real.backward()
    out["loss_D"] = loss_d_fake.item() + loss_d_real.item()

    optimizer.step()  # :452-453
    optimizer_d.step()
    out.update(pred=pred.detach(), pred_remain=pred_remain, confidence=confidence)
    return out
