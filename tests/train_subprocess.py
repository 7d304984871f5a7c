"""Subprocess entry points of the train engine tests (run as `python tests/train_subprocess.py MODE OUT ...`).

steps OUT                 3 jitted train steps on fixed batches over a mesh of all local devices
                          (set JAX_NUM_CPU_DEVICES); writes losses and params to OUT (npz)
distributed OUT ID PORT   process ID of 2 (coordinator 127.0.0.1:PORT): train_and_evaluate for 3 steps
                          into OUT's folder (shared workdir); writes this process's params to OUT;
                          ID 'single': the same run in 1 process (workdir OUT's folder/single)
sigterm WORKDIR           train_and_evaluate with a slow fake iterator; touches WORKDIR/started once a few
                          steps ran (the test then sends SIGTERM); prints the returned metrics as JSON
killed WORKDIR STEP       checkpoints every step, waits at batch 3 for WORKDIR/go, then SIGKILLs itself
                          while checkpoint STEP is being saved (its folder listing at the kill:
                          WORKDIR/at_kill.json)
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from train_helpers import fake_train_iterator, fixed_batch, make_modules, patch_engine, tiny_config  # noqa: E402
from train_helpers import enable_compilation_cache, loop_test_config  # noqa: E402

if os.environ.get("JAXGAN_TEST_XLA_CACHE"):
    enable_compilation_cache()

from jaxgan.train.loop import _make_train_iterator as TRAIN_ITERATOR  # noqa: E402  (before patch_engine)


def parallel_config(adversarial="vanilla"):
    """Segment, 2-class softmax masks, BatchNorm G and D, EMA."""
    config = tiny_config("segment", adversarial=adversarial, mask="softmax_ce", steps=3)
    config.generator.options.out_channels = 2
    config.discriminator.options.in_channels = 5
    config.train.ema_decay = 0.9
    return config


def flat_params(state) -> dict:
    from jaxgan.train import parallel

    host = parallel.to_host({"g": state.g.params, "d": state.d.params, "g_bs": state.g.batch_stats,
                             "d_bs": state.d.batch_stats, "ema": state.ema_params})
    return {jax.tree_util.keystr(path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_flatten_with_path(host)[0]}


def run_steps(out):
    from jaxgan.train import parallel, state as state_lib, steps

    config = parallel_config()
    mesh = parallel.make_mesh()
    g, d = make_modules(config)
    sample = fixed_batch(config)
    state = parallel.create_sharded_state(
        lambda key: state_lib.create_state(config, g, d, sample, key), mesh, jax.random.PRNGKey(0))
    step = parallel.jit_step(steps.make_step_fns(config).train_step, mesh)
    losses = []
    for n in range(3):
        batch = parallel.shard_batch(fixed_batch(config, n), mesh)
        assert len(batch["input"].sharding.device_set) == len(jax.devices())
        state, metrics = step(state, batch, {})
        losses.append(parallel.to_host(metrics))
    np.savez(out, num_devices=len(jax.devices()),
             **{f"loss/{k}": np.array([m[k] for m in losses]) for k in losses[0]},
             **{f"param/{k}": v for k, v in flat_params(state).items()})


def run_distributed(out, process_id, port):
    """process_id 0 or 1 of a 2-process run, or 'single' for the 1-process run of the same batches."""
    import jaxgan.data
    from jaxgan.train import loop, train_and_evaluate
    from jaxgan.train.restore import restore_run

    # vanilla loss: a relativistic one is invariant to a shift of D's last bias, whose gradient is
    # then rounding noise that Adam scales up to +-lr, so process counts could not be compared
    config = parallel_config()
    config.train.steps = 3
    config.train.eval_lpips = False
    if process_id != "single":
        config.train.distributed = True
        config.train.coordinator_address = f"127.0.0.1:{port}"
        config.train.num_processes = 2
        config.train.process_id = int(process_id)
    patch_engine(setattr)
    # the real loop asks jaxgan.data for this process's rows (its index and count as arguments):
    # the fake iterator gives process i rows i*b/P .. (i+1)*b/P of the same global batch
    loop._make_train_iterator = TRAIN_ITERATOR
    jaxgan.data.make_train_iterator = fake_train_iterator
    workdir = Path(out).parent / ("single" if process_id == "single" else "workdir")
    result = train_and_evaluate(config, str(workdir))
    assert jax.process_count() == (1 if process_id == "single" else 2) and result["step"] == 3, result
    # the state that was trained, as saved: restore it on this process's device
    _, _, _, state, step = restore_run(str(workdir))
    np.savez(out, step=step, g_loss=result["g_loss"], **{f"param/{k}": v for k, v in flat_params(state).items()})


def run_sigterm(workdir):
    from jaxgan.train import train_and_evaluate

    config = loop_test_config()  # the program of test_train_loop's runs: a compilation cache hit
    config.train.steps = 10_000
    config.train.log_every = 1000
    marker = Path(workdir) / "started"

    def slow_iterator(config, *, start_step=0, **kw):
        for n, batch in enumerate(fake_train_iterator(config, start_step=start_step, **kw)):
            if n == 3:
                marker.touch()
            time.sleep(0.05)
            yield batch

    patch_engine(setattr, train_iterator=slow_iterator)
    result = train_and_evaluate(config, workdir)
    print("RESULT " + json.dumps(result))


def run_killed(workdir, kill_at):
    """Checkpoints every step; holds at batch 3 (touches WORKDIR/started) until WORKDIR/go exists, then
    kills itself with SIGKILL right after starting the asynchronous save of step `kill_at`."""
    import signal

    from jaxgan.train import checkpoint, train_and_evaluate

    config = loop_test_config()
    config.train.steps = 10_000
    config.train.checkpoint_every = 1
    started, go = Path(workdir) / "started", Path(workdir) / "go"

    def held_iterator(config, *, start_step=0, **kw):
        for n, batch in enumerate(fake_train_iterator(config, start_step=start_step, **kw), start_step):
            if n == 3:
                started.touch()
                while not go.exists():
                    time.sleep(0.05)
            yield batch

    import asyncio

    from orbax.checkpoint._src.path import atomicity

    # orbax's last act of a save renames STEP.orbax-checkpoint-tmp* to STEP: held back 30 s for
    # checkpoint kill_at, so the kill below surely lands while that checkpoint is unfinished
    finalize = atomicity.AtomicRenameTemporaryPath.finalize

    async def held_finalize(self):
        if self._final_path.name == str(kill_at):
            await asyncio.sleep(30)
        await finalize(self)

    atomicity.AtomicRenameTemporaryPath.finalize = held_finalize
    save = checkpoint.Checkpointer.save

    def save_then_die(self, step, state):
        save(self, step, state)
        if step == int(kill_at):
            folder = Path(workdir) / checkpoint.LATEST_DIR
            deadline = time.time() + 20
            while not list(folder.glob(f"{kill_at}{checkpoint.TMP_MARK}*")) and time.time() < deadline:
                time.sleep(0.01)
            # what the kill interrupts, for the test to check
            (Path(workdir) / "at_kill.json").write_text(json.dumps(sorted(p.name for p in folder.iterdir())))
            os.kill(os.getpid(), signal.SIGKILL)

    checkpoint.Checkpointer.save = save_then_die
    patch_engine(setattr, train_iterator=held_iterator)
    train_and_evaluate(config, workdir)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"steps": run_steps, "distributed": run_distributed, "sigterm": run_sigterm, "killed": run_killed}[mode](*args)
