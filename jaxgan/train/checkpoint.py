"""Checkpoints with orbax: the whole GANState plus the run's config (JSON), saved asynchronously.

Layout of a workdir:
    WORKDIR/checkpoints/<step>/{state,config}   the latest `train.max_to_keep` checkpoints
    WORKDIR/best/<step>/{state,config}          the best one by train.best_metric (when set)
    WORKDIR/generator/<step>, best_generator/<step>   G alone beside each (jaxgan.bundle)

A checkpoint is only written after the loop has checked every loss since the previous one for
NaN / Inf, so a saved state is always a good one (see loop.py).

Integrity: once orbax has finished a checkpoint (atomically, through its temporary folder), its
folder gets MANIFEST listing the size and SHA-256 of every file. A restore checks it first; a
checkpoint whose files are missing, truncated or altered, or that orbax cannot read, is reported
in one warning and the next older one is used (a resuming run moves the damaged one aside to
WORKDIR/checkpoints_damaged/). A checkpoint without a manifest (from an older jaxgan, or cut off
between orbax's commit and the manifest) restores without that check.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import warnings
from pathlib import Path

import jax
import ml_collections
import orbax.checkpoint as ocp
import numpy as np

from jaxgan import bundle, config_io, logs
from jaxgan.files import is_disk_full
from jaxgan.task import get_task
from jaxgan.trees import flatten_with_names

LATEST_DIR = "checkpoints"
BEST_DIR = "best"
DAMAGED_DIR = "checkpoints_damaged"
MANIFEST = "jaxgan_manifest.json"
TMP_MARK = ".orbax-checkpoint-tmp"


class CheckpointError(ValueError):
    """A workdir whose checkpoints are missing or do not fit the config."""


class NoCheckpointError(CheckpointError):
    """The workdir has no checkpoint to restore."""


class DamagedCheckpointWarning(UserWarning):
    """A damaged checkpoint was skipped (the message names it and why)."""


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _files(step_dir: Path) -> list[Path]:
    return sorted(p for p in step_dir.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(step_dir: Path) -> None:
    """MANIFEST in a finished checkpoint folder: {relative path: [size, sha256]} of every file."""
    entries = {str(p.relative_to(step_dir)): [p.stat().st_size, _sha256(p)] for p in _files(step_dir)}
    tmp = step_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"files": entries}, indent=0, sort_keys=True))
    os.replace(tmp, step_dir / MANIFEST)


def verify_manifest(step_dir: Path) -> str | None:
    """None when every file of the manifest is there with its size and checksum (or when the folder
    has no manifest: nothing to check), else what is wrong."""
    manifest = step_dir / MANIFEST
    if not step_dir.is_dir():
        return "its folder is missing"
    if not manifest.is_file():
        return None
    try:
        entries = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError, OSError) as e:
        return f"its manifest is unreadable ({e.__class__.__name__})"
    for name, (size, digest) in sorted(entries.items()):
        path = step_dir / name
        if not path.is_file():
            return f"file {name} is missing"
        if path.stat().st_size != size:
            return f"file {name} has {path.stat().st_size} bytes, {size} were written"
        if _sha256(path) != digest:
            return f"file {name} does not match its checksum"
    return None


def _step_dir(manager: ocp.CheckpointManager, step: int) -> Path:
    return Path(str(manager.directory)) / str(step)


def _write_missing_manifests(manager: ocp.CheckpointManager) -> None:
    """Manifests of the finished checkpoints that lack one (call after the saves have finished)."""
    if jax.process_index() != 0:
        return
    for step in manager.all_steps():
        step_dir = _step_dir(manager, step)
        if step_dir.is_dir() and not (step_dir / MANIFEST).is_file():
            write_manifest(step_dir)


def remove_temporary_folders(folder: Path) -> list[Path]:
    """Removes orbax's unfinished *.orbax-checkpoint-tmp* folders under `folder`; returns them."""
    found = sorted(p for p in Path(folder).glob(f"*{TMP_MARK}*") if p.is_dir()) if Path(folder).is_dir() else []
    for p in found:
        shutil.rmtree(p, ignore_errors=True)
    return found



