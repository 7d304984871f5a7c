"""Torch state dict -> flax variables by an explicit table of (flax path, torch key, layout).

Layouts: 'conv' torch (O, I/groups, kh, kw) -> flax (kh, kw, I/groups, O); 'conv_transpose' torch
(I, O, kh, kw) -> flax kernel[a, b, i, o] = w[i, o, k-1-a, k-1-b] (jaxgan.nets.layers.ConvTranspose);
'vector' unchanged. Every key of the file must be in the table or among the known unused keys (the
original module holds them, jaxgan does not need them), every table key must be in the file, and
each shape must be the one the jaxgan module has: otherwise a WeightsError naming the key.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable

import numpy as np

from jaxgan.weights.torch_file import WeightsError


def torch_shape(flax_shape: tuple, layout: str) -> tuple:
    if layout == "conv":
        kh, kw, i, o = flax_shape
        return (o, i, kh, kw)
    if layout == "conv_transpose":
        kh, kw, i, o = flax_shape
        return (i, o, kh, kw)
    return tuple(flax_shape)


def to_flax(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "conv":
        return np.ascontiguousarray(array.transpose(2, 3, 1, 0))
    if layout == "conv_transpose":
        return np.ascontiguousarray(array[:, :, ::-1, ::-1].transpose(2, 3, 0, 1))
    return np.ascontiguousarray(array)


@dataclasses.dataclass
class Table:
    """entries: flax path ('params/a/kernel') -> (torch key, layout); unused: exact torch keys that
    may be present and are ignored; unused_patterns: regexes of such keys."""
    entries: dict = dataclasses.field(default_factory=dict)
    unused: set = dataclasses.field(default_factory=set)
    unused_patterns: list = dataclasses.field(default_factory=list)

    def add(self, flax_path: str, torch_key: str, layout: str = "vector") -> None:
        if flax_path in self.entries:
            raise AssertionError(f"converter table maps {flax_path} twice")
        self.entries[flax_path] = (torch_key, layout)

    def conv(self, flax_prefix: str, torch_prefix: str, bias: bool = True) -> None:
        self.add(f"params/{flax_prefix}/kernel", f"{torch_prefix}.weight", "conv")
        if bias:
            self.add(f"params/{flax_prefix}/bias", f"{torch_prefix}.bias")

    def conv_transpose(self, flax_prefix: str, torch_prefix: str, bias: bool = True) -> None:
        self.add(f"params/{flax_prefix}/kernel", f"{torch_prefix}.weight", "conv_transpose")
        if bias:
            self.add(f"params/{flax_prefix}/bias", f"{torch_prefix}.bias")

    def batch_norm(self, flax_prefix: str, torch_prefix: str) -> None:
        """flax_prefix: the path of flax's nn.BatchNorm module."""
        self.add(f"params/{flax_prefix}/scale", f"{torch_prefix}.weight")
        self.add(f"params/{flax_prefix}/bias", f"{torch_prefix}.bias")
        self.add(f"batch_stats/{flax_prefix}/mean", f"{torch_prefix}.running_mean")
        self.add(f"batch_stats/{flax_prefix}/var", f"{torch_prefix}.running_var")

    def instance_norm(self, torch_prefix: str) -> None:
        """A non-affine instance norm has nothing to convert; its running statistics (kept by
        track_running_stats=True or by old PyTorch versions) are not used per image."""
        self.unused.update({f"{torch_prefix}.running_mean", f"{torch_prefix}.running_var"})

    def is_unused(self, key: str) -> bool:
        return key in self.unused or any(re.fullmatch(p, key) for p in self.unused_patterns)


def _unflatten(flat: dict) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def _flat_shapes(tree, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        path = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, dict) or hasattr(value, "items"):
            out.update(_flat_shapes(dict(value), path))
        else:
            out[path] = tuple(value.shape)
    return out


def convert(state: dict[str, np.ndarray], table: Table, flax_shapes, what: str, source: str) -> dict:
    """flax variables ({'params': ..., 'batch_stats': ...}) from `state`; `flax_shapes` is the
    module's variables (or their jax.eval_shape); `what` names the format, `source` the file."""
    wanted = _flat_shapes(dict(flax_shapes))
    unmapped = sorted(set(wanted) - set(table.entries))
    if unmapped:
        raise AssertionError(f"converter for {what} does not fill {unmapped[:3]}")
    used = {key for key, _ in table.entries.values()}
    for key in state:
        if key not in used and not table.is_unused(key):
            raise WeightsError(f"{source}: unexpected key {key!r} (not in a {what} generator)")
    flat = {}
    for path, (key, layout) in table.entries.items():
        if key not in state:
            raise WeightsError(f"{source}: missing key {key!r} (a {what} generator has it)")
        expected = torch_shape(wanted[path], layout)
        if tuple(state[key].shape) != expected:
            raise WeightsError(f"{source}: key {key!r} has shape {tuple(state[key].shape)}, "
                               f"expected {expected} for this {what} generator")
        flat[path] = to_flax(state[key], layout)
    return _unflatten(flat)


def require(state: dict, keys: Iterable[str], what: str, source: str) -> None:
    for key in keys:
        if key not in state:
            raise WeightsError(f"{source}: missing key {key!r} (a {what} generator has it)")
