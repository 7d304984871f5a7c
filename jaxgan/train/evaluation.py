"""Evaluation of a generator over the eval split.

The task's scores (jaxgan.task `new_scores`). Deblur: PSNR and SSIM on [0, 1] images and LPIPS
(VGG16, on [-1, 1]) of G's output vs the sharp target, and the same for the blurred input
(`input_psnr`, ...) as the do-nothing baseline and, with an input prior (config.data.prior), for the
prior image (`prior_psnr`, ...); each a mean over the valid examples. Segment: a confusion matrix
accumulated over all valid examples, then `iou` (per class), `mean_iou`, `dice` (per class),
`mean_dice`, `pixel_accuracy`. Predicted labels:
logit > 0 for a 1-channel (sigmoid) G, argmax for a C-channel one. The EMA params are used when
the state keeps them. With config.eval.train_mode_inference G runs as in training (dropout on,
batch norm on each eval batch's statistics; jaxgan.nets.inference), dropout keys
fold_in(PRNGKey(seed), batch index).

Every process evaluates its own rows of the split (the eval iterator splits them) on its first
local device; the sums are then added over processes, so every process returns the numbers of the
whole split (only process 0 writes them in the loop).

With config.eval.buckets and whole images (data.eval_size 0, one image per batch) each image is
padded to one of jaxgan.infer.BUCKET_SIDES' shapes (as `jaxgan predict --buckets`) and the output
cropped back to its size before it is scored, so a split of many sizes compiles a few programs
instead of one per size; whole-image statistics (instance norm, batch norm in train mode) then
see the padding too, hence off by default.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan import infer
from jaxgan.nets.inference import apply_generator, size_multiple
from jaxgan.task import get_task
from jaxgan.train import state as state_lib
from jaxgan.train.parallel import to_host
from jaxgan.train.restore import restore_generator


def _make_eval_iterator(config, split):
    from jaxgan import data  # deferred: jaxgan.data loads TensorFlow, wanted only when data is read

    return data.make_eval_iterator(config, split=split)


@functools.partial(jax.jit, static_argnames=("apply_fn", "train_mode", "conv_impl"))
def _generate(apply_fn, variables, x, key, train_mode=False, conv_impl="auto"):
    return apply_generator(apply_fn, variables, x, train_mode, key, conv_impl).astype(jnp.float32)


def run_evaluation(config: ml_collections.ConfigDict, g_module, g_variables, split=None,
                   num_samples: int = 0, lpips: bool | None = None) -> tuple[dict, dict]:
    """(metrics, samples): samples holds the first `num_samples` valid rows (of the first row's size)
    as numpy arrays `input`, `output` (image in [-1, 1] or int labels) and `target`. `lpips` (deblurring): also
    LPIPS; None = config.train.eval_lpips."""
    device = jax.local_devices()[0]
    variables = jax.device_put(jax.tree.map(np.asarray, g_variables), device)
    apply_fn = g_module.apply
    want_lpips = bool(config.train.eval_lpips) if lpips is None else bool(lpips)
    scores = get_task(config.task).new_scores(config, want_lpips)
    count = 0
    samples: dict = {"input": [], "output": [], "target": []}
    train_mode = bool(config.eval.train_mode_inference)  # G as in training (pix2pix / DeblurGAN test.py)
    conv_impl = config.train.get("conv_impl", "auto")
    bucketed = bool(config.eval.get("buckets", False)) and int(config.data.eval_size) == 0
    multiple = size_multiple(g_module)
    views = int(config.eval.get("flip_views", 1))  # test-time flips (infer.flip_ensemble)
    for index, batch in enumerate(_make_eval_iterator(config, split)):
        key = jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), index)  # dropout masks, train mode
        valid = np.asarray(batch.get("valid", np.ones(len(batch["input"]), bool)), bool)
        x = jax.device_put(np.asarray(batch["input"], np.float32), device)
        target = np.asarray(batch["target"])
        run = functools.partial(_generate, apply_fn, variables, key=key, train_mode=train_mode, conv_impl=conv_impl)
        if bucketed and len(x) == 1:  # one whole image: padded to its bucket, the output cropped back
            whole = functools.partial(infer.apply_tiled, run, multiple=multiple, buckets=infer.BUCKET_SIDES)
            g_out = jnp.asarray(infer.flip_ensemble(whole, np.asarray(batch["input"][0], np.float32), views))[None]
        else:
            g_out = infer.flip_ensemble(run, x, views)
        out = scores.add(g_out, x, jax.device_put(target, device), valid)
        count += int(valid.sum())
        have = sum(len(a) for a in samples["input"])
        same_size = not samples["input"] or samples["input"][0].shape[1:3] == batch["input"].shape[1:3]
        if have < num_samples and same_size:  # (whole images of several sizes: those of the first one's)
            take = valid.nonzero()[0][: num_samples - have]
            samples["input"].append(np.asarray(batch["input"])[take])  # (with the prior's channels)
            samples["output"].append(np.asarray(out)[take])
            samples["target"].append(target[take])
    totals = scores.totals()
    if jax.process_count() > 1:  # each process evaluated its own rows: add up the sums
        totals, count = _sum_over_processes(totals, count)
    if count == 0:
        raise ValueError(f"evaluation split {split or config.data.eval_split!r} yielded no valid examples")
    results = scores.results(totals, count)
    results["num_examples"] = count
    samples = {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in samples.items()}
    return results, samples


def _sum_over_processes(totals: dict, count: int) -> tuple[dict, int]:
    """Every process's `totals` (float sums or integer counts, by name) and `count`, added up."""
    from jax.experimental import multihost_utils

    sent = {name: np.asarray(a, np.int32 if np.issubdtype(np.asarray(a).dtype, np.integer) else np.float32)
            for name, a in totals.items()}
    gathered, counts = multihost_utils.process_allgather((sent, np.int32(count)))
    summed = {name: np.asarray(a).astype(np.int64 if a.dtype == np.int32 else np.float64).sum(0)
              for name, a in gathered.items()}
    return summed, int(np.asarray(counts).sum())


def evaluate(config: ml_collections.ConfigDict | None = None, workdir: str | None = None,
             split: str | None = None, state=None, lpips: bool | None = None) -> dict:
    """Metrics of G on `split` (default config.data.eval_split); deblurring also LPIPS when `lpips`
    (None = config.train.eval_lpips).

    Either `state` (a GANState; `config` required) or `workdir` (its latest checkpoint; `config`
    defaults to the one saved there, and when given, its data / train sections choose the eval
    data while the model comes from the checkpoint)."""
    if state is None:
        if workdir is None:
            raise ValueError("evaluate needs a workdir with a checkpoint or a state")
        saved_config, g_module, g_variables = restore_generator(workdir)
        config = config or saved_config
    else:
        if config is None:
            raise ValueError("evaluate(state=...) needs the run's config")
        g_module, _ = state_lib.make_modules(config)
        g_variables = to_host(state.generator_variables())
    results, _ = run_evaluation(config, g_module, g_variables, split, lpips=lpips)
    return results


