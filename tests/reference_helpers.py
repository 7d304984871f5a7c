"""Helpers of the reference-parity tests: torch <-> numpy layouts, random statistics, injected dropout,
and the comparison of a train step's updated parameters and Adam moments with torch's."""

from __future__ import annotations

import contextlib

import flax.linen as nn
import jax
import numpy as np
import optax
import torch

from jaxgan.weights.mapping import Table, convert, to_flax


def nchw(x_nhwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x_nhwc).transpose(0, 3, 1, 2)))


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().transpose(0, 2, 3, 1)


def randomize_norm_stats(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm affine parameters and running statistics (so eval mode is tested)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))


def state_file(module: torch.nn.Module, path, wrap: str = "", prefix: str = "") -> str:
    """Saves module.state_dict() as the originals do (optionally {wrap: ...} and key prefix)."""
    state = {prefix + k: v for k, v in module.state_dict().items()}
    torch.save({wrap: state} if wrap else state, path)
    return str(path)


@contextlib.contextmanager
def injected_dropout(masks: dict):
    """Every flax nn.Dropout at module path P (a '/'-joined string) outputs x * masks[P] / (1 - rate)."""
    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if isinstance(module, nn.Dropout) and context.method_name == "__call__":
            path = "/".join(module.scope.path)
            return args[0] * masks[path] / (1.0 - module.rate)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
        yield


def max_errors(a, b) -> tuple[float, float]:
    """(max absolute error, max relative error |a - b| / max(|b|, 1e-3))."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = np.abs(a - b)
    return float(diff.max()), float((diff / np.maximum(np.abs(b), 1e-3)).max())


def numpy_state(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items() if not k.endswith("tracked")}


def rel_error(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def adam_moments(opt_state):
    """(mu, nu) of the one Adam in `opt_state`, or of several over disjoint leaves (a frozen part's
    Adam beside the trained part's, optax.multi_transform) merged into one tree."""
    adam = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))
            if isinstance(s, optax.ScaleByAdamState)]
    assert adam
    masked = lambda x: isinstance(x, optax.MaskedNode)  # noqa: E731
    mu, nu = adam[0].mu, adam[0].nu
    for other in adam[1:]:
        mu = jax.tree.map(lambda a, b: b if masked(a) else a, mu, other.mu, is_leaf=masked)
        nu = jax.tree.map(lambda a, b: b if masked(a) else a, nu, other.nu, is_leaf=masked)
    assert not any(masked(x) for x in jax.tree.leaves(mu, is_leaf=masked))
    return mu, nu


def flax_of(table: Table, values: dict, shapes) -> dict:
    """Torch-keyed arrays (parameters or their Adam moments) in the flax layout of `table`."""
    flat = {}
    for path, (key, layout) in table.entries.items():
        if path.startswith("params/") and key in values:
            flat[path[len("params/"):]] = to_flax(values[key], layout)
    return flat


