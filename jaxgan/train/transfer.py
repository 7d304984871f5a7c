"""Transfer learning: initialise part of a model from another run or from VGG16, and freeze parts of
it on a schedule.

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

Or ImageNet weights the user supplies: 'imagenet:mobilenet_v2', the FPN's backbone, read from
variants.transfer_file (empty: $JAXGAN_MOBILENET_V2_WEIGHTS or ~/.cache/jaxgan/weights/mobilenet_v2.pth)
by jaxgan.weights.imagenet.load_mobilenet_v2_variables, loaded under G's 'backbone/'.

Freezing (variants.freeze_prefixes, unfreeze_step): optax.multi_transform sends the frozen leaves
to `start_at(start, fresh optimizer)`: exactly zero updates before unfreeze_step, and the
optimizer's state (Adam's moments AND its count) held at its initial value until then, so at
unfreezing those leaves start like a new Adam (bias correction from step 1: first |update| / lr
about 1, not the 2-10x of moments that were fed zeros while the count ran on). Its learning-rate
schedule is offset by the start, so it joins the same schedule position as the trained leaves.
unfreeze_step 0 means frozen for the whole run (optax.set_to_zero). A zero update leaves a param
bitwise unchanged. (DeblurGAN-v2 train.py builds a new optimizer for all of G at its unfreeze
epoch; here only the unfrozen leaves restart, the always-trained ones keep their moments.)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

MODELS = ("generator", "discriminator")


def _path_name(path) -> str:
    parts = []
    for entry in path:
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                parts.append(str(getattr(entry, attr)))
                break
        else:
            parts.append(str(entry))
    return "/".join(parts)


def flat_params(tree) -> dict:
    """{'a/b/c': leaf} for every leaf of a (nested dict) params tree."""
    return {_path_name(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _selected(name: str, prefixes) -> bool:
    return not prefixes or any(name.startswith(p) for p in prefixes)


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
    src = flat_params(source)
    report = TransferReport(source_name)

    def pick(path, leaf):
        name = _path_name(path)
        if not _selected(name, prefixes):
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
    from pathlib import Path

    from jaxgan.train.evaluate import restore_state

    v = config.variants
    if v.transfer_from.startswith("imagenet:"):
        return _imagenet_variables(v.transfer_from[len("imagenet:"):], v.transfer_file)
    if v.transfer_from == "vgg16":
        if v.transfer_model not in MODELS:
            raise ValueError(f"variants.transfer_model must be one of {MODELS}, got {v.transfer_model!r}")
        from jaxgan.nets.vgg import load_vgg16_params

        return load_vgg16_params(), {}
    if not Path(v.transfer_from).is_dir():
        raise ValueError(f"variants.transfer_from={v.transfer_from!r} is neither 'vgg16' nor a run's workdir")
    _, _, _, other, _ = restore_state(v.transfer_from)  # built from the run's own saved config
    model = other.g if v.transfer_model == "generator" else other.d
    return model.params, model.batch_stats


IMAGENET = {"mobilenet_v2": "backbone"}  # 'imagenet:NAME' -> the G submodule its weights initialise


def _imagenet_variables(name: str, path: str) -> tuple[dict, dict]:
    """(params, batch_stats) of ImageNet weights NAME from the user's file (transfer_file, else the
    loader's default place), under the model's path IMAGENET[NAME]."""
    if name not in IMAGENET:
        raise ValueError(f"variants.transfer_from='imagenet:{name}': unknown ImageNet network; "
                         f"known: {tuple('imagenet:' + n for n in IMAGENET)}")
    from jaxgan.weights.imagenet import load_mobilenet_v2_variables

    variables = load_mobilenet_v2_variables(path or None)
    return {IMAGENET[name]: variables["params"]}, {IMAGENET[name]: variables["batch_stats"]}


def check_source(config: ml_collections.ConfigDict) -> None:
    """Fails at once (before any model is built) when variants.transfer_from names ImageNet weights
    whose file is missing; the message says which file to put where."""
    source = config.variants.transfer_from
    if source.startswith("imagenet:"):
        name = source[len("imagenet:"):]
        if name not in IMAGENET:
            raise ValueError(f"variants.transfer_from={source!r}: unknown ImageNet network; "
                             f"known: {tuple('imagenet:' + n for n in IMAGENET)}")
        from jaxgan.weights.imagenet import mobilenet_v2_path

        mobilenet_v2_path(config.variants.transfer_file or None)


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
        state = state.replace(g=model, ema_params=ema)
    else:
        state = state.replace(d=model)
    if verbose:
        print(report, flush=True)
    return state, report


# ---- freezing ------------------------------------------------------------------------------------

class StartState(NamedTuple):
    count: jax.Array  # updates seen so far (int32)
    inner: Any  # the wrapped optimizer's state, at its initial value until `start`


def start_at(start: int, inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """`inner` from the `start`-th update on (0-based count >= start), as if created then: zero
    updates before, and inner's state (moments, count) kept at its initial value until then."""
    def init(params):
        return StartState(count=jnp.zeros((), jnp.int32), inner=inner.init(params))

    def update(updates, state, params=None):
        on = state.count >= start
        new_updates, new_inner = inner.update(updates, state.inner, params)
        keep = lambda new, old: jnp.where(on, new, old)  # noqa: E731
        inner_state = jax.tree.map(keep, new_inner, state.inner)
        updates = jax.tree.map(lambda u: jnp.where(on, u, jnp.zeros_like(u)), new_updates)
        return updates, StartState(count=state.count + 1, inner=inner_state)

    return optax.GradientTransformation(init, update)


def freeze_labels(params, prefixes) -> Any:
    """The params tree with 'frozen' on leaves whose path starts with a prefix, 'train' elsewhere."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "frozen" if _selected(_path_name(path), tuple(prefixes)) else "train", params)


def with_freezing(make_tx: Callable[[int], optax.GradientTransformation], prefixes, unfreeze_step: int,
                  updates_per_step: int = 1) -> optax.GradientTransformation:
    """make_tx(0) for the trained leaves; the leaves under `prefixes` frozen until train step
    unfreeze_step (0 = always), then trained by a fresh make_tx(start) (its schedule counts from
    the update count `start`; see the module docstring)."""
    if unfreeze_step < 0:
        raise ValueError(f"variants.unfreeze_step must be >= 0, got {unfreeze_step}")
    if unfreeze_step == 0:
        frozen = optax.set_to_zero()
    else:
        start = int(unfreeze_step) * int(updates_per_step)
        frozen = start_at(start, make_tx(start))
    prefixes = tuple(prefixes)
    return optax.multi_transform({"train": make_tx(0), "frozen": frozen},
                                 lambda params: freeze_labels(params, prefixes))
