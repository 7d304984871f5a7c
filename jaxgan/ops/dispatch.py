"""The one place that picks how `jaxgan.ops` computes convolutions and pools.

- 'xla': plain `lax` ops, autodiff backward.
- 'cpu_fast': the rewrites measured faster on XLA's CPU backend (benchmarks/README.md).
- 'tflite': plain `lax`, with transposed convs padded evenly and cropped
  (`conv2d_transpose_even_pads`): what `jaxgan export --format tflite` traces, as TFLite's
  converter gets unevenly padded transposed convs wrong.
- 'auto': the environment variable JAXGAN_CONV_IMPL when it is set (to one of the above), else
  'cpu_fast' on the CPU backend and 'xla' on GPU / TPU, where the rewrites are unmeasured.

The backend is the default one, or inside a `lowering_for(platform, ...)` block those platforms: what a
`jax.export(..., platforms=[platform])` from this machine must trace (e.g. a CUDA program on a CPU host).

The choice is made at trace time: `resolve()` reads the impl set by the innermost `conv_impl(...)`
block (the train step runs under `train.conv_impl`), else 'auto'.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from typing import Iterator

import jax

IMPLS = ("auto", "xla", "cpu_fast", "tflite")
ENV_VAR = "JAXGAN_CONV_IMPL"
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
_requested = contextvars.ContextVar("jaxgan_conv_impl", default="auto")
_platform = contextvars.ContextVar("jaxgan_lowering_platform", default=None)


def check_impl(impl: str, what: str = "conv_impl") -> str:
    """`impl` if it is one of IMPLS, else ValueError naming `what`."""
    if impl not in IMPLS:
        raise ValueError(f"{what} must be one of {list(IMPLS)}, got {impl!r}")
    return impl


@contextlib.contextmanager
def conv_impl(impl: str) -> Iterator[None]:
    """Ops traced inside this block use `impl` (one of IMPLS)."""
    token = _requested.set(check_impl(impl))
    try:
        yield
    finally:
        _requested.reset(token)


@contextlib.contextmanager
def lowering_for(*platforms: str) -> Iterator[None]:
    """Code traced inside this block takes the paths meant for `platforms` (of PLATFORMS; one trace
    serves them all, so all CPU or none), not the default backend's: for exporting a program for
    other platforms than this machine's. Trace a fresh `jax.jit` in it (one already traced for the
    same shapes reuses that trace)."""
    unknown = [p for p in platforms if p not in PLATFORMS]
    if not platforms or unknown:
        raise ValueError(f"platform must be one of {list(PLATFORMS)}, got {unknown or 'none'}")
    if len({p == "cpu" for p in platforms}) > 1:
        raise ValueError(f"one trace cannot serve the CPU and another platform: {list(platforms)}")
    token = _platform.set(platforms[0])
    try:
        yield
    finally:
        _platform.reset(token)


def on_cpu() -> bool:
    """Whether the code being traced is for XLA's CPU backend: the `lowering_for` platform, else
    the default backend."""
    return (_platform.get() or jax.default_backend()) == "cpu"


def resolve(impl: str | None = None) -> str:
    """'xla', 'cpu_fast' or 'tflite': `impl`, else the enclosing `conv_impl` block's, with 'auto' resolved."""
    impl = check_impl(_requested.get() if impl is None else impl)
    if impl == "auto":
        impl = check_impl(os.environ.get(ENV_VAR) or "auto", ENV_VAR)
    if impl == "auto":
        return "cpu_fast" if on_cpu() else "xla"
    return impl
