"""The one measurement helper of every benchmark: timing, matmul peak, machine description, results.

Imports nothing of jaxgan and nothing of the other benchmark modules (they import it). Results go to
`benchmarks/results/latest/NAME.json` (+ `.md`), replacing that benchmark's previous result; the older
ones live in `benchmarks/results/history/` and `benchmarks/HISTORY.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

LATEST = Path(__file__).resolve().parent / "results" / "latest"


# ---- timing ---------------------------------------------------------------------------------------
def timed(call, warmup: int, steps: int) -> list[float]:
    """Seconds of each of `steps` calls of `call()` after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def best_ms(call, rounds: int) -> float:
    """Milliseconds of the fastest of `rounds` calls after one warm-up call."""
    return 1e3 * min(timed(call, 1, rounds))


class Timed:
    """A callable run repeatedly (see `alternate`), keeping the seconds of each recorded call."""

    def __init__(self, call):
        self.call, self.times = call, []

    def run(self, record: bool) -> None:
        t0 = time.perf_counter()
        self.call()
        if record:
            self.times.append(time.perf_counter() - t0)

    def summary(self) -> dict:
        return {"step_s_median": statistics.median(self.times), "step_s_min": min(self.times),
                "step_s_max": max(self.times), "steps": len(self.times)}


def alternate(runners: list[Timed], warmup: int, steps: int) -> None:
    """Interleaved rounds (each round calls every runner once, in order), so that runners sharing a
    noisy machine are measured side by side."""
    for i in range(warmup + steps):
        for r in runners:
            r.run(record=i >= warmup)


def interleaved_best_ms(runs: dict, rounds: int, warmup: int = 1) -> dict:
    """{name: milliseconds of its fastest call} over `rounds` interleaved rounds of every run."""
    runners = {name: Timed(run) for name, run in runs.items()}
    alternate(list(runners.values()), warmup, rounds)
    return {name: 1e3 * min(r.times) for name, r in runners.items()}


# ---- peaks, XLA statistics, memory ----------------------------------------------------------------
def matmul_peak(dtype=None, n: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of an n x n x n jnp.dot in `dtype` (default float32) on the default device,
    2 n^3 flops per call."""
    import jax
    import jax.numpy as jnp

    dtype = dtype or jnp.float32
    dot = jax.jit(jnp.dot)
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    return 2 * n ** 3 / min(timed(lambda: dot(a, b).block_until_ready(), 1, repeats))


def torch_matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """The same for torch.mm in float32 on the CPU."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / min(timed(lambda: torch.mm(a, b), 1, repeats))


def cost_flops(compiled) -> float | None:
    """XLA's FLOP count of a compiled (or lowered) computation; None where the backend gives none."""
    costs = compiled.cost_analysis()
    if isinstance(costs, (list, tuple)):
        costs = costs[0] if costs else None
    return float(costs["flops"]) if costs and "flops" in costs else None


def xla_peak_mib(compiled) -> float | None:
    """The compiled computation's peak buffer assignment in MiB (None where unknown)."""
    stats = compiled.memory_analysis()
    peak = getattr(stats, "peak_memory_in_bytes", 0) if stats is not None else 0
    if not peak and stats is not None:
        peak = stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes \
            - stats.alias_size_in_bytes
    return peak / 2**20 if peak else None


def rss_mib(field: str = "VmRSS") -> float | None:
    """This process's resident set (VmRSS) or its peak so far (VmHWM) in MiB; None off Linux."""
    try:
        text = Path("/proc/self/status").read_text()
        return int(re.search(rf"{field}:\s+(\d+)", text).group(1)) / 1024
    except (OSError, AttributeError):
        return None


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# ---- machine and results --------------------------------------------------------------------------
def machine() -> dict:
    """What a result needs to be compared: date, CPU, cores, load, device, library versions."""
    info = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": platform.processor()
            or platform.machine(), "cores": cores(), "loadavg": os.getloadavg(), "python": platform.python_version()}
    try:
        info["cpu"] = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    try:
        import jax
    except ImportError:
        jax = None
    if jax is not None:
        info.update(jax=jax.__version__, backend=jax.default_backend(), device=str(jax.devices()[0].device_kind))
    if "torch" in sys.modules:
        import torch

        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return info


def command(module: str, argv=None) -> str:
    """The command line that reproduces this run."""
    return f"python -m benchmarks.{module} " + " ".join(sys.argv[1:] if argv is None else argv)


def write_result(name: str, report: dict, markdown: str | None = None, out: str | Path | None = None) -> Path:
    """Writes OUT/NAME.json (and OUT/NAME.md) with OUT = benchmarks/results/latest by default;
    returns the JSON's path."""
    out = Path(out) if out else LATEST
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(report, indent=1, default=str) + "\n")
    if markdown is not None:
        (out / f"{name}.md").write_text(markdown)
    print(f"wrote {path}" + (" and .md" if markdown is not None else ""), flush=True)
    return path


def add_row(lines: list[str], row: str) -> None:
    """Appends a table row and prints it at once (a long run shows its progress)."""
    lines.append(row)
    print(row, flush=True)


def write_table(name: str, module: str, lines: list[str], argv=None, out: str | Path | None = None) -> Path:
    """A benchmark whose result is one printed markdown table: NAME.json (machine, command, lines)
    and NAME.md (the same as text)."""
    report = {"machine": machine(), "command": command(module, argv), "table": lines}
    m = report["machine"]
    head = f"{m['date']}, {m['cpu']} ({m['cores']} cores), {m.get('backend', '')}, jax {m.get('jax', '-')}, " \
           f"load {m['loadavg'][0]:.1f}. Command: `{report['command']}`"
    return write_result(name, report, "\n".join([head, ""] + lines) + "\n", out)


# ---- command line of the per-shape benchmarks -----------------------------------------------------
def shape_parser(doc: str, rounds: int = 7) -> argparse.ArgumentParser:
    """A parser described by the first line of `doc`, with --rounds (default `rounds`) and --shapes."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--shapes", default="", help="comma-separated shape names (default: all)")
    parser.add_argument("--out", default="", help="results folder (default benchmarks/results/latest)")
    return parser


def parse_shapes(parser: argparse.ArgumentParser, shapes: dict, argv=None) -> tuple[argparse.Namespace, list[str]]:
    """(arguments, the shape names asked for); a bad --rounds or an unknown name is a parser error."""
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    names = args.shapes.split(",") if args.shapes else list(shapes)
    unknown = [n for n in names if n not in shapes]
    if unknown:
        parser.error(f"unknown shapes {unknown}; valid: {', '.join(shapes)}")
    return args, names
