"""Conv kernel gradients: every GEMM form of `jaxgan.ops.kernel_grad` against XLA's own form, on the
zoo's stride-1 shapes, and the form the rules pick.

    JAX_PLATFORMS=cpu python -m benchmarks.kernel_grad_forms [--rounds 7] [--shapes fpn_final,...]

Baseline: XLA's kernel VJP of `lax.conv_general_dilated` ('xla'), compiled and timed in the same run.
Each form is checked equal to it first; the forms are timed interleaved, best of `--rounds`.
Prints ms per form, ratio to 'xla', and the rules' choice.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import measure
from jaxgan.ops import conv as conv_ops
from jaxgan.ops import kernel_grad as kg

# name: (batch, input side, Cin, Cout, kernel, padding); stride 1 (the rows and flat forms need it).
SHAPES = {
    "fpn_top_down_1": (1, 64, 128, 128, 3, 1),
    "fpn_head_1b": (1, 64, 64, 64, 3, 1),
    "fpn_smooth": (1, 64, 256, 64, 3, 1),
    "fpn_smooth2": (1, 128, 64, 32, 3, 1),
    "fpn_final": (1, 256, 32, 3, 3, 1),
    "resnet_block": (1, 66, 256, 256, 3, 0),
    "resnet_final": (1, 262, 64, 3, 7, 0),
    "patchgan_stride1": (2, 33, 256, 512, 4, 1),
    "patchgan_output": (2, 32, 512, 1, 4, 1),
}


def xla_kernel_grad(x, g, k, pads):
    kernel = jnp.zeros((k, k, x.shape[-1], g.shape[-1]), x.dtype)
    return jax.vjp(lambda w: conv_ops.conv2d_lax(x, w, 1, pads[0][0]), kernel)[1](g)[0]


FORMS = {
    "xla": xla_kernel_grad,
    "taps": lambda x, g, k, pads: kg.kernel_grad_taps(x, g, k, 1, pads),
    "rows": kg.kernel_grad_rows,
    "flat": kg.kernel_grad_flat,
}


def main() -> None:
    parser = measure.shape_parser(__doc__)
    args, names = measure.parse_shapes(parser, SHAPES)
    lines = [f"| shape | {' | '.join(f'{f} ms' for f in FORMS)} | best / xla | rules pick | picked / xla |",
             f"|---|{'---|' * len(FORMS)}---|---|---|"]
    print("\n".join(lines))
    for name in names:
        b, side, cin, cout, k, p = SHAPES[name]
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.standard_normal((b, side, side, cin), np.float32))
        out_side = side + 2 * p - k + 1
        g = jnp.asarray(rng.standard_normal((b, out_side, out_side, cout), np.float32))
        pads = ((p, p), (p, p))
        fns = {f: jax.jit(lambda x, g, form=form: form(x, g, k, pads)) for f, form in FORMS.items()}
        reference = np.asarray(fns["xla"](x, g))
        scale = float(np.abs(reference).max())
        for f, fn in fns.items():
            np.testing.assert_allclose(np.asarray(fn(x, g)), reference, rtol=1e-4, atol=1e-4 * scale, err_msg=f)
        best = measure.interleaved_best_ms({f: (lambda fn=fn: jax.block_until_ready(fn(x, g))) for f, fn in fns.items()},
                                           args.rounds, warmup=0)  # compiled by the check above
        pick = kg.kernel_grad_form(k, 1, cin, cout, b * out_side * out_side)
        fastest = min(best, key=best.get)
        cells = " | ".join(f"{best[f]:.1f}" for f in FORMS)
        measure.add_row(lines, f"| {name} | {cells} | {fastest} {best[fastest] / best['xla']:.2f} | {pick} | "
                               f"{best[pick] / best['xla']:.2f} |")
    measure.write_table("kernel_grad_forms", "kernel_grad_forms", lines, out=args.out)


if __name__ == "__main__":
    main()
