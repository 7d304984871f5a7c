"""Semi-supervised adversarial segmentation on the built-in `shapes_seg` with 1/8 of the labels
(Hung et al., BMVC 2018), at CPU scale.

The labelled eighth of the train split (a fixed random choice, `variants.labelled_fraction`) trains
G with sigmoid cross-entropy + adversarial loss; D is Hung et al.'s fully convolutional
FCDiscriminator (`discriminator.name = 'fc'`: five 4x4 stride-2 convs, LeakyReLU 0.2), unconditional:
it sees the probability map only, in [0, 1] as their D(softmax(pred)) (`discriminator.mask_input`),
and its logit map is upsampled (bilinear, corners aligned) to the image size before every
adversarial loss and for the confidence map (`discriminator.upsample_logits`). Every batch also
holds as many unlabelled images from the other 7/8. As in hfslyc/AdvSemiSeg train.py:
- D learns the labelled AND the unlabelled predictions as fake (D_REMAIN True: pred = cat(pred,
  pred_remain)) against the labelled one-hot masks, each half of its loss x 0.5
  (`variants.semi_d_unlabelled`, `loss.d_loss_weight`);
- G's adversarial terms are judged by D before this step's D update: both optimizers step at the
  end of their iteration (`loss.g_sees_updated_d = False`);
- on the unlabelled images G gets the adversarial loss from step 0 (SEMI_START_ADV 0) and, only
  from step 500 on (`variants.semi_start_step`; theirs SEMI_START 5000 of 20000), a cross-entropy
  against its own predictions on the pixels D trusts (confidence >= 0.2, MASK_T).
Weights follow Hung et al. relative to the CE (theirs: CE 1, adversarial 0.01, unlabelled
adversarial 0.001, self-training 0.1; here CE x 100 and the unlabelled terms scaled up for this
small problem).

What differs from the original (tests/test_reference_semi_step.py checks one step of the rest
against a PyTorch transcription of train.py): G is a small U-Net (batch norm, one pass over the
labelled and unlabelled rows together) instead of DeepLab-v2 (ResNet-101, ImageNet/COCO weights,
one pass per batch), with one sigmoid channel for the two classes instead of a softmax over C
(D then sees 1 channel); Adam for G (theirs SGD, momentum 0.9, weight decay 5e-4, poly decay) and
Adam (0.5, 0.999) for D (theirs (0.9, 0.99)), a cosine schedule; D's real masks are the labelled
batch's own (theirs come from a second loader over the labelled subset); no ignore label (the
data has none).

    jaxgan train --config experiments/configs/semi_seg.py --workdir runs/semi_seg
    # supervised-only baseline with the same labels and steps:
    jaxgan train --config experiments/configs/semi_seg.py --workdir runs/sup_seg \
        --config.variants.semi_supervised=false
"""

import ml_collections

from jaxgan.config import base_config


def get_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.task = "segment"
    c.data.name = "shapes_seg"
    c.data.num_classes = 2
    c.data.crop_size = 96
    c.data.eval_size = 0
    c.data.batch_size = 8
    c.data.eval_batch_size = 16
    c.generator.name = "unet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=1, depth=5, base_width=32, norm="batch", dropout=False,
        upsample="resize", out_activation="none"))
    c.discriminator.name = "fc"  # Hung et al.'s FCDiscriminator (theirs base_width 64)
    c.discriminator.conditional = False  # Hung et al.: D sees the class-probability map only
    c.discriminator.options = ml_collections.ConfigDict(dict(in_channels=1, base_width=32))
    c.discriminator.mask_input = "probabilities"  # train.py: model_D(F.softmax(pred)), model_D(one_hot(labels))
    c.discriminator.upsample_logits = True  # train.py: interp(model_D(...)) before every BCE
    c.loss.adversarial = "vanilla"
    c.loss.adversarial_weight = 1.0
    c.loss.d_loss_weight = 0.5  # train.py: loss_D / 2 for the pred and the gt halves
    c.loss.g_sees_updated_d = False  # train.py: optimizer.step(), optimizer_D.step() at the end
    c.loss.mask = "sigmoid_ce"
    c.loss.mask_weight = 100.0
    c.loss.pixel = "none"
    c.optim.g_lr = 1e-3
    c.optim.d_lr = 1e-4
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 100
    c.train.steps = 2000
    c.train.log_every = 100
    c.train.eval_every = 1000
    c.train.checkpoint_every = 1000
    c.train.best_metric = "mean_iou"
    c.variants.labelled_fraction = 1 / 8
    c.variants.semi_supervised = True
    c.variants.semi_adversarial_weight = 0.1
    c.variants.semi_self_training_weight = 10.0
    c.variants.semi_threshold = 0.2
    c.variants.semi_start_step = 500  # self-training only; the unlabelled adversarial term from step 0
    c.variants.semi_d_unlabelled = True
    return c
