"""Checkpoints with orbax: the whole GANState plus the run's config (JSON), saved asynchronously.

Layout of a workdir:
    WORKDIR/checkpoints/<step>/{state,config}   the latest `train.max_to_keep` checkpoints
    WORKDIR/best/<step>/{state,config}          the best one by train.best_metric (when set)

A checkpoint is only written after the loop has checked every loss since the previous one for
NaN / Inf, so a saved state is always a good one (see loop.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import ml_collections
import orbax.checkpoint as ocp

LATEST_DIR = "checkpoints"
BEST_DIR = "best"


class CheckpointError(ValueError):
    """A workdir whose checkpoints are missing or do not fit the config."""


class NoCheckpointError(CheckpointError):
    """The workdir has no checkpoint to restore."""


def _manager(path: Path, max_to_keep: int, best_metric: str = "", best_mode: str = "max",
             create: bool = True) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max(int(max_to_keep), 1), create=create, enable_async_checkpointing=True,
        best_fn=(lambda metrics: float(metrics[best_metric])) if best_metric else None,
        best_mode=best_mode)
    handlers = {"state": ocp.StandardCheckpointHandler(), "config": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(path.absolute(), options=options, item_handlers=handlers)


def _shapes_by_path(tree) -> dict:
    def name(entry):
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                return str(getattr(entry, attr))
        return str(entry)

    return {"/".join(name(e) for e in path): tuple(leaf.shape)
            for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


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


def config_dict(config: ml_collections.ConfigDict) -> dict:
    from jaxgan import config_io

    return json.loads(config_io.config_to_json(config))


class Checkpointer:
    """Saves / restores GANStates of one run (every process must call save and restore)."""

    def __init__(self, workdir: str | os.PathLike, config: ml_collections.ConfigDict):
        self.workdir = Path(workdir)
        self.config_json = config_dict(config)
        t = config.train
        if t.best_mode not in ("max", "min"):
            raise ValueError(f"train.best_mode must be 'max' or 'min', got {t.best_mode!r}")
        self.best_metric = t.best_metric
        self.latest = _manager(self.workdir / LATEST_DIR, t.max_to_keep)
        self.best = (_manager(self.workdir / BEST_DIR, 1, t.best_metric, t.best_mode)
                     if t.best_metric else None)

    def _args(self, state):
        return ocp.args.Composite(state=ocp.args.StandardSave(state),
                                  config=ocp.args.JsonSave(self.config_json))

    def save(self, step: int, state) -> None:
        """Starts an asynchronous save of `state` as checkpoint `step` (returns once the arrays
        are copied off the devices, so the caller may donate them afterwards)."""
        if self.latest.latest_step() == step:
            return
        self.latest.save(step, args=self._args(state), force=True)

    def save_best(self, step: int, state, metrics: dict) -> None:
        """Offers `state` to the best-checkpoint manager (kept if metrics[best_metric] is best)."""
        if self.best is None:
            return
        if self.best_metric not in metrics:
            raise ValueError(f"train.best_metric {self.best_metric!r} is not an evaluation metric; "
                             f"available: {sorted(metrics)}")
        if self.best.latest_step() == step:
            return
        self.best.save(step, args=self._args(state), metrics={self.best_metric: float(metrics[self.best_metric])},
                       force=True)

    def latest_step(self) -> int | None:
        return self.latest.latest_step()

    def restore(self, target, step: int | None = None):
        """The checkpoint `step` (default latest) restored into the structure, shapes and
        shardings of `target` (a state or its abstract version)."""
        step = self.latest.latest_step() if step is None else step
        if step is None:
            raise NoCheckpointError(f"{self.workdir} holds no checkpoint in {self.workdir / LATEST_DIR}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        _check_fits(self.latest, step, abstract, self.workdir / LATEST_DIR)
        restored = self.latest.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
        return restored.state

    def wait(self) -> None:
        self.latest.wait_until_finished()
        if self.best is not None:
            self.best.wait_until_finished()

    def close(self) -> None:
        self.latest.close()
        if self.best is not None:
            self.best.close()


def read_config(workdir: str | os.PathLike, which: str = LATEST_DIR) -> tuple[ml_collections.ConfigDict, int]:
    """(config saved with the latest checkpoint, its step); NoCheckpointError if there is none."""
    from jaxgan import config_io

    workdir = Path(workdir)
    path = workdir / which
    if not path.is_dir():
        raise NoCheckpointError(f"{workdir} holds no checkpoint (no folder {path})")
    manager = _manager(path, 1, create=False)
    try:
        step = manager.latest_step()
        if step is None:
            raise NoCheckpointError(f"{workdir} holds no checkpoint (folder {path} is empty)")
        saved = manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))
    finally:
        manager.close()
    return config_io.config_from_json(json.dumps(saved.config)), int(step)


def restore_state(workdir: str | os.PathLike, target, which: str = LATEST_DIR, step: int | None = None):
    """The state of `workdir`'s latest (or given) checkpoint, in the structure of `target`."""
    workdir = Path(workdir)
    path = workdir / which
    if not path.is_dir():
        raise NoCheckpointError(f"{workdir} holds no checkpoint (no folder {path})")
    manager = _manager(path, 1, create=False)
    try:
        step = manager.latest_step() if step is None else step
        if step is None:
            raise NoCheckpointError(f"{workdir} holds no checkpoint (folder {path} is empty)")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        _check_fits(manager, step, abstract, path)
        restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
    finally:
        manager.close()
    return restored.state
