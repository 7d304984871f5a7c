"""How a generator runs at test time: inference mode, or train mode as the original test scripts do.

pix2pix's test.py calls model.eval() only with --eval, DeblurGAN's test.py never does and
DeblurGAN-v2's predict.py calls model.train(True): dropout stays on and batch norm normalises by
the test batch's own statistics. `apply_generator(..., train_mode=True)` does that in Flax: train=True,
dropout drawn from `key`, batch-norm statistics updates discarded (the stored ones never change).
Commands run G through jaxgan.bundle.apply_fn, which calls this.
"""

from __future__ import annotations

import jax

from jaxgan import ops


def dropout_key(call: int):
    """The dropout key of a train-mode generator's `call`-th application (predict counts its calls; an
    exported model is call 0, the first image predict would run)."""
    return jax.random.fold_in(jax.random.PRNGKey(0), call)


def size_multiple(module) -> int:
    """The side multiple a generator pads its input to by itself (its `size_multiple`; 1 when it has
    none): padding to it first gives the same output (jaxgan.nets.layers.pad_to_multiple)."""
    return int(getattr(module, "size_multiple", 1))


def exact_pad_multiple(module) -> int:
    """The multiple an image can be padded to before `module` without changing its output: what the
    module declares as its `exact_pad_multiple` (where something image-wide comes before its own padding,
    e.g. NAFNet's Wiener candidates), else its `size_multiple`."""
    return int(getattr(module, "exact_pad_multiple", size_multiple(module)))


def apply_generator(apply_fn, variables, x, train_mode: bool = False, key=None, conv_impl: str = "auto"):
    """G's output on x: apply_fn(variables, x, train=False), or in train mode (see module docstring);
    train mode needs a PRNG `key` for the dropout masks. `conv_impl`: how jaxgan.ops computes the
    convolutions (the run's train.conv_impl), read when this is traced."""
    with ops.conv_impl(conv_impl):
        return _apply(apply_fn, variables, x, train_mode, key)


def _apply(apply_fn, variables, x, train_mode, key):
    if not train_mode:
        return apply_fn(variables, x, train=False)
    if key is None:
        raise ValueError("apply_generator(train_mode=True) needs a PRNG key for the dropout masks")
    if "batch_stats" in variables:
        out, _ = apply_fn(variables, x, train=True, rngs={"dropout": key}, mutable=["batch_stats"])
        return out
    return apply_fn(variables, x, train=True, rngs={"dropout": key})
