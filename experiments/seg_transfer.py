"""Object-vs-background IoU of a trained segmentation run on seg_scenes' test split (in-distribution for
seg_scenes training) and on the two held-out sets of jaxgan.data.seg_heldout (photos, silhouettes and
composition code that no training generator shares), each beside Otsu's global threshold with the
better polarity chosen per image (a baseline that needs no training).

mean IoU: over the two classes; object IoU: the object class; both from the confusion matrix summed
over the whole set (as `jaxgan evaluate`), Otsu's likewise.

    python experiments/seg_transfer.py RUN_WORKDIR [--output results.json] [--live] [--flip-views 4]

--live scores the newest checkpoint's live G params instead of their EMA (what a run trained
before train.ema_batch_stats applies its EMA params with: the live batch-norm statistics). --flip-views:
G's logits averaged over the image and its flips (config.eval.flip_views; default: the run's own).
    python experiments/seg_transfer.py --otsu-only
"""

import argparse
import json

import numpy as np

from jaxgan.infer import FLIPS

SPLITS = ("test", "heldout_photos", "heldout_sklearn")


def otsu_scores(split: str) -> dict:
    """mean IoU and object IoU of Otsu's threshold (better polarity per image) over a seg_scenes split."""
    from skimage.filters import threshold_otsu

    from jaxgan.data import seg_heldout, seg_scenes

    confusion = np.zeros((2, 2), np.int64)
    for i in range(seg_heldout.DEFAULT_EXAMPLES):
        image, mask = (seg_scenes.scene_at(0, split, i) if split in ("val", "test")
                       else seg_heldout.heldout_scene(split, i))
        gray = image.astype(np.float64).mean(-1)
        above = gray > threshold_otsu(gray)
        pred = max((above, ~above), key=lambda p: (p & mask).sum() / max((p | mask).sum(), 1))
        for t in (0, 1):
            for q in (0, 1):
                confusion[t, q] += np.sum((mask == t) & (pred == q))
    iou = [confusion[c, c] / (confusion[c].sum() + confusion[:, c].sum() - confusion[c, c]) for c in (0, 1)]
    return {"mean_iou": float(np.mean(iou)), "object_iou": float(iou[1])}


def model_scores(workdir: str, split: str, live: bool = False, flip_views: int = 0) -> dict:
    from jaxgan.train import evaluate, restore_run, run_evaluation
    from jaxgan.train.checkpoint import read_config
    from jaxgan.train.parallel import to_host

    config, _ = read_config(workdir)
    config.data.name = "seg_scenes"
    config.data.num_eval_examples = 0
    config.data.eval_size = 128
    config.data.eval_batch_size = 25
    if flip_views:
        config.eval.flip_views = flip_views
    if live:
        run = restore_run(workdir)
        variables = to_host(run.state.generator_variables(use_ema=False))
        metrics, _ = run_evaluation(config, run.g_module, variables, split)
    else:
        metrics = evaluate(config, workdir=workdir, split=split)  # (the config given: the data and eval settings)
    return {"mean_iou": metrics["mean_iou"], "object_iou": metrics["iou"][1]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", nargs="?", default="")
    parser.add_argument("--otsu-only", action="store_true", help="only Otsu's figures (no run needed)")
    parser.add_argument("--output", default="")
    parser.add_argument("--live", action="store_true", help="the live G params, not their EMA")
    parser.add_argument("--flip-views", type=int, choices=tuple(FLIPS), default=0,
                        help="test-time flips (default: the run's config.eval.flip_views)")
    args = parser.parse_args()
    if not args.workdir and not args.otsu_only:
        parser.error("give a run's workdir, or --otsu-only")
    results = {}
    for split in SPLITS:
        row = {"otsu": otsu_scores(split)}
        if not args.otsu_only:
            row["model"] = model_scores(args.workdir, split, args.live, args.flip_views)
        results[split] = row
        print(f"seg_scenes/{split}: " + "  ".join(
            f"{who} mean IoU {s['mean_iou']:.3f} object IoU {s['object_iou']:.3f}" for who, s in row.items()),
            flush=True)
    if args.output:
        with open(args.output, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
