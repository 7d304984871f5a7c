"""`train_and_evaluate(config, workdir)`: the training loop.

Builds the mesh, the modules, the state (restored from WORKDIR/checkpoints when there is one, else
optionally initialised from another run: train.init_from), and runs the jitted train step up to
train.steps. Every train.log_every steps the metrics of the steps since the last fetch go to the
host in one transfer, are checked for NaN / Inf (DivergenceError names the step and the loss; the
bad state is never saved) and written: tqdm postfix, TensorBoard scalars (WORKDIR/tensorboard) and
JSON lines (WORKDIR/metrics.jsonl). Every train.eval_every steps and at the end: evaluation on the
validation split (config.data.validation_split; it alone chooses the best checkpoint), sample grid
WORKDIR/samples/step_XXXXXX.png (columns titled input [| front end] | output | target) and
TensorBoard image. When the last step is done, the test split (config.data.eval_split) is evaluated
once, with the best checkpoint when one is kept (logged as split 'test', returned as test_*).
Checkpoints every train.checkpoint_every steps and at the end (plus the best by
train.best_metric). SIGTERM / SIGINT: the steps already dispatched finish (at most STEPS_IN_FLIGHT
beyond the last finished one: the loop waits for older steps before dispatching more, so a stop
request is honoured within a few steps, not at the next log point), a checkpoint is saved and the
function returns normally. Only process 0 writes logs and samples; every process checkpoints.

Variants: with a progressive schedule (jaxgan.train.progressive) the data iterator is rebuilt at
each size switch (start_step = the batch index, so resume stays exact) and the image pool, if any,
is resized; semi-supervised runs read make_semi_train_iterator; variants.transfer_from loads part
of a model (jaxgan.train.transfer) when the run starts fresh, after train.init_from, and prints
the report.
"""

from __future__ import annotations

import collections
import contextlib
import json
import math
import queue
import signal
import sys
import threading
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
import tqdm

from jaxgan import config_io, images, pretrained
from jaxgan.train import checkpoint, history, parallel, progressive, transfer
from jaxgan.train.build import Setup, build
from jaxgan.train.evaluation import run_evaluation
from jaxgan.train.lock import WorkdirLock
from jaxgan.train.restore import restore_run

POSTFIX_KEYS = ("d_loss", "g_loss", "g_adv", "g_pixel", "g_mask", "g_perceptual")
STEPS_IN_FLIGHT = 2  # dispatched steps not yet finished: enough to keep the device fed, few to stop quickly
TITLE_HEIGHT = 14  # pixels of the sample grid's title strip


class DivergenceError(FloatingPointError):
    """A loss became NaN or Inf; the message names the step and the loss."""


def _make_train_iterator(config, start_step):
    from jaxgan import data  # deferred: jaxgan.data loads TensorFlow, wanted only when data is read

    make = data.make_semi_train_iterator if config.variants.semi_supervised else data.make_train_iterator
    return make(config, start_step=start_step, process_index=jax.process_index(),
                process_count=jax.process_count())


class _StopRequest:
    """Turns SIGTERM / SIGINT into a flag the loop checks after each step."""

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        del frame
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without saving
        self.signum = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def requested(self, everywhere: bool = False) -> bool:
        """This process's flag; with everywhere=True the OR over all processes (a collective)."""
        flag = self.signum is not None
        if everywhere and jax.process_count() > 1:
            from jax.experimental import multihost_utils

            flag = bool(np.any(multihost_utils.process_allgather(np.asarray(flag))))
        return flag


class _Progress:
    """The train bar, counting executed steps: a watcher thread waits on each dispatched step's
    metrics (cheap scalars) and advances the bar when they exist, so its rate and ETA are true while
    the loop keeps dispatching ahead. Shown from the first dispatched step on, after the dataset and
    prior lines."""

    def __init__(self, total: int, initial: int, active: bool):
        self.total, self.initial, self.active = total, initial, active
        self.bar = None
        self._done: queue.Queue = queue.Queue()
        self._watcher = None

    def dispatched(self, metrics) -> None:
        if not self.active:
            return
        if self.bar is None:
            self.bar = tqdm.tqdm(total=self.total, initial=self.initial, desc="train", dynamic_ncols=True)
            self._watcher = threading.Thread(target=self._watch, daemon=True)
            self._watcher.start()
        self._done.put(metrics)

    def _watch(self) -> None:
        while (metrics := self._done.get()) is not None:
            try:
                jax.block_until_ready(metrics)
            except Exception:  # the loop meets the same error when it fetches the metrics
                return
            self.bar.update(1)

    def set_postfix(self, values: dict) -> None:
        if self.bar is not None:
            self.bar.set_postfix(values)

    def close(self) -> None:
        if self._watcher is not None:
            self._done.put(None)
            self._watcher.join()
        if self.bar is not None:
            self.bar.close()


