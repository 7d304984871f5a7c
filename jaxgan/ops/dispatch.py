"""The one place that picks how `jaxgan.ops` computes convolutions and pools.

- 'xla': plain `lax` ops, autodiff backward.
- 'cpu_fast': the rewrites measured faster on XLA's CPU backend (benchmarks/README.md).
- 'tflite': plain `lax`, with transposed convs padded evenly and cropped
  (`conv2d_transpose_even_pads`): what `jaxgan export --format tflite` traces, as TFLite's
  converter gets unevenly padded transposed convs wrong.
- 'auto': the environment variable JAXGAN_CONV_IMPL when it is set (to one of the above), else
  'cpu_fast' on the CPU backend and 'xla' on GPU / TPU, where the rewrites are unmeasured.

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
_requested = contextvars.ContextVar("jaxgan_conv_impl", default="auto")


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


def on_cpu() -> bool:
    """Whether the default backend is XLA's CPU backend."""
    return jax.default_backend() == "cpu"


def resolve(impl: str | None = None) -> str:
    """'xla', 'cpu_fast' or 'tflite': `impl`, else the enclosing `conv_impl` block's, with 'auto' resolved."""
    impl = check_impl(_requested.get() if impl is None else impl)
    if impl == "auto":
        impl = check_impl(os.environ.get(ENV_VAR) or "auto", ENV_VAR)
    if impl == "auto":
        return "cpu_fast" if on_cpu() else "xla"
    return impl
