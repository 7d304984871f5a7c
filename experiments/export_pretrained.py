"""Exports a trained deblurring run as a shipped model (jaxgan/pretrained/NAME.npz + NAME.json card).

The card records what a user needs to trust the file: the data and recipe (the run's config), the
steps and training wall time (from WORKDIR/metrics.jsonl), the metrics of `jaxgan evaluate` (a JSON
file it wrote), the time of one prediction on a 1280x720 photo on this machine, and known limits.

    jaxgan evaluate --workdir W --output W/eval_test.json
    python experiments/heldout_deblur.py evaluate HELDOUT_DIR --workdir W --output W/eval_tremor.json
    python experiments/export_pretrained.py W --best --name deblur --eval W/eval_test.json \
        --heldout W/eval_tremor.json --limits "..."

--flip-views N ships the model with test-time flips (config.eval.flip_views: `jaxgan predict --pretrained`
averages its learned stage over N flips); measure the --eval / --heldout JSONs with the same setting.

--best exports the checkpoint kept by train.best_metric on the validation split (WORKDIR/best) instead
of the latest; the card names that split. (With --best, evaluate the same checkpoint: `jaxgan evaluate`
and heldout_deblur.py read the latest one, so point them at a folder whose `checkpoints` is WORKDIR/best.)
"""

import argparse
import dataclasses
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from jaxgan import bundle as bundle_lib
from jaxgan import pretrained
from jaxgan.infer import FLIPS
from jaxgan.predict import Predictor


def training_record(workdir: Path, last_step: int | None = None) -> dict:
    """Steps and summed training time (sum over logged windows of steps / steps_per_sec) up to last_step."""
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in rows if r.get("split") == "train" and (last_step is None or r["step"] <= last_step)]
    seconds, previous = 0.0, 0
    for r in train:
        seconds += (r["step"] - previous) / max(r["steps_per_sec"], 1e-9)
        previous = r["step"]
    return {"steps": previous, "train_seconds": round(seconds)}


def time_1280x720(name: str, directory: Path) -> dict:
    """Seconds for one 1280x720 photo through `Predictor` (first call: prior and net compile)."""
    predictor = Predictor(pretrained.load(name, directory))
    image = np.random.default_rng(0).uniform(-1, 1, (720, 1280, 3)).astype(np.float32)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        predictor.predict_array(image, tile_size=768)
        times.append(time.perf_counter() - start)
    return {"first_call_s": round(times[0], 1), "warm_s": round(times[1], 1),
            "machine": f"{platform.processor() or platform.machine()}, this project's 2-core development VM"}


def validation_record(workdir: Path) -> str:
    """Which split chose the checkpoint, from the run's config.json."""
    config = json.loads((workdir / "config.json").read_text())
    data = config["data"]
    return (f"{data['name']} split '{data.get('validation_split', 'val')}' (best by "
            f"{config['train']['best_metric']}); the test split '{data['eval_split']}' was evaluated once")


def export_bundle(source: Path, name: str, directory: Path, card: dict, flip_views: int) -> Path:
    """The run's newest generator (EMA params when kept) as shipped model NAME, with `card` and, when
    flip_views > 0, that many test-time flips in its config."""
    bundle = bundle_lib.load_generator(str(source))
    if flip_views:
        bundle.config.eval.flip_views = flip_views
    return dataclasses.replace(bundle, card=card).save(pretrained.model_dir(name, directory))


def best_view(workdir: Path) -> tuple[Path, int]:
    """A temporary folder whose `checkpoints` is WORKDIR/best (what the exporter reads), and the best step."""
    steps = [int(p.name) for p in (workdir / "best").iterdir() if p.name.isdigit()]
    view = Path(tempfile.mkdtemp(prefix="jaxgan-best-"))
    (view / "checkpoints").symlink_to((workdir / "best").resolve())
    return view, max(steps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--name", default="deblur")
    parser.add_argument("--eval", type=Path, required=True, help="JSON written by jaxgan evaluate")
    parser.add_argument("--limits", default="", help="known limits, one sentence")
    parser.add_argument("--note", default="", help="where the gain comes from, one sentence")
    parser.add_argument("--directory", type=Path, default=pretrained.PRETRAINED_DIR)
    parser.add_argument("--config-file", default="experiments/configs/deblur_leaves.py")
    parser.add_argument("--best", action="store_true", help="export WORKDIR/best (chosen on validation)")
    parser.add_argument("--heldout", type=Path, help="JSON of heldout_deblur.py evaluate (held-out photos)")
    parser.add_argument("--flip-views", type=int, choices=tuple(FLIPS), default=0,
                        help="ship with test-time flips (config.eval.flip_views; default: the run's)")
    args = parser.parse_args()
    metrics = json.loads(args.eval.read_text())
    source, last = (best_view(args.workdir) if args.best else (args.workdir, None))
    card = {"config_file": args.config_file, **training_record(args.workdir, last),
            "validation_split": validation_record(args.workdir), "metrics_test": metrics, "note": args.note,
            "known_limits": args.limits}
    if args.heldout:
        card["metrics_heldout_tremor"] = json.loads(args.heldout.read_text())
    export_bundle(source, args.name, args.directory, card, args.flip_views)
    card["inference_1280x720"] = time_1280x720(args.name, args.directory)
    shutil.rmtree(pretrained.model_dir(args.name, args.directory))  # written again, with the timing in its card
    export_bundle(source, args.name, args.directory, card, args.flip_views)
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
