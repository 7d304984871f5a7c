"""Input pipeline of each published setup on its real data layout, against what an H100 step would eat. Not a test.

    JAX_PLATFORMS=cpu python -m benchmarks.input_pipeline [--examples 48] [--pairs 24] [--cores 1,2]
        [--cases pets,gopro_deblurgan,gopro_dgv2,photo_blur,photo_seg] [--out DIR] [--store-dir DIR]
        [--before-tree DIR]

Cases (each the published config, experiments/configs, with its own crop, batch, resize and augmentation):
- pets: pix2pix_pets_seg on a pets-like `folder_seg` (JPEG photos about 500 x 375 and PNG masks, as
  Oxford-IIIT Pet's; the tfds dataset is not prepared here), resize 286, crop 256, flip, batch 1;
- gopro_deblurgan: deblurgan_gopro on a GoPro-layout folder (train/SCENE/blur|sharp/*.png, 1280 x 720),
  resize to 640 x 360, crop 256, flip, batch 1;
- gopro_dgv2: deblurganv2_mobilenet_gopro on the same folder: native frames, its augmentation, batch 1;
- photo_blur / photo_seg: the built-ins (256 x 256 stored crops / 160 x 160 scenes) at the pix2pix crop.
The folder cases are measured with the in-memory decoded cache off, as for the real GoPro train split
(2103 pairs decode to 11.6 GB, over the cache's limit), and with config.data.store (a decoded uint8 store
on disk, jaxgan.data.store) when --store-dir is given. Each (case, cores) runs in a child process pinned
to that many cores (sched_setaffinity before TensorFlow starts, so tf.data's pools size to them);
images/s = training examples per second over --examples after the first batch; CPU s per image =
the process's CPU time (all threads) over the same batches, which a busy machine inflates far less
than wall time: its inverse is the rate per core, and 14 cores at that rate is the "14 cores (CPU
time)" projection (tf.data's parallel map scales that way while it has examples to decode).
--before-tree DIR (a checkout of an earlier commit, e.g. `git archive COMMIT | tar -x -C DIR`) runs
every (case, store, cores) child a second time with DIR's code, right after this tree's, so that a
change is measured before / after in one run (the machine's load drifts between runs).

Projected need: the step's FLOPs per 256 x 256 example (XLA's cost analysis of the full-width train
step at batch 1, conv_impl 'xla', critic loop unrolled so that every update is counted) at 20 % and
40 % of an H100's dense bf16 peak (989 TFLOP/s). Projection to 14 cores: the 1-core rate plus 13 times
the measured gain of the second core (linear; the verdict says whether that meets 40 % / 20 %).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks import harness, measure

H100_BF16_FLOPS = 989e12
CASES = ("pets", "gopro_deblurgan", "gopro_dgv2", "photo_blur", "photo_seg")
SETUP_OF_CASE = {"pets": "pix2pix", "gopro_deblurgan": "deblurgan", "gopro_dgv2": "fpn_mobilenet",
                 "photo_blur": "pix2pix", "photo_seg": "pix2pix"}
CONFIG_OF_CASE = {"pets": "pix2pix_pets_seg", "gopro_deblurgan": "deblurgan_gopro",
                  "gopro_dgv2": "deblurganv2_mobilenet_gopro", "photo_blur": "pix2pix_pets_seg",
                  "photo_seg": "pix2pix_pets_seg"}


def _photos() -> list[np.ndarray]:
    from skimage import data

    return [data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.immunohistochemistry()]


def make_gopro_folder(root: str, pairs: int) -> None:
    """train/SCENE/blur|sharp/NNNNNN.png pairs of 1280 x 720 photos (scikit-image's, resized and shifted)."""
    from PIL import Image, ImageFilter

    photos = _photos()
    for i in range(pairs):
        scene = os.path.join(root, "train", f"GOPR{i // 8:04d}")
        for sub in ("blur", "sharp"):
            os.makedirs(os.path.join(scene, sub), exist_ok=True)
        sharp = Image.fromarray(np.roll(photos[i % len(photos)], 7 * i, axis=1)).resize((1280, 720), Image.BICUBIC)
        sharp.save(os.path.join(scene, "sharp", f"{i:06d}.png"))
        sharp.filter(ImageFilter.BoxBlur(4)).save(os.path.join(scene, "blur", f"{i:06d}.png"))


def make_pets_folder(root: str, pairs: int) -> None:
    """train/images/*.jpg (about 500 x 375, quality 90) + train/masks/*.png (0 / 1 class indices)."""
    from PIL import Image

    photos = _photos()
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        os.makedirs(os.path.join(root, "train", sub), exist_ok=True)
    for i in range(pairs):
        w, h = (500, 375) if i % 3 else (375, 500)
        image = Image.fromarray(photos[i % len(photos)]).resize((w, h), Image.BICUBIC)
        image.save(os.path.join(root, "train", "images", f"pet_{i:04d}.jpg"), quality=90)
        yy, xx = np.mgrid[:h, :w]
        cy, cx, r = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, rng.uniform(0.2, 0.4) * min(h, w)
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(np.uint8)
        Image.fromarray(mask).save(os.path.join(root, "train", "masks", f"pet_{i:04d}.png"))


def case_config(case: str, folders: dict, data_dir: str, store_dir: str):
    from jaxgan import config_io

    c = config_io.load_config(harness.CONFIGS / f"{CONFIG_OF_CASE[case]}.py")
    c.data.data_dir = data_dir
    if case == "pets":
        c.data.name, c.data.path = "folder_seg", folders["pets"]
    elif case.startswith("gopro"):
        c.data.path = folders["gopro"]
    else:
        c.task = "deblur" if case == "photo_blur" else "segment"
        c.data.name = case
        c.data.load_size = (0, 0)
        c.data.crop_size = 128 if case == "photo_seg" else 256  # (photo_seg scenes are 160 x 160)
    if case in ("pets", "gopro_deblurgan", "gopro_dgv2"):
        c.data.cache = False  # the real splits exceed the in-memory cache (GoPro) or come close (pets)
        if "store" in c.data:  # (the published GoPro configs' 'auto' would write to ~/.cache)
            c.data.store = os.path.join(store_dir, case) if store_dir else ""
    return c


def measure_case(case: str, cores: int, examples: int, folders: dict, data_dir: str, store_dir: str) -> dict:
    """Runs in the child: images/s of the case's training iterator."""
    from jaxgan.data import make_train_iterator

    config = case_config(case, folders, data_dir, store_dir)
    t0 = time.perf_counter()
    iterator = make_train_iterator(config, process_index=0, process_count=1)
    next(iterator)
    first = time.perf_counter() - t0
    batches = max(1, examples // config.data.batch_size)
    t0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(batches):
        next(iterator)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"case": case, "cores": cores, "images_per_s": batches * config.data.batch_size / seconds,
            "cpu_s_per_image": cpu / (batches * config.data.batch_size),
            "first_batch_s": first, "crop": config.data.crop_size, "batch": config.data.batch_size,
            "store": bool(config.data.get("store", "")), "load": os.getloadavg()[0]}


def run_child(case: str, cores: int, args, folders: dict, store_dir: str, tree: str = "") -> dict:
    """measure_case in a child pinned to `cores` cores, importing jaxgan and benchmarks from `tree`
    (default: this checkout)."""
    available = sorted(os.sched_getaffinity(0))
    env = dict(os.environ, TF_NUM_INTEROP_THREADS=str(cores), TF_NUM_INTRAOP_THREADS=str(cores))
    if tree:
        env["PYTHONPATH"] = tree
    code = (f"import os, json, sys; os.sched_setaffinity(0, {available[:cores]!r}); "
            f"from benchmarks.input_pipeline import measure_case; "
            f"print('RESULT', json.dumps(measure_case({case!r}, {cores}, {args.examples}, {folders!r}, "
            f"{args.data_dir!r}, {store_dir!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800, env=env,
                          cwd=tree or None)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"case": case, "cores": cores, "error": (done.stderr.strip().splitlines() or ["?"])[-1]}


