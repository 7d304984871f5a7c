"""Where a jaxgan training step spends its time: the step's parts timed one by one, JAX and PyTorch.

    python -m benchmarks.profile_parts [--setups pix2pix,deblurgan] [--image-size 256] [--steps 5]
        [--torch] [--out benchmarks/results]

Parts (each jitted on its own, batch 1, train mode, fixed random inputs):
  g_forward        G forward (BatchNorm statistics / dropout as in training)
  g_forward_backward  G forward + VJP to its params (cotangent = ones)
  d_forward_backward  D forward + gradient to its params, one batch of D inputs
  d_input_grad     D forward + gradient to its input (what G's adversarial term back-propagates)
  wgan_gp_update   gradient of the WGAN-GP penalty to D's params (double backward; deblurgan only)
  perceptual       VGG16 conv3_3 feature MSE, forward + gradient to the prediction (deblurgan, fpn)
  g_adam           optax Adam update of G's params (memory bound; 54M params for the U-Net)
The sum of the parts is not the step time (the step has two D passes, n_critic D updates, ...); the
parts show which kind of work is slow relative to PyTorch. Writes OUT/profile_parts.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import jax_setups


def median_time(fn, steps: int) -> float:
    fn()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def jax_parts(config, batch) -> dict:
    """name -> zero-argument callable running that part once (blocking)."""
    from jaxgan import losses
    from jaxgan.train import state as state_lib
    from jaxgan.train import steps as steps_lib

    g_mod, d_mod = state_lib.make_modules(config)
    st = state_lib.create_state(config, g_mod, d_mod, batch, jax.random.PRNGKey(0))
    x, y = jnp.asarray(batch["input"]), jnp.asarray(batch["target"])
    d_in = jnp.concatenate([x, y], -1) if config.discriminator.conditional else y
    rngs = {"dropout": jax.random.PRNGKey(1)}

    def g_apply(params, x):
        v = state_lib.model_variables(params, st.g.batch_stats)
        if st.g.batch_stats:
            return g_mod.apply(v, x, train=True, rngs=rngs, mutable=["batch_stats"])[0]
        return g_mod.apply(v, x, train=True, rngs=rngs)

    def d_apply(params, x):
        v = state_lib.model_variables(params, st.d.batch_stats)
        if st.d.batch_stats:
            return d_mod.apply(v, x, train=True, mutable=["batch_stats"])[0]
        return d_mod.apply(v, x, train=True)

    mean_logit = lambda out: sum(jnp.mean(l) for l in jax.tree.leaves(out))  # noqa: E731
    parts = {
        "g_forward": (jax.jit(g_apply), (st.g.params, x)),
        "g_forward_backward": (jax.jit(lambda p, x: jax.grad(lambda p: jnp.sum(g_apply(p, x)))(p)), (st.g.params, x)),
        "d_forward_backward": (jax.jit(jax.grad(lambda p, z: mean_logit(d_apply(p, z)))), (st.d.params, d_in)),
        "d_input_grad": (jax.jit(jax.grad(lambda z, p: mean_logit(d_apply(p, z)))), (d_in, st.d.params)),
    }
    if config.loss.gradient_penalty == "wgan_gp":
        def gp(p, real, fake):
            return losses.wgan_gp(lambda im: d_apply(p, im), real, fake, jax.random.PRNGKey(2))
        parts["wgan_gp_update"] = (jax.jit(jax.grad(gp)), (st.d.params, y, x))
    if config.loss.perceptual_weight > 0:
        vgg = jax.device_put(steps_lib.make_loss_nets(config)["vgg"])
        perc = jax.grad(lambda pred, t, v: losses.perceptual_loss(v, pred, t))
        parts["perceptual"] = (jax.jit(perc), (x, y, vgg))
    parts["g_adam"] = (jax.jit(lambda s: s.apply_gradients(grads=s.params)), (st.g,))
    return {name: (lambda f=f, a=a: jax.block_until_ready(f(*a))) for name, (f, a) in parts.items()}


def torch_parts(twin_module, config, batch) -> dict:
    import torch

    twin = jax_setups.torch_twin_for(twin_module, config)
    g, d = twin.generator.train(), twin.discriminator.train()
    t = {k: torch.from_numpy(np.ascontiguousarray(v.transpose(0, 3, 1, 2))) for k, v in batch.items()}
    x, y = t["input"], t["target"]
    d_in = torch.cat([x, y], 1) if config.discriminator.conditional else y
    mean_logit = lambda out: sum(o.mean() for o in twin_module.as_list(out))  # noqa: E731
    opt = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.5, 0.999))

    def g_fb():
        g.zero_grad(set_to_none=True)
        g(x).sum().backward()

    def d_fb():
        d.zero_grad(set_to_none=True)
        mean_logit(d(d_in)).backward()

    def d_ig():
        z = d_in.clone().requires_grad_(True)
        torch.autograd.grad(mean_logit(d(z)), z)

    def gp():
        d.zero_grad(set_to_none=True)
        twin_module.wgan_gp_penalty(d, y, x).backward()

    def perc():
        p = x.clone().requires_grad_(True)
        torch.autograd.grad(twin_module.perceptual(twin.extra_modules[0], p, y), p)

    def adam():
        for p in g.parameters():
            p.grad = p.detach()
        opt.step()

    def g_fwd():
        with torch.no_grad():
            g(x)

    parts = {"g_forward": g_fwd, "g_forward_backward": g_fb, "d_forward_backward": d_fb, "d_input_grad": d_ig}
    if config.loss.gradient_penalty == "wgan_gp":
        parts["wgan_gp_update"] = gp
    if config.loss.perceptual_weight > 0:
        parts["perceptual"] = perc
    parts["g_adam"] = adam
    return parts


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setups", default="pix2pix,deblurgan")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--width", type=int, default=0)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--torch", action="store_true")
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    twin = None
    if args.torch:
        import torch

        from benchmarks import torch_twin as twin

        torch.set_num_threads(len(os.sched_getaffinity(0)))
    rows = []
    for name in args.setups.split(","):
        config = jax_setups.setup_config(name, args.image_size, 1, args.width)
        batch = jax_setups.random_batch(1, args.image_size)
        jp = jax_parts(config, batch)
        tp = torch_parts(twin, config, batch) if twin is not None else {}
        for part, fn in jp.items():
            row = {"setup": name, "part": part, "jax_s": median_time(fn, args.steps)}
            if part in tp:
                row["torch_s"] = median_time(tp[part], args.steps)
                row["jax_over_torch"] = row["jax_s"] / row["torch_s"]
            print(json.dumps(row), flush=True)
            rows.append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "profile_parts.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["| setup | part | jaxgan ms | PyTorch ms | JAX/torch |", "|---|---|---|---|---|"]
    for r in rows:
        ts = f"{1e3 * r['torch_s']:.1f}" if "torch_s" in r else "-"
        ratio = f"{r['jax_over_torch']:.2f}" if "jax_over_torch" in r else "-"
        lines.append(f"| {r['setup']} | {r['part']} | {1e3 * r['jax_s']:.1f} | {ts} | {ratio} |")
    (out / "profile_parts.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
