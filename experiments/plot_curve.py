"""Training curve of a deblurring run: in-run PSNR of the whole pipeline, of the classical front end
alone (`prior_psnr`) and of the blurred input on the run's evaluation split (the validation split
since runs select on it; runs before that evaluated on the test split), against steps, from
WORKDIR/metrics.jsonl.

    python experiments/plot_curve.py WORKDIR docs/deblur_pretrained_curve.png [--mark STEP]
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def eval_rows(workdir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("split") == "eval"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("figure", type=Path)
    parser.add_argument("--mark", type=int, default=0, help="a step to mark (the exported checkpoint)")
    parser.add_argument("--split", default="validation", help="the split named on the y axis")
    args = parser.parse_args()
    rows = eval_rows(args.workdir)
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.plot(steps, [r["psnr"] for r in rows], label="whole pipeline (front end + GAN stage)")
    ax.plot(steps, [r["prior_psnr"] for r in rows], "--", label="classical front end alone")
    ax.plot(steps, [r["input_psnr"] for r in rows], ":", label="blurred input")
    if args.mark:
        ax.axvline(args.mark, color="gray", lw=0.8)
        ax.text(args.mark, ax.get_ylim()[0], f" exported: step {args.mark}", va="bottom", fontsize=8)
    ax.set_xlabel("training step")
    ax.set_ylabel(f"{args.split} PSNR (dB)")
    ax.legend(fontsize=8, loc="center right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.figure)
    for r in rows[::4] + rows[-1:]:
        print(f"step {r['step']:6d}: pipeline {r['psnr']:.3f}  front end {r['prior_psnr']:.3f}  "
              f"gain {r['psnr'] - r['prior_psnr']:+.3f} dB")


if __name__ == "__main__":
    main()
