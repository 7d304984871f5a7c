"""Pytree helpers shared by training, checkpoints and transfer: parameters named by their path.

A leaf's name is its path joined with '/': dict keys, dataclass fields and sequence indices as
they are, e.g. 'g/params/down_0/kernel' in a GANState or 'nets_0/down_1/kernel' in a params tree.
"""

from __future__ import annotations

import math

import jax
import numpy as np


def _entry_name(entry) -> str:
    for attr in ("key", "name", "idx"):  # DictKey, GetAttrKey, SequenceKey
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def path_name(path) -> str:
    """'a/b/c' for a jax key path (a tuple of DictKey / GetAttrKey / SequenceKey entries)."""
    return "/".join(_entry_name(entry) for entry in path)


def flatten_with_names(tree) -> dict:
    """{'a/b/c': leaf} for every leaf of a pytree (see the module docstring)."""
    return {path_name(path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def count_params(tree) -> int:
    """Number of scalars in a pytree of arrays (or of ShapeDtypeStructs)."""
    return int(sum(math.prod(np.shape(leaf)) for leaf in jax.tree.leaves(tree)))