def _bytes_written_here(state) -> int:
    """Bytes this process writes for `state`: the arrays' primary shards that live on its devices."""
    total = 0
    for leaf in jax.tree.leaves(state):
        if isinstance(leaf, jax.Array):
            total += sum(s.data.nbytes for s in leaf.addressable_shards if s.replica_id == 0)
        else:
            total += np.asarray(leaf).nbytes if jax.process_index() == 0 else 0
    return total


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def _bundle_bytes(state) -> int:
    """Bytes of the generator bundle process 0 writes beside each checkpoint (G's variables, uncompressed)."""
    if jax.process_index() != 0:
        return 0
    return sum(int(np.prod(leaf.shape)) * np.dtype(leaf.dtype).itemsize
               for leaf in jax.tree.leaves(state.generator_variables()))


SAVE_MARGIN_BYTES = 256 * 1024  # metadata, manifests and the config beside the arrays


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    # (TensorStore appends "See full TensorStore details: <bound method ...spec of TensorStore({" to its errors)
    first = text[0].split(" See full TensorStore details")[0] if text else ""
    return f"{e.__class__.__name__}: {first}"


def _newest_good(manager: ocp.CheckpointManager, where: Path, attempt, step: int | None = None,
                 on_damaged=None):
    """(step, attempt(step)) of the newest checkpoint that passes its manifest and that `attempt`
    reads without error (a CheckpointError of attempt, e.g. a model that does not fit, is raised as
    is). Once a good one is found, damaged ones are reported by a DamagedCheckpointWarning each and
    passed to on_damaged(step) (with none good, nothing is touched and one CheckpointError names
    them). With `step` given only that one is tried."""
    steps = [step] if step is not None else sorted(manager.all_steps(), reverse=True)
    if not steps:
        raise NoCheckpointError(f"{where.parent} holds no checkpoint (folder {where} is empty)")
    damaged, damaged_steps = [], []
    for s in steps:
        problem = verify_manifest(_step_dir(manager, s))
        if problem is None:
            try:
                with logs.quiet_checkpoint_read():
                    result = attempt(s)
            except CheckpointError:
                raise
            except Exception as e:  # orbax / tensorstore errors of unreadable files
                problem = f"cannot be read ({_first_line(e)})"
            else:
                for bad, why in damaged_steps:  # (warned only now: with none good, the error alone says it)
                    warnings.warn(f"checkpoint {bad} in {where} is damaged ({why}); using an older one",
                                  DamagedCheckpointWarning, stacklevel=3)
                for bad, _ in damaged_steps if on_damaged is not None else ():
                    on_damaged(bad)
                return s, result
        damaged.append(f"checkpoint {s}: {problem}")
        damaged_steps.append((s, problem))
    raise CheckpointError(f"{where}: no usable checkpoint, {len(damaged)} damaged ({'; '.join(damaged[:2])})")