class _Writer:
    """TensorBoard + metrics.jsonl + sample PNGs; a no-op off process 0."""

    def __init__(self, workdir: Path, active: bool):
        self.workdir, self.active = workdir, active
        self.tb = None
        if active:
            from tensorboardX import SummaryWriter

            self.tb = SummaryWriter(str(workdir / "tensorboard"))

    def scalars(self, step: int, split: str, values: dict) -> None:
        if not self.active:
            return
        flat = {}
        for name, value in values.items():
            if isinstance(value, (list, tuple)):
                flat.update({f"{name}_{i}": v for i, v in enumerate(value)})
            else:
                flat[name] = value
        for name, value in flat.items():
            self.tb.add_scalar(f"{split}/{name}", float(value), step)
        with open(self.workdir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "split": split, **values}) + "\n")
        self.tb.flush()

    def samples(self, step: int, task, samples: dict) -> None:
        """The sample grid of `samples` (from run_evaluation), drawn as `task` (a jaxgan.task object) says."""
        if not self.active or not len(samples["input"]):
            return
        picture = task.picture

        # input (and its prior, channels 3:6, when there is one) | output | target
        rows = [[images.to_uint8(x[..., c:c + 3]) for c in range(0, x.shape[-1], 3)] + [picture(o), picture(t)]
                for x, o, t in zip(samples["input"], samples["output"], samples["target"])]
        grid = with_titles(images.image_grid(rows), sample_titles(samples["input"].shape[-1]), rows[0][0].shape[1])
        images.write_png(self.workdir / "samples" / f"step_{step:06d}.png", grid)
        self.tb.add_image("samples/input_output_target", grid, step, dataformats="HWC")

    def close(self):
        if self.tb is not None:
            self.tb.close()


def sample_titles(input_channels: int) -> list[str]:
    """Column titles of the sample grid: input [| front end (the prior's channel groups)] | output | target."""
    groups = input_channels // 3
    front = ["front end"] if groups == 2 else [f"front end {i}" for i in range(1, groups)]
    return ["input", *front, "output", "target"]


