"""Parameter count and XLA FLOPs of a generator at given sizes (batch 1, eval mode).

Run: JAX_PLATFORMS=cpu python -m benchmarks.nets_cost fpn_mobilenet 256x256 1280x720
(or python benchmarks/nets_cost.py ...). FLOPs: XLA's cost analysis of the compiled jit(apply).
"""
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the repository root on the path, for `benchmarks`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from benchmarks import measure  # noqa: E402
from jaxgan.nets import count_params, make_generator  # noqa: E402


def flops(module, height: int, width: int) -> float:
    x = jnp.zeros((1, height, width, module.in_channels), jnp.float32)
    variables = jax.eval_shape(lambda: module.init(jax.random.key(0), x))
    return measure.cost_flops(jax.jit(lambda v, x: module.apply(v, x, train=False)).lower(variables, x).compile())


def main(name: str, sizes: list[str]) -> None:
    module = make_generator(name)
    print(f"{name}: {count_params(module, (1, 256, 256, module.in_channels)):,} trainable params")
    for size in sizes:
        width, height = (int(v) for v in size.split("x"))
        print(f"  {width}x{height}: {flops(module, height, width) / 1e9:.2f} GFLOPs")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fpn_mobilenet", sys.argv[2:] or ["256x256", "1280x720"])
