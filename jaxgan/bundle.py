"""A trained generator as its own artefact: the config that runs it, its variables and how it predicts.

On disk a bundle is a folder of two files:
    bundle.json     {"format": 1, "sha256": <of variables.npz>, "config": <the run's config>,
                     "inference": {"train_mode": ..., "tile_size": ...}, "card": {...}}
    variables.npz   G's variables, one array per '/'-joined path ('params/Conv_0/kernel'), read without pickle
It is written into a temporary folder that is then renamed, so a folder under its final name is complete,
and the checksum is verified before an array is read.

A training run writes one beside each checkpoint: WORKDIR/generator/<step> (as many as it keeps
checkpoints) and WORKDIR/best_generator/<step> (the best by train.best_metric). `load_generator(path)`
reads a bundle folder, a workdir's newest bundle or, for a workdir written before bundles existed, G's
arrays out of its newest orbax checkpoint (read by path: jaxgan.train is not needed).

`GeneratorBundle.apply_fn()` is how every command runs G (predict, evaluate, export, score).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import traverse_util

from jaxgan import config_io, logs, nets, ops
from jaxgan.nets.inference import apply_generator

FORMAT = 1
CONFIG_FILE = "bundle.json"
VARIABLES_FILE = "variables.npz"
LATEST_DIR = "generator"  # WORKDIR/generator/<step>, beside WORKDIR/checkpoints/<step>
BEST_DIR = "best_generator"  # WORKDIR/best_generator/<step>, beside WORKDIR/best/<step>
CHECKPOINTS_DIR = "checkpoints"  # (jaxgan.train.checkpoint.LATEST_DIR)
DEFAULT_TILE_SIZE = 768  # a trained run's predictions: tiles of 768 px, blended
SEPARATOR = "/"


class BundleError(ValueError):
    """A bundle or workdir that holds no usable generator; the message names the path."""


class DamagedBundleWarning(UserWarning):
    """A damaged bundle or checkpoint was skipped (the message names it and why)."""


@dataclasses.dataclass(frozen=True)
class Inference:
    """How the generator predicts. train_mode: dropout on and batch norm on the image's own statistics
    (the originals' test scripts; config.eval.train_mode_inference); tile_size: the side of the tiles
    a large image is cut into by default, 0 = the whole image at once."""

    train_mode: bool = False
    tile_size: int = DEFAULT_TILE_SIZE


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def flatten(tree: dict) -> dict[str, np.ndarray]:
    """{'params/Conv_0/kernel': array} of a nested dict of arrays."""
    return {name: np.asarray(value) for name, value in traverse_util.flatten_dict(tree, sep=SEPARATOR).items()}


def unflatten(flat: dict[str, np.ndarray]) -> dict:
    return traverse_util.unflatten_dict(flat, sep=SEPARATOR)


def _to_host(leaf) -> np.ndarray:
    """A (replicated) array as NumPy, also when it spans processes (its local copy)."""
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
        return np.asarray(leaf.addressable_data(0))
    return np.asarray(jax.device_get(leaf))


def generator_variables(params, batch_stats=None) -> dict:
    """{'params': ..., 'batch_stats': ...} on the host (no batch_stats entry for a G without batch norm)."""
    variables = {"params": params, **({"batch_stats": batch_stats} if batch_stats else {})}
    return jax.tree.map(_to_host, variables)


@dataclasses.dataclass(frozen=True)
class GeneratorBundle:
    """config: the run's config (task, data channels and input prior, generator name and options,
    train.compute_dtype and train.conv_impl are what running G reads); variables: G's params (the EMA
    params when the run kept them) and batch statistics, NumPy; card: free-form notes (metrics, source)."""

    config: ml_collections.ConfigDict
    variables: dict
    inference: Inference = Inference()
    card: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def of_run(cls, config, variables, card: dict | None = None) -> "GeneratorBundle":
        """The bundle of a trained run's G: its inference mode is config.eval.train_mode_inference."""
        return cls(config, jax.tree.map(_to_host, dict(variables)),
                   Inference(train_mode=bool(config.eval.train_mode_inference)), card or {})

    @property
    def task(self) -> str:
        return self.config.task

    def module(self):
        """G's Flax module (config.generator), computing in train.compute_dtype."""
        return nets.make_generator(self.config.generator.name, dtype=jnp.dtype(self.config.train.compute_dtype),
                                   **dict(self.config.generator.options))

    def conv_impl(self) -> str:
        return ops.check_impl(self.config.train.get("conv_impl", "auto"), "train.conv_impl")

    def apply_fn(self, module=None, train_mode: bool | None = None):
        """`apply_fn` of G (`module`: default self.module()) in this bundle's inference mode (or
        `train_mode`), with the run's conv impl."""
        module = self.module() if module is None else module
        mode = self.inference.train_mode if train_mode is None else train_mode
        return apply_fn(module, train_mode=mode, conv_impl=self.conv_impl())

    def save(self, path: str | os.PathLike) -> Path:
        """Writes the bundle folder `path` (which must not exist) through a temporary folder beside it."""
        path = Path(path)
        if path.exists():
            raise BundleError(f"{path} exists; a bundle is never overwritten")
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            np.savez(tmp / VARIABLES_FILE, **flatten(self.variables))
            record = {"format": FORMAT, "sha256": sha256_of(tmp / VARIABLES_FILE),
                      "config": json.loads(config_io.config_to_json(self.config)),
                      "inference": dataclasses.asdict(self.inference), "card": self.card}
            (tmp / CONFIG_FILE).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GeneratorBundle":
        """The bundle in folder `path`, its variables' checksum verified first; BundleError if damaged."""
        path = Path(path)
        record = read_record(path)
        npz = path / VARIABLES_FILE
        if not npz.is_file():
            raise BundleError(f"{path}: {VARIABLES_FILE} is missing")
        actual = sha256_of(npz)
        if actual != record.get("sha256"):
            raise BundleError(f"{npz}: checksum mismatch (sha256 {actual[:12]}..., expected "
                              f"{str(record.get('sha256'))[:12]}...): the file is corrupt")
        with np.load(npz, allow_pickle=False) as data:
            variables = unflatten({k: data[k] for k in data.files})
        config = config_io.config_from_json(json.dumps(record["config"]))
        inference = Inference(**record.get("inference", {}))
        return cls(config, variables, inference, record.get("card", {}))