GEOMETRIC_DRAWS = ("none", "hflip", "transpose", "shift_scale_rotate", "optical_distortion", "elastic_affine")
CORRUPT_DRAWS = ("none", "cutout", "jpeg", "motion_blur", "median_blur 3", "median_blur 5", "median_blur 7",
                 "gamma", "rgb_shift", "hsv_shift", "sharpen")


def _corrupt_draw(seed):
    """The corruption deblurganv2_aug.corrupt draws for `seed` (a name of CORRUPT_DRAWS), from its
    seed layout (split in 8: apply, choice, parameters, median window)."""
    from jaxgan.data.tf_cpu import tf

    seeds = tf.random.experimental.stateless_split(seed, 8)
    if float(tf.random.stateless_uniform([], seeds[0])) >= 0.5:
        return "none"
    choice = int(tf.random.stateless_uniform([], seeds[1], 0, 8, dtype=tf.int32))
    names = ("cutout", "jpeg", "motion_blur", "median_blur", "gamma", "rgb_shift", "hsv_shift", "sharpen")
    if names[choice] == "median_blur":
        return f"median_blur {2 * int(tf.random.stateless_uniform([], seeds[3], 0, 3, dtype=tf.int32)) + 3}"
    return names[choice]


def measure_parts(calls: int, folders: dict, data_dir: str, store_dir: str) -> dict:
    """Runs in the child: CPU ms per call of each part of DeblurGAN-v2's training example, each
    mapped over `calls` elements of a tf.data pipeline on one thread (as the input pipeline runs
    it): reading the stored pair, the window for each geometric draw, each corruption of a crop."""
    from jaxgan.data import deblurganv2_aug, pipeline
    from jaxgan.data.tf_cpu import tf

    config = case_config("gopro_dgv2", folders, data_dir, store_dir)
    load = pipeline.make_loader(pipeline.make_source(config, config.data.train_split), config)
    frames = load(tf.constant(0, tf.int64))
    image, target = frames["input"], frames["target"]
    height, width = (float(d) for d in image.shape[:2])
    crop = config.data.crop_size
    window_seed, corrupt_seed = {}, {}
    for i in range(4000):
        seed = tf.constant([i, 7], tf.int64)
        choice = int(deblurganv2_aug.window_coordinates(height, width, crop, seed)[0])
        window_seed.setdefault(GEOMETRIC_DRAWS[choice + 1], seed)
        corrupt_seed.setdefault(_corrupt_draw(seed), seed)
        if len(window_seed) == len(GEOMETRIC_DRAWS) and len(corrupt_seed) == len(CORRUPT_DRAWS):
            break
    patch = deblurganv2_aug.geometric_window(image, target, crop, window_seed["none"])[0]

    def cpu_ms(fn):
        ds = tf.data.Dataset.range(calls + 1).map(fn, num_parallel_calls=1)
        it = iter(ds)
        next(it)
        t0 = time.process_time()
        for _ in range(calls):
            next(it)
        return 1000 * (time.process_time() - t0) / calls

    rows = {"read the stored pair": cpu_ms(lambda i: load(i % 4))}
    for name in GEOMETRIC_DRAWS:
        rows[f"window: {name}"] = cpu_ms(lambda i, s=window_seed[name]: deblurganv2_aug.geometric_window(
            image, target, crop, s))
    for name in CORRUPT_DRAWS:
        rows[f"corruption: {name}"] = cpu_ms(lambda i, s=corrupt_seed[name]: deblurganv2_aug.corrupt(patch, s))
    return rows


