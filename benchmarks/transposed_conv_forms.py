"""Strided transposed convs (4x4, stride 2, padding 1), forward: by output phases against XLA's
lhs-dilated form, for the zoo's output-channel counts, and the form `use_phases` picks.

    JAX_PLATFORMS=cpu python -m benchmarks.transposed_conv_forms [--rounds 9] [--torch]

Baseline: `conv2d_transpose_lax` (lax.conv_transpose), compiled and timed in the same run; with
--torch also PyTorch's conv_transpose2d (NCHW, as the twins run) interleaved. Each form is checked
equal to the baseline first. Prints ms per form, ratio to lax, and the rule's choice.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import measure
from jaxgan.ops import conv_transpose as ct

# name: (batch, input side, Cin, Cout); the input gradient of a stride-2 conv is such a transposed conv.
SHAPES = {
    "d_input_grad_rgb": (2, 128, 64, 3),  # a discriminator's first conv, back to the RGB image
    "d_input_grad_pair": (2, 128, 64, 6),  # pix2pix's conditional discriminator (input + image)
    "unet_outermost": (1, 128, 128, 3),  # the U-Net's RGB output up-conv
    "eight_outputs": (2, 128, 64, 8),
    "sixteen_outputs": (2, 128, 64, 16),
    "resnet_up_2": (1, 128, 128, 64),  # the ResNet generator's second up-conv
    "unet_up_inner": (1, 64, 256, 128),
}
STRIDES, PADDING, OUTPUT_PADDING = (2, 2), (1, 1), (0, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--torch", action="store_true", help="also time PyTorch's conv_transpose2d")
    parser.add_argument("--out", default="", help="results folder (default benchmarks/results/latest)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    torch = None
    if args.torch:
        import torch

        torch.set_num_threads(measure.cores())  # as benchmarks.train_step runs the twins
    forms = {"lax": ct.conv2d_transpose_lax, "phases": ct.conv_transpose_phases}
    head = " | ".join(f"{f} ms" for f in forms) + (" | torch ms" if torch else "")
    lines = [f"| shape | {head} | phases / lax | rule picks | picked / lax |",
             f"|---|{'---|' * (len(forms) + bool(torch))}---|---|---|"]
    print("\n".join(lines))
    for name, (b, side, cin, cout) in SHAPES.items():
        rng = np.random.default_rng(0)
        x = jnp.asarray(rng.standard_normal((b, side, side, cin), np.float32))
        kernel = jnp.asarray(rng.standard_normal((4, 4, cin, cout), np.float32) * 0.05)
        fns = {f: jax.jit(lambda x, k, form=form: form(x, k, STRIDES, PADDING, OUTPUT_PADDING)) for f, form in forms.items()}
        reference = np.asarray(fns["lax"](x, kernel))
        np.testing.assert_allclose(np.asarray(fns["phases"](x, kernel)), reference, rtol=1e-4,
                                   atol=1e-4 * float(np.abs(reference).max()))
        runs = {f: (lambda fn=fn: jax.block_until_ready(fn(x, kernel))) for f, fn in fns.items()}
        if torch:
            tx = torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))
            tw = torch.from_numpy(np.ascontiguousarray(np.asarray(kernel)[::-1, ::-1].transpose(2, 3, 0, 1)))

            def torch_run():
                with torch.no_grad():
                    torch.nn.functional.conv_transpose2d(tx, tw, stride=2, padding=1)
            runs["torch"] = torch_run
        best = measure.interleaved_best_ms(runs, args.rounds)
        pick = "phases" if ct.use_phases(kernel.shape, STRIDES) else "lax"
        cells = " | ".join(f"{best[f]:.1f}" for f in runs)
        measure.add_row(lines, f"| {name} | {cells} | {best['phases'] / best['lax']:.2f} | {pick} | {best[pick] / best['lax']:.2f} |")
    measure.write_table("transposed_conv_forms", "transposed_conv_forms", lines, out=args.out)


if __name__ == "__main__":
    main()
