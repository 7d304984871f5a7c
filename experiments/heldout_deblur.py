"""Held-out deblurring evaluation: full-size photos no jaxgan training set holds (scikit-image's chelsea,
coffee and rocket, the test photos of photo_blur and leaves_blur), blurred by a generator that is not
the training one (jaxgan.data.tremor_blur: drift + tremor trajectories, Gaussian footprints).

    # once: OUT/test/{blur,sharp}/PHOTO_K.png, a folder_deblur dataset (KERNELS kernels per photo)
    python experiments/heldout_deblur.py make /work/runs/heldout_tremor
    # a training run, or a shipped model: PSNR / SSIM / LPIPS of the output, the blurred input and the
    # front end alone (prior_*) on the whole photos, one at a time
    python experiments/heldout_deblur.py evaluate /work/runs/heldout_tremor --workdir W --output W/eval_tremor.json
    python experiments/heldout_deblur.py evaluate /work/runs/heldout_tremor --pretrained deblur --output x.json
    # DATA = leaves_blur:TFDS_DATA_DIR[:N]: leaves_blur's test split instead (e.g. a shipped model, which has no workdir)

A training run's figures are the same as `jaxgan evaluate --workdir W --split test
--config.data.name=folder_deblur --config.data.path=OUT --config.data.eval_size=0
--config.data.eval_batch_size=1 --config.data.num_eval_examples=0`.
"""

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from jaxgan.infer import FLIPS

PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg")
KERNELS = 4
SEED = 0


def make(out: Path) -> None:
    from jaxgan.data import tremor_blur
    from jaxgan.data.photo_blur import skimage_photo

    for d in ("blur", "sharp"):
        (out / "test" / d).mkdir(parents=True, exist_ok=True)
    for p, name in enumerate(PHOTOS):
        sharp = skimage_photo(name)
        for k in range(KERNELS):
            index = p * KERNELS + k
            blurred, kernel = tremor_blur.degrade(SEED, index, sharp)
            stem = f"{name.split('.')[0]}_{k}.png"
            Image.fromarray(blurred).save(out / "test" / "blur" / stem)
            Image.fromarray(sharp).save(out / "test" / "sharp" / stem)
            print(f"{stem}: {sharp.shape[1]}x{sharp.shape[0]}, kernel {kernel.shape[0]} px")


def evaluate(data: Path, workdir: str, name: str, output: Path, flip_views: int = 0) -> dict:
    from jaxgan import bundle, pretrained
    from jaxgan.train.evaluation import run_evaluation

    generator = bundle.load_generator(workdir) if workdir else pretrained.load(name)
    config, module, variables = generator.config, generator.module(), generator.variables
    if str(data).startswith("leaves_blur:"):  # leaves_blur's test split (80 crops of 256x256), the same for
        # every pool size: read from the build of N train examples (default 1536, deblur_leaves') in data_dir
        _, data_dir, *n = str(data).split(":")
        config.data.name, config.data.data_dir = "leaves_blur", data_dir
        config.data.num_train_examples, config.data.synthetic_fraction = int(n[0]) if n else 1536, 0.5
        config.data.eval_size, config.data.eval_batch_size, config.data.num_eval_examples = 256, 16, 0
    else:
        config.data.name, config.data.path = "folder_deblur", str(data)
        config.data.eval_size, config.data.eval_batch_size, config.data.num_eval_examples = 0, 1, 0
    if flip_views:  # test-time flips of the learned stage's input (config.eval.flip_views)
        config.eval.flip_views = flip_views
    results, _ = run_evaluation(config, module, variables, split="test", lpips=True)
    results = {k: float(v) for k, v in results.items()}
    text = json.dumps(results, indent=1, sort_keys=True)
    print(text)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text + "\n")
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("make", "evaluate"))
    parser.add_argument("data", type=Path)
    parser.add_argument("--workdir", default="")
    parser.add_argument("--pretrained", default="")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--flip-views", type=int, choices=tuple(FLIPS), default=0,
                        help="test-time flips (default: the model's config.eval.flip_views)")
    args = parser.parse_args()
    if args.command == "make":
        make(args.data)
    else:
        if bool(args.workdir) == bool(args.pretrained) or args.output is None:
            parser.error("evaluate needs --output and one of --workdir / --pretrained")
        evaluate(args.data, args.workdir, args.pretrained, args.output, args.flip_views)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
