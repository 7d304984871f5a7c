"""What an ablation without the adversarial term costs: a config's train step (as `jaxgan train`
builds it) with its adversarial weight and with 0, where the step neither runs nor updates D
(jaxgan.train.step_parts.StepConfig.trains_d); alternating in one process. Not a test.

    JAX_PLATFORMS=cpu python -m benchmarks.ablation_step [--config experiments/configs/seg_quick.py] [--steps 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks import harness


def timed_step(config, weight: float):
    """(run, batch shape): one blocking train step of `config` at adversarial weight `weight`."""
    import jax

    from jaxgan.data.prior import input_channels

    config = config.copy_and_resolve_references()
    config.loss.adversarial_weight = weight
    setup = harness.build_setup(config, with_loss_nets=True)
    rng = np.random.default_rng(0)
    b, s = config.data.batch_size, config.data.crop_size
    target = (rng.integers(0, 2, (b, s, s)).astype(np.int32) if config.task == "segment"
              else rng.uniform(-1, 1, (b, s, s, 3)).astype(np.float32))
    image = rng.uniform(-1, 1, (b, s, s, input_channels(config.data))).astype(np.float32)
    batch = setup.shard({"input": image, "target": target})
    holder = {"state": setup.state}

    def run():
        holder["state"], _ = setup.step(holder["state"], batch, setup.loss_nets)
        jax.block_until_ready(holder["state"])

    run()  # compile
    return run


def main(argv=None) -> dict:
    from jaxgan import config_io

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="experiments/configs/seg_quick.py")
    p.add_argument("--steps", type=int, default=4)
    args = p.parse_args(argv)
    config = config_io.load_config(args.config)
    weight = float(config.loss.adversarial_weight)
    runs = {"with D": timed_step(config, weight), "without (weight 0)": timed_step(config, 0.0)}
    times: dict = {name: [] for name in runs}
    for _ in range(args.steps):
        for name, run in runs.items():
            t = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t)
    median = {name: float(np.median(v)) for name, v in times.items()}
    print(f"{args.config}, batch {config.data.batch_size} at {config.data.crop_size}: adversarial weight {weight}: "
          f"{median['with D']:.3f} s a step; 0: {median['without (weight 0)']:.3f} s "
          f"({median['with D'] / median['without (weight 0)']:.2f}x)")
    return median


if __name__ == "__main__":
    main()