def apply_fn(module, *, train_mode: bool = False, conv_impl: str = "auto"):
    """How every command runs G: fn(variables, x (B, H, W, C) in [-1, 1], *, key=None) -> G's output, in
    inference mode or in train mode (dropout masks drawn from `key`; jaxgan.nets.inference), convs as
    `conv_impl` (jaxgan.ops). Not jitted: the caller jits it (or traces it into an export)."""
    return functools.partial(apply_generator, module.apply, train_mode=bool(train_mode),
                             conv_impl=ops.check_impl(conv_impl, "train.conv_impl"))


def read_record(path: Path) -> dict:
    """The parsed bundle.json of bundle folder `path`; BundleError when missing or unreadable."""
    try:
        record = json.loads((Path(path) / CONFIG_FILE).read_text())
    except FileNotFoundError:
        raise BundleError(f"{path} is not a generator bundle (no {CONFIG_FILE})") from None
    except (ValueError, OSError) as e:
        raise BundleError(f"{Path(path) / CONFIG_FILE}: unreadable ({e.__class__.__name__}: {e})") from None
    if not isinstance(record, dict) or "config" not in record:
        raise BundleError(f"{Path(path) / CONFIG_FILE}: not a generator bundle (no config)")
    if record.get("format", FORMAT) > FORMAT:
        raise BundleError(f"{path}: bundle format {record['format']} is newer than this jaxgan reads ({FORMAT})")
    return record


def is_bundle(path: str | os.PathLike) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def _steps(folder: Path) -> list[int]:
    """The integer-named subfolders of `folder`, newest first."""
    if not folder.is_dir():
        return []
    return sorted((int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), reverse=True)


# ---- beside the checkpoints of a run (called by jaxgan.train.checkpoint, process 0) ---------------

def write_beside_checkpoint(workdir, step: int, config, variables, keep: int) -> Path:
    """WORKDIR/generator/<step> from G's variables; keeps the newest `keep` (as the checkpoints)."""
    folder = Path(workdir) / LATEST_DIR
    path = folder / str(int(step))
    if not path.exists():
        GeneratorBundle.of_run(config, variables).save(path)
    for old in _steps(folder)[max(int(keep), 1):]:
        shutil.rmtree(folder / str(old), ignore_errors=True)
    return path


