"""Quick segmentation on the built-in `seg_scenes` (object vs background scenes without end: photo,
dead-leaves, procedural and plain surfaces; blobs, polygons, strokes, letters, noise outlines and the
outlines of objects in the shipped photos; jaxgan/data/seg_scenes.py), on 2 CPU cores.

pix2pix recipe at CPU scale (junyanz/pytorch-CycleGAN-and-pix2pix models/pix2pix_model.py: conditional
GAN + weighted pixel term; networks.py UnetGenerator, NLayerDiscriminator): U-Net (7 levels, so the
innermost 4x4-stride-2 conv sees the whole 128x128 scene; width 32, batch norm, resize-conv
upsampling) giving one logit per pixel (object vs background), conditional PatchGAN on
concat(image, mask), vanilla GAN + 100 x (sigmoid cross-entropy + soft Dice) in place of L1 (a mask,
not an image, on purpose), G Adam 1e-3 (50 warm-up steps, cosine decay), D 2e-4, betas (0.5, 0.999),
batch 8, 128x128 scenes (a fresh one for every example: nothing repeats), 250 steps; the best
checkpoint is chosen on seg_scenes' val split.

    jaxgan train --config experiments/configs/seg_quick.py --workdir runs/seg_quick
    python experiments/seg_transfer.py runs/seg_quick     # in-distribution, two held-out sets, Otsu

Measurements: README ("Segmentation that finds objects") and benchmarks/HISTORY.md.
"""

import ml_collections

from jaxgan.config import base_config


def get_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.task = "segment"
    c.data.name = "seg_scenes"
    c.data.num_classes = 2
    c.data.crop_size = 128
    c.data.eval_size = 0
    c.data.batch_size = 8
    c.data.eval_batch_size = 25
    c.data.cache = False  # every training scene is new
    c.generator.name = "unet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=1, depth=7, base_width=32, norm="batch", dropout=False,
        upsample="resize", out_activation="none"))
    c.discriminator.name = "patchgan"
    c.discriminator.conditional = True
    c.discriminator.options = ml_collections.ConfigDict(dict(
        in_channels=4, base_width=32, num_layers=3, norm="batch"))
    c.loss.adversarial = "vanilla"
    c.loss.adversarial_weight = 1.0
    c.loss.mask = "ce_dice"
    c.loss.mask_weight = 100.0
    c.loss.pixel = "none"
    c.optim.g_lr = 1e-3
    c.optim.d_lr = 2e-4
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 50
    c.train.steps = 250
    c.train.log_every = 100
    c.train.eval_every = 250
    c.train.checkpoint_every = 125
    c.train.best_metric = "mean_iou"
    return c
