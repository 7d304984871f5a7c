"""Time the kernel gradient of a 512->256 channel 4x4 stride-2 up-conv at 32x32, batch 1 (issue 8).

Compares jaxgan.ops.conv2d_transpose_cpu_fast (custom VJP) with plain lax.conv_transpose autodiff.
Run: JAX_PLATFORMS=cpu python benchmarks/conv_transpose_speed.py [repeats]
"""
import sys
import time

import jax
import jax.numpy as jnp

from jaxgan.ops import conv2d_transpose_cpu_fast as conv_transpose
from jaxgan.ops import conv2d_transpose_lax as conv_transpose_reference


def kernel_grad_fn(op):
    def loss(kernel, x, g):
        return jnp.sum(op(x, kernel, (2, 2), (1, 1), (0, 0)) * g)
    return jax.jit(jax.grad(loss))


def best_time_ms(fn, *args, repeats):
    fn(*args).block_until_ready()  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args).block_until_ready()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main(repeats: int = 5) -> None:
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (1, 32, 32, 512))
    kernel = 0.02 * jax.random.normal(keys[1], (4, 4, 512, 256))
    g = jax.random.normal(keys[2], (1, 64, 64, 256))
    ref = best_time_ms(kernel_grad_fn(conv_transpose_reference), kernel, x, g, repeats=repeats)
    fast = best_time_ms(kernel_grad_fn(conv_transpose), kernel, x, g, repeats=repeats)
    diff = jnp.abs(kernel_grad_fn(conv_transpose)(kernel, x, g) - kernel_grad_fn(conv_transpose_reference)(kernel, x, g))
    print(f"device {jax.devices()[0].device_kind}: kernel gradient, best of {repeats}: "
          f"lax.conv_transpose {ref:.1f} ms, custom VJP {fast:.1f} ms, ratio {ref / fast:.1f}x, "
          f"max abs diff {float(diff.max()):.2e} (largest entry {float(jnp.abs(kernel_grad_fn(conv_transpose)(kernel, x, g)).max()):.1f})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
