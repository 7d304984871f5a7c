"""The heaviest convolutions of the published setups, one by one: forward, input gradient and kernel
gradient of `jaxgan.ops.conv2d` (the forms the rules pick on this backend) and of plain `lax`,
against PyTorch's `conv2d` / `convolution_backward` on the same shapes (NCHW, as the twins run).

    JAX_PLATFORMS=cpu python -m benchmarks.conv_vs_torch [--rounds 7] [--shapes resnet_block,...]

Baseline: PyTorch, timed in the same run (best of `--rounds`, each side after one warm-up call).
jaxgan's values are checked against plain lax first. Prints ms per pass and jaxgan / PyTorch for
the three passes together, and which kernel-gradient form the rules picked.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from benchmarks import measure
from jaxgan import ops
from jaxgan.ops import kernel_grad as kg

# name: (batch, input side, Cin, Cout, kernel, stride, padding), as each layer sees it at 256x256, batch 1.
SHAPES = {
    "resnet_block": (1, 66, 256, 256, 3, 1, 0),  # ResNet-9's block conv (reflect-padded input)
    "resnet_down_1": (1, 128, 128, 256, 3, 2, 1),
    "patchgan_2": (1, 128, 64, 128, 4, 2, 1),
    "patchgan_3": (1, 64, 128, 256, 4, 2, 1),
    "patchgan_stride1": (1, 32, 256, 512, 4, 1, 1),
    "fpn_top_down": (1, 64, 128, 128, 3, 1, 1),
    "vgg_conv1_2": (1, 256, 64, 64, 3, 1, 1),  # VGG16 (the perceptual loss: forward and input gradient)
    "vgg_conv2_2": (1, 128, 128, 128, 3, 1, 1),
    "vgg_conv3_2": (1, 64, 256, 256, 3, 1, 1),
}
NHWC = ("NHWC", "HWIO", "NHWC")


def jax_passes(x, w, g, s, p):
    """{pass: jitted fn of (x, w, g)} for jaxgan's ops and plain lax."""
    def ours(x, w):
        return ops.conv2d(x, w, s, p)

    def plain(x, w):
        return lax.conv_general_dilated(x, w, (s, s), ((p, p), (p, p)), dimension_numbers=NHWC)

    fns = {}
    for name, conv in (("jaxgan", ours), ("lax", plain)):
        fns[f"{name} fwd"] = jax.jit(lambda x, w, g, conv=conv: conv(x, w))
        fns[f"{name} igrad"] = jax.jit(lambda x, w, g, conv=conv: jax.vjp(lambda x: conv(x, w), x)[1](g)[0])
        fns[f"{name} wgrad"] = jax.jit(lambda x, w, g, conv=conv: jax.vjp(lambda w: conv(x, w), w)[1](g)[0])
    return fns


def main() -> None:
    import torch

    parser = measure.shape_parser(__doc__)
    parser.add_argument("--torch-threads", type=int, default=0, help="0 = as many as JAX's CPU cores")
    args, names = measure.parse_shapes(parser, SHAPES)
    torch.set_num_threads(args.torch_threads or measure.cores())
    passes = ("fwd", "igrad", "wgrad")
    lines = ["| shape | " + " | ".join(f"{who} {p} ms" for who in ("jaxgan", "lax", "torch") for p in passes)
             + " | jaxgan / torch | lax / torch | kernel-grad form |", "|---|" + "---|" * 11]
    print("\n".join(lines))
    for name in names:
        b, side, cin, cout, k, s, p = SHAPES[name]
        ho = (side + 2 * p - k) // s + 1
        rng = np.random.default_rng(0)
        x = rng.standard_normal((b, side, side, cin), np.float32)
        w = rng.standard_normal((k, k, cin, cout), np.float32)
        g = rng.standard_normal((b, ho, ho, cout), np.float32)
        args_jax = tuple(jnp.asarray(a) for a in (x, w, g))
        fns = jax_passes(*args_jax, s, p)
        for pas in passes:
            ours, ref = np.asarray(fns[f"jaxgan {pas}"](*args_jax)), np.asarray(fns[f"lax {pas}"](*args_jax))
            scale = float(np.abs(ref).max())
            np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * scale, err_msg=f"{name} {pas}")
        ms = {key: measure.best_ms(lambda f=f: jax.block_until_ready(f(*args_jax)), args.rounds) for key, f in fns.items()}
        tx, tg = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(g.transpose(0, 3, 1, 2).copy())
        tw = torch.from_numpy(w.transpose(3, 2, 0, 1).copy())

        def backward(mask, tx=tx, tw=tw, tg=tg, s=s, p=p):
            return torch.ops.aten.convolution_backward(tg, tx, tw, None, [s, s], [p, p], [1, 1], False, [0, 0], 1,
                                                       mask)
        with torch.no_grad():
            ms["torch fwd"] = measure.best_ms(lambda: torch.nn.functional.conv2d(tx, tw, None, s, p), args.rounds)
        ms["torch igrad"] = measure.best_ms(lambda: backward([True, False, False]), args.rounds)
        ms["torch wgrad"] = measure.best_ms(lambda: backward([False, True, False]), args.rounds)
        total = {who: sum(ms[f"{who} {pas}"] for pas in passes) for who in ("jaxgan", "lax", "torch")}
        form = kg.kernel_grad_form(k, s, cin, cout, b * ho * ho)
        cells = " | ".join(f"{ms[f'{who} {pas}']:.1f}" for who in ("jaxgan", "lax", "torch") for pas in passes)
        measure.add_row(lines, f"| {name} | {cells} | {total['jaxgan'] / total['torch']:.2f} "
                               f"| {total['lax'] / total['torch']:.2f} | {form} |")
    measure.write_table("conv_vs_torch", "conv_vs_torch", lines, out=args.out)


if __name__ == "__main__":
    main()