def with_titles(grid: np.ndarray, titles: list[str], cell_width: int, pad: int = 2) -> np.ndarray:
    """The grid of images.image_grid (cells cell_width wide, `pad` apart) under a white strip with one
    centred title per column (PIL's built-in font)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    strip = Image.new("RGB", (grid.shape[1], TITLE_HEIGHT), "white")
    draw = ImageDraw.Draw(strip)
    for j, title in enumerate(titles):
        width = draw.textlength(title, font=font)
        x = pad + j * (cell_width + pad) + max((cell_width - width) / 2, 0)
        draw.text((x, 1), title, fill="black", font=font)
    return np.concatenate([np.asarray(strip, np.uint8), grid], axis=0)


def _wait_for(metrics) -> None:
    """Blocks until the step that produced `metrics` has finished (the bound on dispatching ahead)."""
    jax.block_until_ready(metrics)


def _check_finite(pending: list, ckpt: checkpoint.Checkpointer) -> dict:
    """Host values of the pending (step, metrics) pairs; DivergenceError on the first NaN / Inf.
    Returns the mean of each metric over the window."""
    host = parallel.to_host([m for _, m in pending])
    for (step, _), values in zip(pending, host):
        for name, value in sorted(values.items(), key=lambda kv: (kv[0] not in ("d_loss", "g_loss"), kv[0])):
            if not math.isfinite(float(value)):
                last = ckpt.latest_step()
                raise DivergenceError(
                    f"training diverged at step {step}: loss {name} = {float(value)}; the state of "
                    f"this step was not saved; last good checkpoint: "
                    f"{'none' if last is None else f'step {last}'} in {ckpt.workdir / checkpoint.LATEST_DIR}")
    return {name: float(np.mean([v[name] for v in host])) for name in host[-1]}


def _init_from(config, state, mesh):
    """G's (and, when the shapes match, D's) params and statistics from another run's latest
    checkpoint; fresh optimizer states."""
    source = config.train.init_from

    def same_shapes(a, b):
        return (jax.tree.structure(a) == jax.tree.structure(b)
                and all(np.shape(x) == np.shape(y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))))

    if source.startswith("pretrained:"):  # a generator shipped with jaxgan (jaxgan/pretrained/)
        _, variables = pretrained.load_variables(source[len("pretrained:"):])
        other_g = parallel.replicate((variables["params"], variables.get("batch_stats", {})), mesh)
        other_d = None
    else:
        if not Path(source).is_dir():
            raise ValueError(f"train.init_from={source!r} is not a workdir (no such folder)")
        other = restore_run(source, mesh).state
        other_g = (other.g.params, other.g.batch_stats)
        other_d = (other.d.params, other.d.batch_stats)
    if not same_shapes((state.g.params, state.g.batch_stats), other_g):
        raise ValueError(f"train.init_from={source!r}: its generator's parameters do not match the "
                         f"shapes of this config's generator ({config.generator.name})")
    g = state.g.replace(params=other_g[0], batch_stats=other_g[1])
    d = state.d
    if other_d is not None and same_shapes((d.params, d.batch_stats), other_d):
        d = d.replace(params=other_d[0], batch_stats=other_d[1])
    ema = None if state.ema_params is None else jax.tree.map(lambda p: p.copy(), g.params)
    ema_stats = None if state.ema_batch_stats is None else jax.tree.map(lambda p: p.copy(), g.batch_stats)
    return state.replace(g=g, d=d, ema_params=ema, ema_batch_stats=ema_stats)


def _phase_batches(config, index, batches, size, state, mesh):
    """(iterator, crop size, state) for batch `index`: a new iterator (and the image pool resized)
    when the progressive schedule switches size at `index`, or on the first batch of the run."""
    new_size = progressive.size_at(config, index)
    if batches is not None and new_size == size:
        return batches, size, state
    if state.pool is not None and state.pool["images"].shape[1] != new_size:
        state = state.replace(pool=parallel.replicate(
            parallel.to_host(history.resize_pool(parallel.to_host(state.pool), new_size)), mesh))
    phase_config = config if new_size == int(config.data.crop_size) else progressive.phase_config(config, new_size)
    ahead = 0 if config.variants.progressive_fade_steps else 2  # (a fade blends host batches: none ahead)
    return parallel.prefetch_to_mesh(_make_train_iterator(phase_config, index), mesh, ahead), new_size, state


def _evaluate(setup: Setup, state, writer: _Writer, ckpt, step: int) -> dict:
    config = setup.config
    variables = parallel.to_host(state.generator_variables())
    results, samples = run_evaluation(config, setup.g_module, variables, split=config.data.validation_split,
                                      num_samples=int(config.train.num_samples))
    writer.scalars(step, "eval", results)
    writer.samples(step, setup.task, samples)
    ckpt.save_best(step, state, results)
    return results


def _check_eval_data(config) -> None:
    """Reads the validation and test splits now (a folder dataset validates every file of them), so an
    empty or unreadable split stops the run before its first step instead of at its first evaluation."""
    from jaxgan.data import sources  # deferred: jaxgan.data loads TensorFlow, wanted only when data is read

    sources.make_source(config, config.data.eval_split)  # a dataset's own split first: a carved one follows train
    sources.make_source(config, config.data.validation_split)


def _test_once(config, state, g_module, writer: _Writer, ckpt, step: int) -> dict:
    """The test split (config.data.eval_split), evaluated once when the run completes: with the best
    checkpoint (chosen on the validation split) when train.best_metric keeps one, else the last state."""
    ckpt.wait()
    if ckpt.best is not None and ckpt.best.latest_step() is not None:
        state = checkpoint.read_state(ckpt.workdir, state, which=checkpoint.BEST_DIR)
    variables = parallel.to_host(state.generator_variables())
    results, _ = run_evaluation(config, g_module, variables, split=config.data.eval_split)
    writer.scalars(step, "test", results)
    return results


def _truncate_metrics(workdir: Path, step: int) -> None:
    """Drops the metrics.jsonl rows after `step` (logged by a run killed after its last checkpoint,
    which the resumed run logs again), so each step is in the file once."""
    path = workdir / "metrics.jsonl"
    if not path.is_file():
        return

    def kept(line):  # a row cut short by a kill is dropped too
        try:
            return json.loads(line).get("step", 0) <= step
        except ValueError:
            return False

    lines = path.read_text().splitlines(keepends=True)
    keep = [line if line.endswith("\n") else line + "\n" for line in lines if line.strip() and kept(line)]
    if keep != lines:
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(keep))
        tmp.replace(path)


@contextlib.contextmanager
def _workdir_guard(workdir: Path):
    """One writer per workdir (jaxgan.train.lock) on process 0; a start that fails before the
    run's first checkpoint leaves no config.json of its own behind."""
    if jax.process_index() != 0:
        yield
        return
    config_json = workdir / "config.json"
    had_config = config_json.exists()
    workdir.mkdir(parents=True, exist_ok=True)
    lock = WorkdirLock(workdir).acquire()
    try:
        yield
    except BaseException:
        if not had_config and not any(p.name.isdigit() for p in (workdir / checkpoint.LATEST_DIR).glob("*")):
            config_json.unlink(missing_ok=True)
        raise
    finally:
        lock.release()


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Trains (or resumes) the run in `workdir`; returns the last train metrics (window means),
    the last evaluation's metrics prefixed 'eval_', 'step' and 'stopped_early'. Refuses
    (WorkdirLockedError) while another process trains in `workdir`."""
    config_io.check_values(config)  # (a config made in Python has not been read through it)
    parallel.initialize_distributed(config)
    checkpoint.check_best_metric(config)  # before the workdir is touched
    with _workdir_guard(Path(workdir)):
        return _train_and_evaluate(config, workdir)


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    workdir = Path(workdir)
    is_main = jax.process_index() == 0
    if is_main:
        workdir.mkdir(parents=True, exist_ok=True)
    train = config.train
    _check_eval_data(config)
    mesh = parallel.make_mesh()
    parallel.local_batch_size(int(config.data.batch_size), mesh)
    transfer.check_source(config)  # missing weight files stop the run here, before any model is built
    setup = build(config, mesh)
    loss_nets = setup.replicated_loss_nets()
    step_fn = setup.jit_train_step()
    step_fn = setup.check_memory_fits(step_fn)  # XLA's estimate against free memory, before the state exists
    ckpt = checkpoint.Checkpointer(workdir, config)
    # the state's image pool (if any) has the crop size of the last finished step's phase
    state = setup.initial_state(ckpt.latest_step() or 0)
    if ckpt.latest_step() is not None:
        state = ckpt.restore(state)
    else:
        if train.init_from:
            state = _init_from(config, state, mesh)
        if config.variants.transfer_from:
            state, _ = transfer.apply_transfer(config, parallel.to_host(state), verbose=is_main)
            state = parallel.replicate(state, mesh)
    start = int(parallel.to_host(state.step))
    if is_main:
        _truncate_metrics(workdir, start)
        (workdir / "config.json").write_text(config_io.config_to_json(config) + "\n")
    writer = _Writer(workdir, is_main)
    total = int(train.steps)
    train_metrics: dict = {}
    eval_metrics: dict = {}
    test_metrics: dict = {}
    pending: list = []
    in_flight: collections.deque = collections.deque()
    stopped = False
    bar = _Progress(total, start, is_main)
    try:
        with _StopRequest() as stop:
            batches, batch_size = None, None  # the iterator of the current crop size (progressive)
            window_start = time.perf_counter()
            for step in range(start + 1, total + 1):
                batches, batch_size, state = _phase_batches(config, step - 1, batches, batch_size, state, mesh)
                host_batch = next(batches)
                alpha, low_size = progressive.fade(config, step - 1)
                host_batch = progressive.fade_batch(host_batch, alpha, low_size, setup.task)
                batch = parallel.shard_batch(host_batch, mesh)
                state, metrics = step_fn(state, batch, loss_nets)
                pending.append((step, metrics))
                bar.dispatched(metrics)
                in_flight.append(metrics)
                if len(in_flight) > STEPS_IN_FLIGHT:
                    _wait_for(in_flight.popleft())
                at_eval = step % train.eval_every == 0 or step == total
                at_save = step % train.checkpoint_every == 0 or step == total
                at_log = step % train.log_every == 0 or at_eval or at_save
                if jax.process_count() == 1:
                    stopped = stop.requested()
                elif at_log:  # processes agree on stopping at the (collective) log points
                    stopped = stop.requested(everywhere=True)
                if at_log or stopped:
                    train_metrics = _check_finite(pending, ckpt)
                    now = time.perf_counter()
                    train_metrics["steps_per_sec"] = len(pending) / max(now - window_start, 1e-9)
                    pending, window_start = [], now
                    writer.scalars(step, "train", train_metrics)
                    bar.set_postfix({k: f"{train_metrics[k]:.4g}" for k in POSTFIX_KEYS if k in train_metrics})
                if at_eval and not stopped:
                    eval_metrics = _evaluate(setup, state, writer, ckpt, step)
                if at_save or stopped:
                    ckpt.save(step, state)
                if stopped:
                    if is_main:
                        tqdm.tqdm.write(f"stop requested (signal {stop.signum}): saved step {step} in {workdir}",
                                        file=sys.stderr)
                    break
                if step == total:
                    test_metrics = _test_once(config, state, setup.g_module, writer, ckpt, step)
    finally:
        bar.close()
        ckpt.wait()
        ckpt.close()
        writer.close()
    return {"step": int(parallel.to_host(state.step)), "stopped_early": stopped, **train_metrics,
            **{f"eval_{k}": v for k, v in eval_metrics.items()}, **{f"test_{k}": v for k, v in test_metrics.items()}}
