"""Convolutions, transposed convolutions and pools with per-backend fast paths (no flax, no config).

`conv2d`, `conv2d_transpose` (PyTorch semantics, NHWC) and `max_pool_2x2` pick their implementation
at trace time through `dispatch.resolve`: 'xla' (plain lax), 'cpu_fast' (the XLA-CPU rewrites),
'tflite' (the forms TFLite's converter maps correctly) or 'auto' (env JAXGAN_CONV_IMPL, else cpu_fast
on CPU and xla on GPU / TPU). Every implementation gives plain lax's values and first and second
derivatives (tests/test_ops.py).
"""

from jaxgan.ops.conv import conv2d, conv2d_cpu_fast, conv2d_lax
from jaxgan.ops.conv_transpose import (conv2d_transpose, conv2d_transpose_cpu_fast, conv2d_transpose_even_pads,
                                       conv2d_transpose_lax)
from jaxgan.ops.dispatch import ENV_VAR, IMPLS, PLATFORMS, check_impl, conv_impl, lowering_for, on_cpu, resolve
from jaxgan.ops.pool import max_pool_2x2, max_pool_2x2_lax, max_pool_2x2_reshape

__all__ = [
    "ENV_VAR", "IMPLS", "check_impl", "conv2d", "conv2d_cpu_fast", "conv2d_lax", "conv2d_transpose",
    "conv2d_transpose_cpu_fast", "conv2d_transpose_even_pads", "conv2d_transpose_lax", "conv_impl", "lowering_for",
    "max_pool_2x2", "max_pool_2x2_lax", "max_pool_2x2_reshape", "on_cpu", "PLATFORMS", "resolve",
]
