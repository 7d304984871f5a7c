"""Transfer learning: initialise part of a model from another run, from VGG16 or from ImageNet weights.

Parameters are named by their path in the params tree, joined with '/' (e.g. 'down_0/kernel' or,
in a multi-stage G, 'nets_0/down_1/kernel'). `load_matching(target, source, prefixes, rename)`
copies every target leaf whose path starts with one of `prefixes` (all leaves when empty) from the
source leaf of the same path (after `rename`: 'dst_prefix=src_prefix' pairs, e.g.
'down_0=Conv_0') when the shapes match, and reports each such leaf as loaded or skipped with the
reason ('missing in source' or 'shape mismatch: source S, model M'). Leaves outside the prefixes
are left alone and not reported.

Sources (variants.transfer_from): another run's workdir (its latest checkpoint, read with its own
saved config, so its architecture may differ: params and batch_stats of the same model) or 'vgg16'
(jaxgan.nets.vgg.load_vgg16_params(): 'Conv_0' .. 'Conv_12', 3x3 kernels).

Or ImageNet weights the user supplies, loaded under G's 'backbone/' (DeblurGAN-v2's FPNs):
'imagenet:mobilenet_v2' (FPN-MobileNet; variants.transfer_file, empty: $JAXGAN_MOBILENET_V2_WEIGHTS or
~/.cache/jaxgan/weights/mobilenet_v2.pth) and 'imagenet:inception_resnet_v2' (FPN-Inception; empty:
$JAXGAN_INCEPTION_RESNET_V2_WEIGHTS or ~/.cache/jaxgan/weights/inception_resnet_v2.pth), read by
jaxgan.weights.imagenet.

Freezing parts of a model on a schedule is jaxgan.train.optim's `with_freezing`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan.nets.vgg import load_vgg16_params
from jaxgan.train.optim import MODELS, selected
from jaxgan.train.restore import restore_run
from jaxgan.trees import flatten_with_names, path_name
from jaxgan.weights import imagenet


def _source_name(name: str, rename) -> str:
    for pair in rename:
        if "=" not in pair:
            raise ValueError(f"variants.transfer_rename entries must be 'dst_prefix=src_prefix', got {pair!r}")
        dst, src = pair.split("=", 1)
        if name.startswith(dst):
            return src + name[len(dst):]
    return name


@dataclasses.dataclass
class TransferReport:
    """What load_matching did: loaded (model path, source path) pairs and skipped (path, reason)."""

    source: str
    loaded: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"transfer from {self.source}: {len(self.loaded)} loaded, {len(self.skipped)} skipped"]
        lines += [f"  loaded  {dst}" + ("" if dst == src else f" <- {src}") for dst, src in self.loaded]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


def load_matching(target, source, prefixes=(), rename=(), source_name: str = "source"):
    """(target with the matching leaves replaced by the source's, TransferReport); see the module
    docstring. The returned leaves are the source's values cast to the target leaf's dtype."""
    src = flatten_with_names(source)
    report = TransferReport(source_name)

    def pick(path, leaf):
        name = path_name(path)
        if not selected(name, prefixes):
            return leaf
        other = _source_name(name, rename)
        if other not in src:
            report.skipped.append((name, f"missing in source ({other})"))
            return leaf
        value = src[other]
        if tuple(np.shape(value)) != tuple(np.shape(leaf)):
            report.skipped.append((name, f"shape mismatch: source {tuple(np.shape(value))}, "
                                         f"model {tuple(np.shape(leaf))}"))
            return leaf
        report.loaded.append((name, other))
        return jnp.asarray(value, dtype=jnp.asarray(leaf).dtype)

    return jax.tree_util.tree_map_with_path(pick, target), report


# ---- sources -------------------------------------------------------------------------------------

def _source_variables(config: ml_collections.ConfigDict) -> tuple[dict, dict]:
    """(params, batch_stats) of variants.transfer_model in variants.transfer_from."""
    v = config.variants
    if v.transfer_from.startswith("imagenet:"):
        return _imagenet_variables(v.transfer_from[len("imagenet:"):], v.transfer_file)
    if v.transfer_from == "vgg16":
        if v.transfer_model not in MODELS:
            raise ValueError(f"variants.transfer_model must be one of {MODELS}, got {v.transfer_model!r}")
        return load_vgg16_params(), {}
    if not Path(v.transfer_from).is_dir():
        raise ValueError(f"variants.transfer_from={v.transfer_from!r} is neither 'vgg16' nor a run's workdir")
    other = restore_run(v.transfer_from).state  # built from the run's own saved config
    model = other.g if v.transfer_model == "generator" else other.d
    return model.params, model.batch_stats


# 'imagenet:NAME' -> (the G submodule its weights initialise, the loader, the file lookup)
IMAGENET = {"mobilenet_v2": ("backbone", imagenet.load_mobilenet_v2_variables, imagenet.mobilenet_v2_path),
            "inception_resnet_v2": ("backbone", imagenet.load_inception_resnet_v2_variables,
                                    imagenet.inception_resnet_v2_path)}


def _imagenet_variables(name: str, path: str) -> tuple[dict, dict]:
    """(params, batch_stats) of ImageNet weights NAME from the user's file (transfer_file, else the
    loader's default place), under the model's path IMAGENET[NAME]."""
    if name not in IMAGENET:
        raise ValueError(f"variants.transfer_from='imagenet:{name}': unknown ImageNet network; "
                         f"known: {tuple('imagenet:' + n for n in IMAGENET)}")
    submodule, load, _ = IMAGENET[name]
    variables = load(path or None)
    return {submodule: variables["params"]}, {submodule: variables["batch_stats"]}


def check_source(config: ml_collections.ConfigDict) -> None:
    """Fails at once (before any model is built) when variants.transfer_from names ImageNet weights
    whose file is missing; the message says which file to put where."""
    source = config.variants.transfer_from
    if source.startswith("imagenet:"):
        name = source[len("imagenet:"):]
        if name not in IMAGENET:
            raise ValueError(f"variants.transfer_from={source!r}: unknown ImageNet network; "
                             f"known: {tuple('imagenet:' + n for n in IMAGENET)}")
        IMAGENET[name][2](config.variants.transfer_file or None)


def apply_transfer(config: ml_collections.ConfigDict, state, verbose: bool = True):
    """(state with variants.transfer_model's params / batch_stats loaded where they match, report).
    EMA params (when kept) restart from the loaded G params. Prints the report when verbose."""
    v = config.variants
    if v.transfer_model not in MODELS:
        raise ValueError(f"variants.transfer_model must be one of {MODELS}, got {v.transfer_model!r}")
    params, batch_stats = _source_variables(config)
    model = state.g if v.transfer_model == "generator" else state.d
    prefixes, rename = tuple(v.transfer_prefixes), tuple(v.transfer_rename)
    new_params, report = load_matching(model.params, params, prefixes, rename, v.transfer_from)
    report.source = f"{v.transfer_from} ({v.transfer_model} params)"
    new_stats = model.batch_stats
    if model.batch_stats and batch_stats:
        new_stats, stats_report = load_matching(model.batch_stats, batch_stats, prefixes, rename)
        report.loaded += [(f"batch_stats/{a}", f"batch_stats/{b}") for a, b in stats_report.loaded]
        report.skipped += [(f"batch_stats/{a}", why) for a, why in stats_report.skipped]
    model = model.replace(params=new_params, batch_stats=new_stats)
    if v.transfer_model == "generator":
        ema = None if state.ema_params is None else jax.tree.map(jnp.copy, new_params)
        ema_stats = None if state.ema_batch_stats is None else jax.tree.map(jnp.copy, new_stats)
        state = state.replace(g=model, ema_params=ema, ema_batch_stats=ema_stats)
    else:
        state = state.replace(d=model)
    if verbose:
        print(report, flush=True)
    return state, report