def _manager(path: Path, max_to_keep: int, best_metric: str = "", best_mode: str = "max",
             create: bool = True) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max(int(max_to_keep), 1), create=create, enable_async_checkpointing=True,
        cleanup_tmp_directories=create,  # a writer removes what a killed save left behind
        best_fn=(lambda metrics: float(metrics[best_metric])) if best_metric else None,
        best_mode=best_mode)
    handlers = {"state": ocp.StandardCheckpointHandler(), "config": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(path.absolute(), options=options, item_handlers=handlers)


def _shapes_by_path(tree) -> dict:
    return {name: tuple(leaf.shape) for name, leaf in flatten_with_names(tree).items()}


def _check_fits(manager: ocp.CheckpointManager, step: int, target, where: Path) -> None:
    """CheckpointError naming the first differences when checkpoint `step` does not have the
    arrays (paths and shapes) of `target`."""
    saved = _shapes_by_path(manager.item_metadata(step)["state"])
    wanted = _shapes_by_path(target)
    if saved == wanted:
        return
    diffs = [f"{k}: saved {saved.get(k, 'nothing')}, model {wanted.get(k, 'nothing')}"
             for k in sorted(set(saved) | set(wanted)) if saved.get(k) != wanted.get(k)]
    raise CheckpointError(f"checkpoint {step} in {where} does not fit the model of this config (changed "
                          f"generator / discriminator / optimizer?); {len(diffs)} arrays differ, e.g. "
                          + "; ".join(diffs[:3]))


def _restore_into(manager: ocp.CheckpointManager, step: int, target, where: Path):
    """Checkpoint `step`'s state read into the structure, shapes and shardings of `target` (a state
    or its abstract version), after checking that the saved arrays fit it."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    _check_fits(manager, step, abstract, where)
    # fields added to the state since this checkpoint was written, and empty (None) in this run: read
    # the others by name, then put them back
    saved = manager.item_metadata(step)["state"]
    fields = getattr(abstract, "__dataclass_fields__", {})
    missing = [name for name in fields if getattr(abstract, name) is None and name not in saved]
    if not missing:
        return manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))).state
    item = {name: getattr(abstract, name) for name in fields if name not in missing}
    read = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(item))).state
    return abstract.replace(**{name: read[name] for name in item})


def config_dict(config: ml_collections.ConfigDict) -> dict:
    return json.loads(config_io.config_to_json(config))


def check_best_metric(config: ml_collections.ConfigDict) -> None:
    """ValueError unless train.best_metric is '' or a scalar that evaluation of this run reports
    (checked before a run starts, not at its first save of the best checkpoint)."""
    name = config.train.best_metric
    valid = get_task(config.task).metric_names(config)
    if name and name not in valid:
        raise ValueError(f"train.best_metric {name!r} is not an evaluation metric of this run; "
                         f"valid: {', '.join(valid)}")


class Checkpointer:
    """Saves / restores GANStates of one run (every process must call save and restore)."""

    def __init__(self, workdir: str | os.PathLike, config: ml_collections.ConfigDict):
        self.workdir = Path(workdir)
        self.config_json = config_dict(config)
        self.config = config  # (G's bundle beside each checkpoint: jaxgan.bundle)
        train = config.train  # (its values checked when the config was read: config_io, check_best_metric)
        self.best_metric = train.best_metric
        self.latest = _manager(self.workdir / LATEST_DIR, train.max_to_keep)
        self.best = (_manager(self.workdir / BEST_DIR, 1, train.best_metric, train.best_mode)
                     if train.best_metric else None)

    def _args(self, state):
        return ocp.args.Composite(state=ocp.args.StandardSave(state),
                                  config=ocp.args.JsonSave(self.config_json))

    def _saving(self, what: str, step: int | None, fn):
        """Runs a save / wait of orbax; a failure (a full disk above all) becomes one CheckpointError
        and the unfinished temporary folders are removed."""
        try:
            return fn()
        except Exception as e:
            for folder in (self.workdir / LATEST_DIR, self.workdir / BEST_DIR):
                remove_temporary_folders(folder)
            at = "" if step is None else f" {step}"
            kept = self.latest.all_steps()
            kept_text = f"; the checkpoints kept: {', '.join(map(str, kept))}" if kept else ""
            if is_disk_full(e):
                raise CheckpointError(f"disk full while {what} checkpoint{at} in {self.workdir}: free space, "
                                      f"then run again to resume{kept_text}") from e
            raise CheckpointError(f"{what} checkpoint{at} in {self.workdir} failed ({_first_line(e)})"
                                  f"{kept_text}") from e

    def _check_free_space(self, what: str, step: int, state) -> None:
        """CheckpointError before a save that cannot fit on the disk with its generator bundle: orbax is
        never started on a full disk, where its background threads fail with hundreds of lines of their own."""
        needed = _bytes_written_here(state) + _bundle_bytes(state) + SAVE_MARGIN_BYTES
        free = shutil.disk_usage(self.workdir).free
        if free < needed:
            kept = self.latest.all_steps()
            kept_text = f"; the checkpoints kept: {', '.join(map(str, kept))}" if kept else ""
            raise CheckpointError(f"disk full while {what} checkpoint {step} in {self.workdir}: it needs "
                                  f"{_size(needed)}, {_size(free)} free; free space, "
                                  f"then run again to resume{kept_text}")

    def _finish_previous(self) -> None:
        """Waits for the running save and writes the manifests of the finished checkpoints."""
        self._saving("saving", None, self.latest.wait_until_finished)
        self._saving("saving", None, lambda: _write_missing_manifests(self.latest))
        if self.best is not None:
            self._saving("saving the best", None, self.best.wait_until_finished)
            self._saving("saving the best", None, lambda: _write_missing_manifests(self.best))

    def save(self, step: int, state) -> None:
        """Starts an asynchronous save of `state` as checkpoint `step` (returns once the arrays
        are copied off the devices, so the caller may donate them afterwards)."""
        if self.latest.latest_step() == step:
            return
        self._finish_previous()
        self._check_free_space("saving", step, state)
        self._saving("saving", step, lambda: self.latest.save(step, args=self._args(state), force=True))
        if jax.process_index() == 0:  # G as its own artefact beside the checkpoint (jaxgan.bundle)
            self._saving("saving", step, lambda: bundle.write_beside_checkpoint(
                self.workdir, step, self.config, state.generator_variables(), self.config.train.max_to_keep))

    def save_best(self, step: int, state, metrics: dict) -> None:
        """Offers `state` to the best-checkpoint manager (kept if metrics[best_metric] is best)."""
        if self.best is None:
            return
        if self.best_metric not in metrics:
            raise ValueError(f"train.best_metric {self.best_metric!r} is not an evaluation metric; "
                             f"available: {sorted(metrics)}")
        if self.best.latest_step() == step:
            return
        self._finish_previous()
        self._check_free_space("saving the best", step, state)
        self._saving("saving the best", step, lambda: self.best.save(
            step, args=self._args(state), metrics={self.best_metric: float(metrics[self.best_metric])},
            force=True))
        if jax.process_index() == 0:
            self._saving("saving the best", step, lambda: bundle.write_best(
                self.workdir, step, self.config, state.generator_variables(), self.best_metric,
                float(metrics[self.best_metric]), self.config.train.best_mode))

    def latest_step(self) -> int | None:
        return self.latest.latest_step()

    def _set_aside(self, step: int) -> None:
        """Moves a damaged checkpoint to WORKDIR/checkpoints_damaged/ (kept, out of orbax's way)."""
        if jax.process_index() == 0:
            source = _step_dir(self.latest, step)
            target = self.workdir / DAMAGED_DIR / str(step)
            if target.exists():
                target = target.with_name(f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
            if source.is_dir():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(source), str(target))
                warnings.warn(f"moved the damaged checkpoint {step} to {target}", DamagedCheckpointWarning,
                              stacklevel=4)
        self.latest.reload()

    def restore(self, target, step: int | None = None):
        """The checkpoint `step` (default: the newest good one, see the module docstring) restored
        into the structure, shapes and shardings of `target` (a state or its abstract version)."""
        if step is None and self.latest.latest_step() is None:
            raise NoCheckpointError(f"{self.workdir} holds no checkpoint in {self.workdir / LATEST_DIR}")
        def attempt(s):
            return _restore_into(self.latest, s, target, self.workdir / LATEST_DIR)

        _, state = _newest_good(self.latest, self.workdir / LATEST_DIR, attempt, step,
                                on_damaged=self._set_aside if step is None else None)
        return state

    def wait(self) -> None:
        self._finish_previous()

    def close(self) -> None:
        self.latest.close()
        if self.best is not None:
            self.best.close()


@contextlib.contextmanager
def _read_only_manager(workdir: Path, which: str):
    """(manager, folder) of `workdir`'s `which` checkpoints, opened without creating anything, closed after."""
    path = workdir / which
    if not path.is_dir():
        raise NoCheckpointError(f"{workdir} holds no checkpoint (no folder {path})")
    manager = _manager(path, 1, create=False)
    try:
        yield manager, path
    finally:
        manager.close()


def _restore_config(manager: ocp.CheckpointManager, step: int) -> ml_collections.ConfigDict:
    saved = manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
    return config_io.config_from_json(json.dumps(saved.config))


def read_config(workdir: str | os.PathLike, which: str = LATEST_DIR) -> tuple[ml_collections.ConfigDict, int]:
    """(config saved with the newest good checkpoint, its step); NoCheckpointError if there is none."""
    with _read_only_manager(Path(workdir), which) as (manager, path):
        step, config = _newest_good(manager, path, lambda s: _restore_config(manager, s))
    return config, int(step)


def restore_newest_good(workdir: str | os.PathLike, make_target, which: str = LATEST_DIR,
                        step: int | None = None):
    """(config, step, state, extra) of the newest good checkpoint (or of `step`): make_target(config,
    step) -> (target state or its abstract version, extra) builds what the state is restored into
    from the config saved with that checkpoint. Damaged checkpoints are skipped with a warning."""
    with _read_only_manager(Path(workdir), which) as (manager, path):
        def attempt(s):
            config = _restore_config(manager, s)
            target, extra = make_target(config, s)
            return config, _restore_into(manager, s, target, path), extra

        step, (config, state, extra) = _newest_good(manager, path, attempt, step)
    return config, int(step), state, extra


def read_state(workdir: str | os.PathLike, target, which: str = LATEST_DIR, step: int | None = None):
    """The state of `workdir`'s newest good (or given) checkpoint, in the structure of `target`."""
    return restore_newest_good(workdir, lambda config, s: (target, None), which, step)[2]