def write_best(workdir, step: int, config, variables, metric: str, value: float, mode: str) -> Path | None:
    """WORKDIR/best_generator/<step> when `value` of `metric` beats the bundle kept there (higher for
    mode 'max'); the one it replaces is removed. None when it does not."""
    folder = Path(workdir) / BEST_DIR
    kept = _steps(folder)
    if kept:
        try:
            best = read_record(folder / str(kept[0]))["card"]["best"]["value"]
        except (BundleError, KeyError, TypeError):
            best = None
        if best is not None and not (value > best if mode == "max" else value < best):
            return None
    path = folder / str(int(step))
    if not path.exists():
        card = {"best": {"metric": metric, "value": float(value), "mode": mode, "step": int(step)}}
        GeneratorBundle.of_run(config, variables, card).save(path)
    for old in kept:
        if old != int(step):
            shutil.rmtree(folder / str(old), ignore_errors=True)
    return path


# ---- reading ------------------------------------------------------------------------------------

def load_generator(path: str | os.PathLike) -> GeneratorBundle:
    """The generator at `path`: a bundle folder, or a workdir's newest bundle (WORKDIR/generator/<step>),
    or, when its newest checkpoint has no bundle (a workdir of an older jaxgan), G out of that
    checkpoint. Damaged ones are skipped with a DamagedBundleWarning; BundleError when none is usable."""
    path = Path(path)
    if is_bundle(path):
        return GeneratorBundle.load(path)
    checkpoints = _steps(path / CHECKPOINTS_DIR)
    problems = []
    for step in _steps(path / LATEST_DIR):
        if checkpoints and step < checkpoints[0]:
            break  # a newer checkpoint without its bundle: read that one
        try:
            return GeneratorBundle.load(path / LATEST_DIR / str(step))
        except BundleError as e:
            problems.append(str(e))
            warnings.warn(f"generator bundle {step} in {path / LATEST_DIR} is damaged ({e}); skipped",
                          DamagedBundleWarning, stacklevel=2)
    if not checkpoints:
        detail = f" ({problems[0]})" if problems else ""
        raise BundleError(f"{path} holds no trained generator: no bundle in {path / LATEST_DIR} and no checkpoint "
                          f"in {path / CHECKPOINTS_DIR}{detail}")
    return from_checkpoint(path, checkpoints)


def from_checkpoint(workdir: Path, steps: list[int]) -> GeneratorBundle:
    """G's bundle read out of the newest readable orbax checkpoint of `steps` (training checkpoints hold
    the state {'g': {'params', 'batch_stats', ...}, 'd': ..., 'ema_params', ...} and the config)."""
    problems = []
    for step in steps:
        folder = workdir / CHECKPOINTS_DIR / str(step)
        try:
            config, variables = _read_checkpoint(folder)
        except Exception as e:  # orbax / tensorstore errors of unreadable files
            text = str(e).strip().splitlines()
            first = text[0].split(" See full TensorStore details")[0] if text else ""
            problems.append((step, f"checkpoint {step}: {e.__class__.__name__}: {first}"))
            continue
        for bad, problem in problems:  # warned only now: with none readable, the error alone says it
            warnings.warn(f"checkpoint {bad} in {folder.parent} cannot be read ({problem}); using an older one",
                          DamagedBundleWarning, stacklevel=3)
        return GeneratorBundle.of_run(config, variables)
    raise BundleError(f"{workdir / CHECKPOINTS_DIR}: no usable checkpoint, {len(problems)} damaged "
                      f"({'; '.join(problem for _, problem in problems[:2])})")


def _read_checkpoint(folder: Path):
    """(config, G's inference variables) of one checkpoint folder: only G's arrays are read."""
    import orbax.checkpoint as ocp

    with logs.quiet_checkpoint_read():  # a damaged one is reported by the caller in one line
        with ocp.Checkpointer(ocp.JsonCheckpointHandler()) as reader:
            config = config_io.config_from_json(json.dumps(reader.restore(folder / "config")))
        with ocp.PyTreeCheckpointer() as reader:
            tree = reader.metadata(folder / "state").item_metadata.tree
            item = {"g": {k: tree["g"][k] for k in ("params", "batch_stats") if tree["g"].get(k)}}
            for key in ("ema_params", "ema_batch_stats"):  # G's EMA, when the run kept one
                if tree.get(key):
                    item[key] = tree[key]
            restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), item)
            saved = reader.restore(folder / "state", args=ocp.args.PyTreeRestore(
                item=item, restore_args=restore_args, partial_restore=True))
    if "ema_params" not in saved:
        return config, generator_variables(saved["g"]["params"], saved["g"].get("batch_stats"))
    stats = saved.get("ema_batch_stats", saved["g"].get("batch_stats"))  # EMA statistics when kept
    return config, generator_variables(saved["ema_params"], stats)
