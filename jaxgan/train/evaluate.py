"""Evaluation of a generator over the eval split.

Deblur: PSNR and SSIM on [0, 1] images and LPIPS (VGG16, on [-1, 1]) of G's output vs the sharp
target, and the same for the blurred input (`input_psnr`, ...) as the do-nothing baseline and, with
an input prior (config.data.prior), for the prior image (`prior_psnr`, ...); each a mean over the
valid examples. Segment: a confusion matrix accumulated over all valid examples, then
`iou` (per class), `mean_iou`, `dice` (per class), `mean_dice`, `pixel_accuracy`. Predicted labels:
logit > 0 for a 1-channel (sigmoid) G, argmax for a C-channel one. The EMA params are used when
the state keeps them. With config.eval.train_mode_inference G runs as in training (dropout on,
batch norm on each eval batch's statistics; jaxgan.nets.inference), dropout keys
fold_in(PRNGKey(seed), batch index).

Every process evaluates its own rows of the split (the eval iterator splits them) on its first
local device; the sums are then added over processes, so every process returns the numbers of the
whole split (only process 0 writes them in the loop).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan import metrics
from jaxgan.nets.inference import apply_generator
from jaxgan.nets.outputs import logits_to_labels
from jaxgan.train import state as state_lib
from jaxgan.train.parallel import to_host
from jaxgan.train.restore import restore_generator


def _make_eval_iterator(config, split):
    from jaxgan import data  # deferred: jaxgan.data loads TensorFlow, wanted only when data is read

    return data.make_eval_iterator(config, split=split)


def _to_unit(x):
    return (jnp.clip(x.astype(jnp.float32), -1.0, 1.0) + 1.0) / 2.0


@functools.partial(jax.jit, static_argnames=("apply_fn", "train_mode"))
def _deblur_batch(apply_fn, variables, x, target, key, train_mode=False):
    out = apply_generator(apply_fn, variables, x, train_mode, key).astype(jnp.float32)
    out, t01 = jnp.clip(out, -1.0, 1.0), _to_unit(target)
    scores = {"psnr": metrics.psnr(_to_unit(out), t01), "ssim": metrics.ssim(_to_unit(out), t01)}
    for name, image in baselines(x).items():
        scores.update({f"{name}_psnr": metrics.psnr(_to_unit(image), t01),
                       f"{name}_ssim": metrics.ssim(_to_unit(image), t01)})
    return out, scores


def baselines(x) -> dict:
    """The images G's output is compared with, from its input: `input` (the blurred image, channels
    0:3) and, with an input prior (config.data.prior), `prior` (channels 3:6)."""
    named = {"input": x[..., :3]}
    if x.shape[-1] >= 6:
        named["prior"] = x[..., 3:6]
    return named


@functools.partial(jax.jit, static_argnames=("apply_fn", "num_classes", "train_mode"))
def _segment_batch(apply_fn, variables, x, labels, valid, key, num_classes, train_mode=False):
    logits = apply_generator(apply_fn, variables, x, train_mode, key).astype(jnp.float32)
    pred = logits_to_labels(logits)
    return pred, metrics.confusion_matrix(pred, labels, num_classes, valid)


def run_evaluation(config: ml_collections.ConfigDict, g_module, g_variables, split=None,
                   num_samples: int = 0, lpips: bool | None = None) -> tuple[dict, dict]:
    """(metrics, samples): samples holds the first `num_samples` valid rows as numpy arrays
    `input`, `output` (image in [-1, 1] or int labels) and `target`. `lpips` (deblurring): also
    LPIPS; None = config.train.eval_lpips."""
    device = jax.local_devices()[0]
    variables = jax.device_put(jax.tree.map(np.asarray, g_variables), device)
    apply_fn = g_module.apply
    want_lpips = bool(config.train.eval_lpips) if lpips is None else bool(lpips)
    lpips = None
    if config.task == "deblur" and want_lpips:
        lpips = metrics.LPIPS("vgg16")
    num_classes = max(int(config.data.num_classes), 2)
    sums: dict = {}
    count = 0
    confusion = np.zeros((num_classes, num_classes), np.int64)
    samples: dict = {"input": [], "output": [], "target": []}
    train_mode = bool(config.eval.train_mode_inference)  # G as in training (pix2pix / DeblurGAN test.py)
    for index, batch in enumerate(_make_eval_iterator(config, split)):
        key = jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), index)  # dropout masks, train mode
        valid = np.asarray(batch.get("valid", np.ones(len(batch["input"]), bool)), bool)
        x = jax.device_put(np.asarray(batch["input"], np.float32), device)
        target = np.asarray(batch["target"])
        if config.task == "deblur":
            out, scores = _deblur_batch(apply_fn, variables, x, jax.device_put(target, device), key, train_mode)
            if lpips is not None:
                named = {"": out, **{f"{name}_": image for name, image in baselines(x).items()}}
                distances = lpips.to_reference(tuple(named.values()), jax.device_put(target, device))
                scores = dict(scores, **{f"{name}lpips": d for name, d in zip(named, distances)})
            for name, per_image in jax.device_get(scores).items():
                sums[name] = sums.get(name, 0.0) + float(np.sum(np.asarray(per_image, np.float64)[valid]))
        else:
            out, batch_confusion = _segment_batch(apply_fn, variables, x, jax.device_put(target, device),
                                                  jax.device_put(valid, device), key, num_classes, train_mode)
            confusion += np.asarray(batch_confusion, np.int64)
        count += int(valid.sum())
        have = sum(len(a) for a in samples["input"])
        if have < num_samples:
            take = valid.nonzero()[0][: num_samples - have]
            samples["input"].append(np.asarray(batch["input"])[take])  # (with the prior's channels)
            samples["output"].append(np.asarray(out)[take])
            samples["target"].append(target[take])
    if jax.process_count() > 1:  # each process evaluated its own rows: add up the sums
        sums, count, confusion = _sum_over_processes(sums, count, confusion)
    if count == 0:
        raise ValueError(f"evaluation split {split or config.data.eval_split!r} yielded no valid examples")
    if config.task == "deblur":
        results = {name: total / count for name, total in sums.items()}
    else:
        results = metrics.segmentation_scores(confusion)
    results["num_examples"] = count
    samples = {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in samples.items()}
    return results, samples


def _sum_over_processes(sums: dict, count: int, confusion: np.ndarray):
    from jax.experimental import multihost_utils

    names = sorted(sums)
    floats = np.asarray([sums[n] for n in names], np.float32)
    ints = np.concatenate([[count], confusion.ravel()]).astype(np.int32)
    floats, ints = multihost_utils.process_allgather((floats, ints))
    floats, ints = np.asarray(floats).sum(0), np.asarray(ints).astype(np.int64).sum(0)
    return dict(zip(names, floats.tolist())), int(ints[0]), ints[1:].reshape(confusion.shape)


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


