"""Exports a trained deblurring run as a shipped model (jaxgan/pretrained/NAME.npz + NAME.json card).

The card records what a user needs to trust the file: the data and recipe (the run's config), the
steps and training wall time (from WORKDIR/metrics.jsonl), the metrics of `jaxgan evaluate` (a JSON
file it wrote), the time of one prediction on a 1280x720 photo on this machine, and known limits.

    jaxgan evaluate --workdir W --output W/eval_test.json
    python experiments/export_pretrained.py W --name deblur --eval W/eval_test.json --limits "..."
"""

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from jaxgan import pretrained
from jaxgan.export import export_generator
from jaxgan.predict import Predictor, load_pretrained


def training_record(workdir: Path) -> dict:
    """Steps and summed training time (sum over logged windows of steps / steps_per_sec)."""
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in rows if r.get("split") == "train"]
    seconds, previous = 0.0, 0
    for r in train:
        seconds += (r["step"] - previous) / max(r["steps_per_sec"], 1e-9)
        previous = r["step"]
    return {"steps": previous, "train_seconds": round(seconds)}


def time_1280x720(name: str, directory: Path) -> dict:
    """Seconds for one 1280x720 photo through `Predictor` (first call: prior and net compile)."""
    predictor = Predictor.from_config(*load_pretrained(name, directory))
    image = np.random.default_rng(0).uniform(-1, 1, (720, 1280, 3)).astype(np.float32)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        predictor.predict_array(image, tile_size=768)
        times.append(time.perf_counter() - start)
    return {"first_call_s": round(times[0], 1), "warm_s": round(times[1], 1),
            "machine": f"{platform.processor() or platform.machine()}, this project's 2-core development VM"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--name", default="deblur")
    parser.add_argument("--eval", type=Path, required=True, help="JSON written by jaxgan evaluate")
    parser.add_argument("--limits", default="", help="known limits, one sentence")
    parser.add_argument("--note", default="", help="where the gain comes from, one sentence")
    parser.add_argument("--directory", type=Path, default=pretrained.PRETRAINED_DIR)
    args = parser.parse_args()
    metrics = json.loads(args.eval.read_text())
    card = {"config_file": "experiments/configs/deblur_pretrained.py", **training_record(args.workdir),
            "metrics_test": metrics, "note": args.note, "known_limits": args.limits}
    export_generator(str(args.workdir), args.name, args.directory, card)
    card["inference_1280x720"] = time_1280x720(args.name, args.directory)
    export_generator(str(args.workdir), args.name, args.directory, card)
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
