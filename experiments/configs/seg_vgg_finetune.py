"""seg_vgg_long's model with its VGG16 encoder unfrozen from conv3_1 on: a second stage that starts from a
finished seg_vgg_long run (`--config.train.init_from=` its workdir: G and D weights, fresh optimizers)
and trains conv3_1 .. conv4_3 together with the decoder at a tenth of the first stage's learning rate,
so the ImageNet features adapt to what separates an object from its background. conv1-2 (edges and
colours) stay as loaded. TernausNet (arXiv 1801.05746) fine-tunes its whole encoder; the first stage
here trains the decoder on frozen features first so the new layers do not wreck the pretrained ones.

    jaxgan train --config experiments/configs/seg_vgg_long.py --workdir runs/seg_vgg_long
    jaxgan train --config experiments/configs/seg_vgg_finetune.py --workdir runs/seg_vgg_finetune \
        --config.train.init_from=runs/seg_vgg_long
    python experiments/seg_transfer.py runs/seg_vgg_finetune [--flip-views 4]

README's best segmentation model is this stage run twice (the second with init_from the first's
workdir; its best checkpoint on val scored through a folder whose `checkpoints` is WORKDIR/best).
Measurements: README (segmentation).
"""

from pathlib import Path

import ml_collections

from jaxgan.config_io import load_config_file


def get_config() -> ml_collections.ConfigDict:
    c = load_config_file(Path(__file__).with_name("seg_vgg_long.py"))
    c.generator.options.train_encoder = True
    c.variants.transfer_from = ""  # the weights come from init_from
    c.variants.freeze_prefixes = tuple(f"encoder/Conv_{i}/" for i in range(4))  # conv1_1 .. conv2_2
    c.optim.g_lr = 1e-4
    c.optim.warmup_steps = 50
    c.train.steps = 1000
    return c
