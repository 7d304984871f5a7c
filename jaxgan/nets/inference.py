"""How a generator runs at test time: inference mode, or train mode as the original test scripts do.

pix2pix's test.py calls model.eval() only with --eval, DeblurGAN's test.py never does and
DeblurGAN-v2's predict.py calls model.train(True): dropout stays on and batch norm normalises by
the test batch's own statistics. `apply_generator(..., train_mode=True)` does that in Flax: train=True,
dropout drawn from `key`, batch-norm statistics updates discarded (the stored ones never change).
"""

from __future__ import annotations

import jax


def apply_generator(apply_fn, variables, x, train_mode: bool = False, key=None):
    """G's output on x: apply_fn(variables, x, train=False), or in train mode (see module docstring);
    train mode needs a PRNG `key` for the dropout masks."""
    if not train_mode:
        return apply_fn(variables, x, train=False)
    if key is None:
        raise ValueError("apply_generator(train_mode=True) needs a PRNG key for the dropout masks")
    if "batch_stats" in variables:
        out, _ = apply_fn(variables, x, train=True, rngs={"dropout": key}, mutable=["batch_stats"])
        return out
    return apply_fn(variables, x, train=True, rngs={"dropout": key})
