"""jaxgan.train.parallel: 4 devices give the 1-device numbers (BatchNorm over the global batch);
a real 2-process run (jax.distributed on localhost) trains like 1 process on the same global batches."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from train_helpers import enable_compilation_cache

CACHE_ENV = enable_compilation_cache()

SCRIPT = str(Path(__file__).with_name("train_subprocess.py"))
ROOT = str(Path(__file__).parents[1])


def _env(num_devices: int) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES=str(num_devices),
               CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", **CACHE_ENV)
    # only the suite's optimisation-level flag (tests/conftest.py), no device-count flags from outside
    env["XLA_FLAGS"] = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split()
                                if f.startswith("--xla_backend_optimization_level"))
    return env


def _run(args, num_devices: int, timeout: int = 300):
    done = subprocess.run([sys.executable, SCRIPT, *args], env=_env(num_devices), cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.slow
def test_four_devices_match_one_device(tmp_path):
    """3 train steps of BatchNorm nets (batch 4 = one row per device on 4 devices): the same losses
    and params as on 1 device. Per-device BatchNorm statistics would make them differ by far more
    than the tolerance, so this also shows the statistics are those of the global batch."""
    _run(["steps", str(tmp_path / "four.npz")], 4)
    _run(["steps", str(tmp_path / "one.npz")], 1)
    four, one = np.load(tmp_path / "four.npz"), np.load(tmp_path / "one.npz")
    assert int(four["num_devices"]) == 4 and int(one["num_devices"]) == 1
    keys = [k for k in four.files if k.startswith(("loss/", "param/"))]
    assert any("['g_bs']" in k for k in keys) and any("['d_bs']" in k for k in keys)  # BN statistics compared
    for key in keys:
        np.testing.assert_allclose(four[key], one[key], rtol=1e-4, atol=1e-6, err_msg=key)
    assert not np.allclose(four["loss/g_loss"][0], four["loss/g_loss"][2])  # the steps did train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_train_like_one_process(tmp_path):
    """3 steps of train_and_evaluate in 2 processes (jax.distributed on localhost, one device each,
    each process reading its own half of every global batch) end with the parameters that 1 process
    training on the whole global batches reaches from the same seed. Both processes save, restore
    and evaluate together."""
    port = _free_port()
    procs = {f"p{i}": subprocess.Popen(
        [sys.executable, SCRIPT, "distributed", str(tmp_path / f"p{i}.npz"), str(i), str(port)], env=_env(1),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)}
    outputs = {}
    try:
        for name, p in procs.items():
            outputs[name] = p.communicate(timeout=300)[0]
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    for name, p in procs.items():  # (both outputs: one process's failure often shows in the other's)
        assert p.returncode == 0, "\n".join(f"{n}: {out[-3000:]}" for n, out in outputs.items())
    # the 1-process run afterwards, not beside them: on busy cores the processes' heartbeats stay on time
    _run(["distributed", str(tmp_path / "single.npz"), "single", "0"], 1)
    first, second, single = (np.load(tmp_path / f"{name}.npz") for name in ("p0", "p1", "single"))
    assert int(first["step"]) == int(second["step"]) == int(single["step"]) == 3
    params = [k for k in first.files if k.startswith("param/")]
    assert len(params) > 10 and sorted(params) == sorted(k for k in single.files if k.startswith("param/"))
    assert any("['g_bs']" in k for k in params) and any("['ema']" in k for k in params)
    for key in params:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)  # one replicated state
    worst = max(float(np.max(np.abs(first[k] - single[k]))) for k in params)
    print(f"2 processes vs 1 process, params after 3 steps: max |diff| = {worst:.3g}")
    for key in params:
        np.testing.assert_allclose(first[key], single[key], rtol=1e-4, atol=1e-6, err_msg=key)
    workdir = tmp_path / "workdir"
    assert (workdir / "checkpoints" / "3").is_dir()
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines if l["split"] == "train"] == [1, 2, 3]  # written once (process 0)
    (ev,) = [l for l in lines if l["split"] == "eval"]
    assert ev["num_examples"] == 7  # each process evaluated its rows; the counts were added up
