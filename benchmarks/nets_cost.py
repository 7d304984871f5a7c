"""Parameter count and XLA FLOPs of a generator at given sizes (batch 1, eval mode).

Run: JAX_PLATFORMS=cpu python benchmarks/nets_cost.py fpn_mobilenet 256x256 1280x720
FLOPs come from jax.jit(apply).lower(variables, x).compile().cost_analysis()['flops'].
"""
import sys

import jax
import jax.numpy as jnp

from jaxgan.nets import count_params, make_generator


def flops(module, height: int, width: int) -> float:
    x = jnp.zeros((1, height, width, module.in_channels), jnp.float32)
    variables = jax.eval_shape(lambda: module.init(jax.random.key(0), x))
    compiled = jax.jit(lambda v, x: module.apply(v, x, train=False)).lower(variables, x).compile()
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list):  # older jax returned one dict per computation
        analysis = analysis[0]
    return float(analysis["flops"])


def main(name: str, sizes: list[str]) -> None:
    module = make_generator(name)
    print(f"{name}: {count_params(module, (1, 256, 256, module.in_channels)):,} trainable params")
    for size in sizes:
        width, height = (int(v) for v in size.split("x"))
        print(f"  {width}x{height}: {flops(module, height, width) / 1e9:.2f} GFLOPs")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fpn_mobilenet", sys.argv[2:] or ["256x256", "1280x720"])