def parts_table(runs: dict, calls: int) -> str:
    """Per part, CPU ms per call of each code (before / after) and each expectation per example
    (draw probabilities: a window transform 1/2 none, 1/10 each; a corruption 1/2 none, 1/16 each,
    median windows 1/48 each)."""
    codes = list(runs)
    lines = [f"DeblurGAN-v2's example by part: CPU ms per call, one thread, in tf.data over {calls} calls", "",
             "| part | " + " | ".join(codes) + " |", "|---|" + "---|" * len(codes)]
    names = list(next(iter(runs.values())))
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{runs[c].get(name, float('nan')):.2f}" for c in codes) + " |")

    def weight(name):
        kind, _, draw = name.partition(": ")
        if kind == "window":
            return 0.5 if draw == "none" else 0.1
        if kind == "corruption":
            return 0.5 if draw == "none" else 1 / 48 if draw.startswith("median") else 1 / 16
        return 1.0
    for label, prefix in (("expected window", "window"), ("expected corruption", "corruption"),
                          ("expected median blur", "corruption: median"), ("read + window + corruption", "")):
        cells = [sum(weight(n) * runs[c][n] for n in names if n.startswith(prefix)) for c in codes]
        lines.append(f"| **{label}** | " + " | ".join(f"{v:.2f}" for v in cells) + " |")
    return "\n".join(lines)