def flat_tree(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        p = f"{prefix}/{k}" if prefix else k
        out.update(flat_tree(v, p) if isinstance(v, dict) else {p: np.asarray(v)})
    return out


def adam_max_steps(updates: int, b1: float, b2: float = 0.999) -> float:
    """The most a parameter can move in `updates` Adam steps, in units of lr (eps = 0): step t moves it
    by lr |m_hat_t| / sqrt(v_hat_t), at most sqrt(sum_i w_i^2 / u_i) by Cauchy-Schwarz, with w_i and
    u_i the bias-corrected weights of g_i in m_hat_t and of g_i^2 in v_hat_t (1 at t = 1; above 1
    later when b1 weights recent gradients more than b2 does, e.g. 1.33 at t = 5 for b1 0.5)."""
    total = 0.0
    for t in range(1, updates + 1):
        i = np.arange(1, t + 1)
        w = (1 - b1) * b1 ** (t - i) / (1 - b1 ** t)
        u = (1 - b2) * b2 ** (t - i) / (1 - b2 ** t)
        total += float(np.sqrt(np.sum(w * w / u)))
    return total


def param_errors(what: str, ref, table: Table, new, opt, null=(), floor: float = 0.0, before=None,
                 lr: float = 0.0) -> dict:
    """Max relative errors of jaxgan's updated params and Adam moments (ModelState `new`) against
    the torch module `ref` and its torch.optim.Adam `opt`: {what_params, what_mu, what_nu}.

    `null`: flax paths of leaves whose gradient is zero in exact arithmetic (a conv bias before an
    instance norm, the critic's last bias under WGAN): both frameworks feed Adam rounding noise
    there, which it scales to steps of about lr with arbitrary signs. They are checked apart:
    what_null_mu = their largest |mu| on either side over the largest |mu| of the other leaves
    (the caller checks that those params moved by at most lr x `adam_max_steps`).

    `floor` > 0 (one update; needs `before`, the ModelState before it, and `lr`): entries whose
    gradient (torch's mu / (1 - b1)) is below floor x the largest of the tree are at the rounding
    level, where Adam's step lr * g / (|g| + eps) takes the sign of the noise; their params are
    compared as what_small_step = max |update| / lr on both sides (<= 1), the other entries as
    above; a leaf's moments are compared relative to max(its largest, floor x the tree's largest)."""
    names = dict(ref.named_parameters())
    torch_params = {k: v.detach().numpy() for k, v in names.items()}
    exp_avg = {k: opt.state[v]["exp_avg"].numpy() for k, v in names.items() if v in opt.state}
    exp_avg_sq = {k: opt.state[v]["exp_avg_sq"].numpy() for k, v in names.items() if v in opt.state}
    mu, nu = adam_moments(new.opt_state)
    trees = {}
    for label, values, tree in (("params", torch_params, new.params), ("mu", exp_avg, mu), ("nu", exp_avg_sq, nu)):
        expected, got = flax_of(table, values, None), flat_tree(jax.device_get(tree))
        assert sorted(expected) == sorted(got) and set(null) <= set(got)
        trees[label] = (got, expected)
    kept = [k for k in trees["params"][0] if k not in null]
    errors = {}
    for label in ("mu", "nu"):
        got, expected = trees[label]
        level = floor * max(np.abs(expected[k]).max() for k in kept)
        per_leaf = {k: np.abs(got[k] - expected[k]).max() / max(np.abs(expected[k]).max(), level, 1e-30) for k in kept}
        errors[f"{what}_{label}"] = max(per_leaf.values())
        tree_max = max(np.abs(expected[k]).max() for k in kept)
        errors[f"{what}_{label}_tree"] = max(np.abs(got[k] - expected[k]).max() for k in kept) / tree_max
    got, expected = trees["params"]
    if floor:
        mu_torch = trees["mu"][1]
        level = floor * max(np.abs(mu_torch[k]).max() for k in kept)
        old = flat_tree(jax.device_get(before.params))
        errors[f"{what}_params"], small_step = 0.0, 0.0
        for k in kept:
            settled = np.abs(mu_torch[k]) >= level
            scale = max(np.abs(expected[k]).max(), 1e-12)
            if settled.any():
                errors[f"{what}_params"] = max(errors[f"{what}_params"],
                                               float(np.abs(got[k] - expected[k])[settled].max() / scale))
            if (~settled).any():
                small_step = max(small_step, float(np.abs(got[k] - old[k])[~settled].max()),
                                 float(np.abs(expected[k] - old[k])[~settled].max()))
        errors[f"{what}_small_step"] = small_step / lr
    else:
        errors[f"{what}_params"] = max(rel_error(got[k], expected[k]) for k in kept)
    if null:
        got, expected = trees["mu"]
        scale = max(np.abs(expected[k]).max() for k in kept)
        errors[f"{what}_null_mu"] = max(max(np.abs(got[k]).max(), np.abs(expected[k]).max()) for k in null) / scale
    return errors


def with_variables(model, state_dict: dict, table: Table, what: str):
    """jaxgan ModelState `model` with params / batch_stats converted from a torch state dict."""
    variables = convert(state_dict, table, {"params": model.params, "batch_stats": model.batch_stats}, what, what)
    return model.replace(params=variables["params"], batch_stats=variables.get("batch_stats", model.batch_stats))
