"""Speed of jaxgan's real training steps (pix2pix, DeblurGAN, DeblurGAN-v2) on this machine.

    python -m benchmarks.train_step [--setups pix2pix,deblurgan,fpn_mobilenet] [--batch-size 1]
        [--image-size 256] [--steps 10] [--warmup 2] [--torch] [--out DIR]

Each setup is its published config in experiments/configs with the changes that make it the PyTorch
twin's math (benchmarks.harness.TWIN_OVERRIDES); the step is the one `jaxgan train` builds
(benchmarks.harness.build_setup). Measured per setup:
- compile time (lowering + XLA compile) of the jitted step, and its FLOPs from XLA's cost analysis;
- steady-state step time: median over --steps calls after --warmup calls, images/s, achieved FLOP/s as a
  fraction of this machine's float32 matmul peak (best of a few large `jnp.dot` calls, 2 n^3 flops);
- memory: XLA's buffer assignment for the compiled step (`memory_analysis().peak_memory_in_bytes`), and the
  transient host memory of one step = peak RSS during the step minus RSS just before it (VmHWM after
  resetting it through /proc/self/clear_refs; the largest over all timed steps);
- inference latency of each generator on one 1280x720 image (padded to the size the generator needs).
With --torch the PyTorch twin (benchmarks/torch_twin.py) runs alternately with the JAX step in the same
process (one JAX step, one PyTorch step, ...), with as many torch threads as cores, so the JAX/PyTorch
ratio is measured side by side. Results go to OUT/train_step.json and .md (OUT: benchmarks/results/latest).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import harness, measure
from benchmarks.measure import Timed, alternate, rss_mib

SETUP_NAMES = tuple(harness.SETUP_CONFIGS)
INFER_HW = (720, 1280)  # height, width of the inference benchmark image


# ---- memory, in a fresh process ---------------------------------------------------------------
def memory_probe(framework: str, name: str, args) -> dict | None:
    """Memory of one setup in a fresh process, MiB above its RSS right after the imports:
    peak_rss_growth_mib while running 3 steps (after the build and a malloc_trim), build_peak_rss_growth_mib while building the setup (JAX: and compiling the step)."""
    cmd = [sys.executable, "-m", "benchmarks.train_step", "--probe-memory", framework, "--setups", name,
           "--image-size", str(args.image_size), "--batch-size", str(args.batch_size), "--width", str(args.width),
           "--torch-threads", str(args.torch_threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200)
    lines = [l for l in done.stdout.splitlines() if l.startswith("{")]
    if done.returncode or not lines:
        print(f"memory probe {framework}/{name} failed: {done.stderr[-2000:]}", flush=True)
        return None
    return json.loads(lines[-1])


def run_memory_probe(args) -> None:
    """Body of `--probe-memory FRAMEWORK` (runs in the child process of memory_probe)."""
    name = args.setups
    base = rss_mib()
    config = harness.setup_config(name, args.image_size, args.batch_size, args.width)
    batch = harness.random_batch(args.batch_size, args.image_size)
    if args.probe_memory == "jax":
        run = harness.jax_step(config, batch).run
    else:
        import torch

        torch.set_num_threads(args.torch_threads or measure.cores())
        twin = harness.torch_twin_for(config)
        tb = harness.torch_batch(batch)
        run = lambda: twin.step(tb["input"], tb["target"])  # noqa: E731
    build_peak = rss_mib("VmHWM")  # JAX: includes XLA's compilation
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give memory the build freed back to the OS
    except (OSError, AttributeError):
        pass
    try:
        Path("/proc/self/clear_refs").write_text("5")  # restart VmHWM from the current RSS
    except OSError:
        pass
    for _ in range(3):
        run()
    peak = rss_mib("VmHWM")
    growth = lambda x: None if base is None or x is None else x - base  # noqa: E731
    print(json.dumps({"peak_rss_growth_mib": growth(peak), "build_peak_rss_growth_mib": growth(build_peak)}))


# ---- one setup --------------------------------------------------------------------------------
def bench_setup(name: str, args, peak: float, with_torch: bool) -> dict:
    config = harness.setup_config(name, args.image_size, args.batch_size, args.width)
    batch = harness.random_batch(args.batch_size, args.image_size)
    step = harness.jax_step(config, batch)
    res = {"setup": name, "batch_size": args.batch_size, "image_size": args.image_size,
           "generator": config.generator.name, "discriminator": config.discriminator.name,
           "params": step.param_counts, **step.compile_stats}
    print(f"[{name}] jaxgan params {step.param_counts}  compile {step.compile_stats['compile_s']:.1f} s", flush=True)
    runners = [Timed(step.run)]
    if with_torch:
        twin = harness.torch_twin_for(config)
        res["torch_params"] = twin.param_counts()
        print(f"[{name}] torch  params {res['torch_params']}", flush=True)
        tb = harness.torch_batch(batch)
        runners.append(Timed(lambda: twin.step(tb["input"], tb["target"])))
    alternate(runners, args.warmup, args.steps)
    res["jax"] = runners[0].summary()
    if with_torch:
        res["torch"] = runners[1].summary()
        res["jax_over_torch"] = res["jax"]["step_s_median"] / res["torch"]["step_s_median"]
    for fw in ("jax", "torch"):
        if fw in res:
            s = res[fw]
            s["images_per_s"] = args.batch_size / s["step_s_median"]
            if res["flops"]:
                s["flop_per_s"] = res["flops"] / s["step_s_median"]  # same math, XLA's count for both
                s["fraction_of_peak"] = s["flop_per_s"] / peak
    if not args.no_memory:
        for fw in [k for k in ("jax", "torch") if k in res]:
            probe = memory_probe(fw, name, args) or {}
            res[fw]["train_peak_rss_mib"] = probe.get("peak_rss_growth_mib")
            res[fw]["build_peak_rss_mib"] = probe.get("build_peak_rss_growth_mib")
    print(f"[{name}] {json.dumps({k: res[k] for k in ('jax', 'torch') if k in res})}", flush=True)
    return res


def bench_inference(name: str, args, with_torch: bool) -> dict:
    config = harness.setup_config(name, args.image_size, 1, args.width)
    infer = harness.jax_inference(config, INFER_HW)
    res = {"setup": name, "generator": config.generator.name, "image_hw": INFER_HW,
           "padded_hw": infer.padded_hw, "compile_s": infer.compile_s}
    runners = [Timed(infer.run)]
    if with_torch:
        runners.append(Timed(harness.torch_inference(config, INFER_HW)))
        res["torch_padded_hw"] = harness.torch_padded_hw(config, INFER_HW)
    alternate(runners, 1, args.infer_steps)
    res["jax_s"] = runners[0].summary()["step_s_median"]
    if with_torch:
        res["torch_s"] = runners[1].summary()["step_s_median"]
    print(f"[{name} inference] {res}", flush=True)
    return res


# ---- report -----------------------------------------------------------------------------------
def fmt(x, spec=".2f", none="-"):
    return none if x is None else format(x, spec)


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"{m['date']}. Machine: {m['cpu']} ({m['cores']} cores), jax {m['jax']}, torch {m.get('torch', '-')} "
             f"({m.get('torch_threads', '-')} threads); "
             f"float32 matmul peak {m['matmul_peak_gflops']:.0f} GFLOP/s (best jnp.dot n={m['matmul_n']}, "
             f"measured before and after: {m['matmul_peak_gflops_start']:.0f} / {m['matmul_peak_gflops_end']:.0f}); "
             f"load average at start / end {m['loadavg_start'][0]:.1f} / {m['loadavg_end'][0]:.1f}.",
             "", "GFLOP/step is XLA's cost analysis of the jaxgan step; the PyTorch twin does the same math, so its "
             "FLOP/s uses the same count. Train peak RSS: in a fresh process, the peak resident memory while it "
             "runs 3 steps (after building the setup) minus its memory right after the imports; the build peak "
             "(JAX: compilation included) is in the JSON as build_peak_rss_mib. XLA buffers: "
             "the compiled step's peak buffer assignment (params, optimizer state, activations).", "",
             "| setup | framework | compile s | step s (median) | img/s | GFLOP/step | % of matmul peak "
             "| train peak RSS MiB | XLA buffers MiB | JAX/torch |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["train_steps"]:
        for fw in ("jax", "torch"):
            if fw not in r:
                continue
            s = r[fw]
            lines.append(
                f"| {r['setup']} | {'jaxgan' if fw == 'jax' else 'PyTorch twin'} "
                f"| {fmt(r['compile_s'], '.1f') if fw == 'jax' else '-'} | {s['step_s_median']:.3f} "
                f"| {s['images_per_s']:.2f} | {fmt(r['flops'] and r['flops'] / 1e9, '.1f')} "
                f"| {fmt(s.get('fraction_of_peak') and 100 * s['fraction_of_peak'], '.1f')} "
                f"| {fmt(s.get('train_peak_rss_mib'), '.0f')} | {fmt(r['xla_peak_mib'], '.0f') if fw == 'jax' else '-'} "
                f"| {fmt(r.get('jax_over_torch'), '.2f') if fw == 'jax' else ''} |")
    if report.get("inference"):
        lines += ["", "Inference, one 1280x720 image (batch 1, padded as noted):", "",
                  "| generator | jaxgan input HxW | PyTorch input HxW | compile s | jaxgan s | PyTorch s |",
                  "|---|---|---|---|---|---|"]
        hw = lambda r, k: "x".join(map(str, r[k])) if k in r else "-"
        for r in report["inference"]:
            lines.append(f"| {r['generator']} | {hw(r, 'padded_hw')} | {hw(r, 'torch_padded_hw')} | {r['compile_s']:.1f} "
                         f"| {r['jax_s']:.3f} | {fmt(r.get('torch_s'), '.3f')} |")
    lines += ["", f"Command: `{report['command']}`"]
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setups", default=",".join(SETUP_NAMES))
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--width", type=int, default=0, help="override every base width (smoke runs; 0 = published)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--infer-steps", type=int, default=3)
    p.add_argument("--no-inference", action="store_true")
    p.add_argument("--torch", action="store_true", help="also time the PyTorch twins, interleaved")
    p.add_argument("--torch-threads", type=int, default=0, help="torch intra-op threads (0 = cores, as JAX)")
    p.add_argument("--no-memory", action="store_true", help="skip the per-setup memory probe processes")
    p.add_argument("--probe-memory", choices=("jax", "torch"), help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help="results folder (default benchmarks/results/latest)")
    args = p.parse_args(argv)
    bad = sorted(set(args.setups.split(",")) - set(SETUP_NAMES))
    if bad:
        p.error(f"unknown setups {bad}; valid: {', '.join(SETUP_NAMES)}")
    for flag in ("steps", "infer_steps"):  # a median needs one timed call; --no-inference skips inference
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be at least 1, got {getattr(args, flag)}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.probe_memory:
        return run_memory_probe(args)
    if args.torch:
        import torch

        torch.set_num_threads(args.torch_threads or measure.cores())
    machine = {**measure.machine(), "matmul_n": 2048}
    machine["loadavg_start"] = machine.pop("loadavg")
    # The machine is shared: the peak is the best of a measurement before and after the benchmarks
    # (the fractions printed during the run use the first one).
    peak = measure.matmul_peak(n=machine["matmul_n"])
    machine["matmul_peak_gflops_start"] = peak / 1e9
    if args.torch:
        machine["torch_matmul_peak_gflops"] = measure.torch_matmul_peak(machine["matmul_n"]) / 1e9
    print(f"machine {machine}", flush=True)
    report = {"machine": machine, "command": measure.command("train_step", argv), "train_steps": [], "inference": []}
    partial = lambda: measure.write_result("train_step.partial", report, out=args.out)  # noqa: E731 (in case of a kill)
    for name in args.setups.split(","):
        report["train_steps"].append(bench_setup(name, args, peak, args.torch))
        partial()
    if not args.no_inference:
        for name in args.setups.split(","):
            report["inference"].append(bench_inference(name, args, args.torch))
            partial()
    machine["loadavg_end"] = os.getloadavg()
    machine["matmul_peak_gflops_end"] = measure.matmul_peak(n=machine["matmul_n"]) / 1e9
    if args.torch:
        machine["torch_matmul_peak_gflops"] = max(machine["torch_matmul_peak_gflops"],
                                                  measure.torch_matmul_peak(machine["matmul_n"]) / 1e9)
    peak = max(machine["matmul_peak_gflops_start"], machine["matmul_peak_gflops_end"]) * 1e9
    machine["matmul_peak_gflops"] = peak / 1e9
    for r in report["train_steps"]:
        for fw in ("jax", "torch"):
            if fw in r and "flop_per_s" in r[fw]:
                r[fw]["fraction_of_peak"] = r[fw]["flop_per_s"] / peak
    path = measure.write_result("train_step", report, markdown(report), out=args.out)
    (path.parent / "train_step.partial.json").unlink(missing_ok=True)
    print(markdown(report))
    return report


if __name__ == "__main__":
    main()