def run_parts_child(args, folders: dict, store_dir: str, tree: str = "") -> dict:
    """measure_parts in a child pinned to one core (jaxgan from this checkout, or from `tree`)."""
    env = dict(os.environ, TF_NUM_INTEROP_THREADS="1", TF_NUM_INTRAOP_THREADS="1")
    if tree:
        env["PYTHONPATH"] = tree
    # this file's measure_parts, with jaxgan imported from `tree` (an earlier checkout may not have it)
    code = (f"import os, json, importlib.util as u; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[:1]!r}); "
            f"spec = u.spec_from_file_location('input_pipeline_parts', {os.path.abspath(__file__)!r}); "
            f"m = u.module_from_spec(spec); spec.loader.exec_module(m); "
            f"print('RESULT', json.dumps(m.measure_parts({args.parts}, {folders!r}, {args.data_dir!r}, "
            f"{store_dir!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800, env=env,
                          cwd=tree or None, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError((done.stderr.strip().splitlines() or ["?"])[-1])


def step_flops(setup: str) -> float:
    """XLA's FLOP count of one full-width train step on one 256 x 256 example (see module docstring)."""

    config = harness.setup_config(setup, 256, 1)
    config.train.conv_impl = "xla"
    return harness.step_flops(config, 1, 256)


def table(rows: list[dict], flops: dict, title: str) -> str:
    lines = [title, "", "| setup | layout | crop / batch | img/s 1 core | img/s 2 cores | 14 cores (wall) | "
             "CPU ms / image | 14 cores (CPU time) | need at 20 % H100 | need at 40 % | verdict (CPU time) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for case in dict.fromkeys(r["case"] for r in rows):
        by_cores = {r["cores"]: r for r in rows if r["case"] == case}
        one, two = by_cores.get(1, {}), by_cores.get(2, {})
        setup = SETUP_OF_CASE[case]
        need20 = 0.2 * H100_BF16_FLOPS / flops[setup] if flops.get(setup) else float("nan")
        need40 = 2 * need20
        wall = [f"{r['images_per_s']:.1f}" if "images_per_s" in r else "-" for r in (one, two)]
        projected = (f"{one['images_per_s'] + 13 * max(0.0, two['images_per_s'] - one['images_per_s']):.0f}"
                     if "images_per_s" in one and "images_per_s" in two else "-")
        cpu = [r["cpu_s_per_image"] for r in (two, one) if r.get("cpu_s_per_image")]
        if cpu:
            by_cpu = 14 / cpu[0]
            verdict = ("meets 40 %" if by_cpu >= need40 else "meets 20 %" if by_cpu >= need20
                       else f"short ({by_cpu / need20:.2f}x of 20 %)")
            rate = f"{wall[0]} | {wall[1]} | {projected} | {1000 * cpu[0]:.1f} | {by_cpu:.0f}"
        else:
            verdict, rate = "error: " + str(one.get("error") or two.get("error")), " | | | | "
        crop = f"{(one or two).get('crop', '')} / {(one or two).get('batch', '')}"
        lines.append(f"| {setup} | {case} | {crop} | {rate} | {need20:.0f} | {need40:.0f} | {verdict} |")
    return "\n".join(lines)


def comparison(rows: list[dict], flops: dict, title: str) -> str:
    """CPU ms per image (2 cores, else 1) of each case: before files / before store / after files /
    after store, the after store's gain over the before store, its 14-core projection and verdict."""
    lines = [title, "", "| setup | layout | CPU ms / image: before files | before store | after files | after store | "
             "after store vs before store | 14 cores (CPU time), after store | need at 20 % / 40 % H100 | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for case in dict.fromkeys(r["case"] for r in rows):
        def cpu(code, store):
            found = sorted((r for r in rows if r["case"] == case and r.get("code") == code and r["store"] == store
                            and r.get("cpu_s_per_image")), key=lambda r: -r["cores"])
            return found[0]["cpu_s_per_image"] if found else None
        cells = [cpu("before", False), cpu("before", True), cpu("after", False), cpu("after", True)]
        setup = SETUP_OF_CASE[case]
        need20 = 0.2 * H100_BF16_FLOPS / flops[setup]
        best_after = cells[3] or cells[2]
        by_cpu = 14 / best_after if best_after else float("nan")
        verdict = ("meets 40 %" if by_cpu >= 2 * need20 else "meets 20 %" if by_cpu >= need20
                   else f"short ({by_cpu / need20:.2f}x of 20 %)")
        gain = f"{cells[1] / cells[3]:.2f}x" if cells[1] and cells[3] else "-"
        ms = " | ".join(f"{1000 * c:.1f}" if c else "-" for c in cells)
        lines.append(f"| {setup} | {case} | {ms} | {gain} | {by_cpu:.0f} | {need20:.0f} / {2 * need20:.0f} | "
                     f"{verdict} ({by_cpu / (2 * need20):.2f}x of 40 %) |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--cores", default="1,2")
    p.add_argument("--examples", type=int, default=48)
    p.add_argument("--pairs", type=int, default=24, help="pairs per generated folder")
    p.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "jaxgan_bench_tfds"))
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "jaxgan_bench_pipeline"))
    p.add_argument("--store-dir", default="", help="also measure the folder cases from a decoded store here")
    p.add_argument("--flops", default="", help="JSON {setup: flops} instead of XLA's count (saves minutes)")
    p.add_argument("--out", default="", help="results folder (default benchmarks/results/latest)")
    p.add_argument("--before-tree", default="", help="also run every child with this checkout's code")
    p.add_argument("--parts", type=int, default=0, help="instead: DeblurGAN-v2's example by part, CPU ms per "
                   "call over this many calls each (one core; with --before-tree, before and after)")
    args = p.parse_args(argv)
    folders = {"gopro": os.path.join(args.work, "gopro"), "pets": os.path.join(args.work, "pets")}
    if not os.path.isdir(folders["gopro"]):
        make_gopro_folder(folders["gopro"], args.pairs)
    if not os.path.isdir(folders["pets"]):
        make_pets_folder(folders["pets"], args.pairs * 4)
    if args.parts:
        where = os.path.join(args.store_dir, "{}") if args.store_dir else ""
        runs = {"after": run_parts_child(args, folders, where.format("after"))}
        if args.before_tree:
            runs = {"before": run_parts_child(args, folders, where.format("before"), os.path.abspath(args.before_tree)),
                    **runs}
        report = {"machine": measure.machine(), "command": measure.command("input_pipeline", argv),
                  "load": os.getloadavg(), "parts": runs}
        text = f"{report['machine']['date']}, {report['machine']['cpu']}. Command: `{report['command']}`\n\n" + \
            parts_table(runs, args.parts)
        print(text)
        measure.write_result("input_pipeline_parts", report, text + "\n", out=args.out)
        return report
    cases = args.cases.split(",")
    flops = json.loads(args.flops) if args.flops else {}
    for setup in dict.fromkeys(SETUP_OF_CASE[c] for c in cases):
        if setup not in flops:
            flops[setup] = step_flops(setup)
        print(f"{setup}: {flops[setup] / 1e9:.0f} GFLOP per 256x256 example-step", flush=True)
    report = {"machine": measure.machine(), "command": measure.command("input_pipeline", argv),
              "load_before": os.getloadavg(), "cpus": measure.cores(), "flops": flops, "rows": []}
    codes = [("after", "")] + ([("before", os.path.abspath(args.before_tree))] if args.before_tree else [])
    for case in cases:  # files and store, this code and the earlier one, side by side in time
        for store_dir in [""] + ([args.store_dir] if args.store_dir else []):
            if store_dir and case not in ("pets", "gopro_deblurgan", "gopro_dgv2"):
                continue
            for cores in (int(c) for c in args.cores.split(",")):
                for code, tree in codes:
                    where = os.path.join(store_dir, code) if store_dir else ""
                    row = run_child(case, cores, args, folders, where, tree)
                    row.update(store=bool(store_dir), code=code)
                    report["rows"].append(row)
                    print(json.dumps(row), flush=True)
    report["load_after"] = os.getloadavg()
    tables = [f"{report['machine']['date']}, {report['machine']['cpu']}. Command: `{report['command']}`"]
    load = f"load {report['load_before'][0]:.1f} -> {report['load_after'][0]:.1f} on {report['cpus']} cores"
    if args.before_tree:
        tables.append(comparison(report["rows"], flops, f"before ({args.before_tree}) / after; {load}"))
    for code, _ in codes:
        for store in (False, True):
            rows = [r for r in report["rows"] if r["store"] == store and r["code"] == code]
            if rows:
                tables.append(table(rows, flops, f"{code}: {'decoded store' if store else 'files decoded at every use'}"
                                    f"; {load}"))
    print("\n\n".join(tables))
    measure.write_result("input_pipeline", report, "\n\n".join(tables) + "\n", out=args.out)
    return report


if __name__ == "__main__":
    main()
