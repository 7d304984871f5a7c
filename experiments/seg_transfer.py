"""Mean IoU of a trained segmentation run on shapes_seg's test split and photo_seg's test (in-distribution
for photo_seg training) and heldout (photos and silhouettes no training sees) splits.

    python experiments/seg_transfer.py RUN_WORKDIR [--output results.json]
"""

import argparse
import json

from jaxgan.train import evaluate
from jaxgan.train.checkpoint import read_config

SPLITS = (("shapes_seg", "test"), ("photo_seg", "test"), ("photo_seg", "heldout"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir")
    parser.add_argument("--output", default="")
    args = parser.parse_args()
    results = {}
    for name, split in SPLITS:
        config, _ = read_config(args.workdir)
        config.data.name = name
        config.data.num_train_examples = 0  # the default split sizes
        metrics = evaluate(config, workdir=args.workdir, split=split)
        results[f"{name}/{split}"] = {k: metrics[k] for k in ("mean_iou", "iou", "mean_dice", "pixel_accuracy")}
        print(f"{name}/{split}: {results[f'{name}/{split}']}", flush=True)
    if args.output:
        with open(args.output, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
