"""The original repositories' generators (reference/, PyTorch) and jaxgan's, given the same weights
(converted by jaxgan.weights), give the same outputs: eval mode, and train mode with the same
dropout masks injected on both sides."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from jaxgan import nets  # noqa: E402
from jaxgan.weights import convert_generator, load_state_dict  # noqa: E402
from reference import deblurgan, deblurganv2, pix2pix  # noqa: E402
from reference.common import dropouts  # noqa: E402
from reference_helpers import (injected_dropout, max_errors, nchw, nhwc, randomize_norm_stats,  # noqa: E402
                               state_file)

TOL = 1e-4


def _jax_apply(fmt, path, x, train=False, masks=None):
    name, options, variables = convert_generator(fmt, load_state_dict(path), path)
    module = nets.make_generator(name, **options)
    if not train:
        return np.asarray(jax.jit(lambda v, x: module.apply(v, x, train=False))(variables, x)), module, variables

    def train_apply(v, x, masks):
        with injected_dropout(masks):
            return module.apply(v, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)})[0]

    return np.asarray(jax.jit(train_apply)(variables, x, masks)), module, variables


def _image(side, seed=0, batch=1):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, side, side, 3)).astype(np.float32)


def test_pix2pix_unet_eval_and_train_with_dropout_masks(tmp_path):
    torch.manual_seed(0)
    ref = pix2pix.init_weights(pix2pix.UnetGenerator(3, 3, num_downs=6, ngf=4, norm="batch", use_dropout=True))
    randomize_norm_stats(ref)
    path = state_file(ref, tmp_path / "latest_net_G.pth")
    x = _image(64)
    out, module, _ = _jax_apply("pix2pix", path, x)
    with torch.no_grad():
        expected = nhwc(ref.eval()(nchw(x)))
    abs_err, rel_err = max_errors(out, expected)
    assert abs_err < TOL, (abs_err, rel_err)
    assert module.depth == 6 and module.base_width == 4

    # train mode: batch statistics of this batch, the same dropout masks on both sides
    x2 = _image(64, seed=1, batch=2)
    rng = np.random.default_rng(2)
    masks, torch_masks = {}, {}
    for name, drop in dropouts(ref):
        level = name.count("model.3") + 1
        masks[f"dropout_{level}"] = None
        torch_masks[level] = drop
    ref.train()
    shapes = {}

    def capture(m, inp, outp, level):
        shapes[level] = tuple(inp[0].shape)

    hooks = [d.register_forward_hook(lambda m, i, o, lv=lv: capture(m, i, o, lv)) for lv, d in torch_masks.items()]
    with torch.no_grad():
        ref(nchw(x2))
    for h in hooks:
        h.remove()
    for level, drop in torch_masks.items():
        mask = (rng.uniform(size=shapes[level]) < 0.5).astype(np.float32)
        drop.mask = torch.from_numpy(mask)
        masks[f"dropout_{level}"] = jnp.asarray(mask.transpose(0, 2, 3, 1))
    with torch.no_grad():
        expected = nhwc(ref(nchw(x2)))
    out, _, _ = _jax_apply("pix2pix", path, x2, train=True, masks=masks)
    abs_err, rel_err = max_errors(out, expected)
    assert abs_err < TOL, (abs_err, rel_err)


def test_deblurgan_resnet_eval_and_train_with_dropout_masks(tmp_path):
    torch.manual_seed(1)
    ref = deblurgan.ResnetGenerator(3, 3, ngf=4, n_blocks=2, use_dropout=True, learn_residual=True)
    path = state_file(ref, tmp_path / "latest_net_G.pth")
    x = _image(16)
    out, module, _ = _jax_apply("deblurgan", path, x)
    with torch.no_grad():
        expected = nhwc(ref.eval()(nchw(x)))
    assert module.dropout and module.num_blocks == 2
    abs_err, _ = max_errors(out, expected)
    assert abs_err < TOL

    rng = np.random.default_rng(3)
    masks = {}
    for name, drop in dropouts(ref):
        block = int(name.split(".")[1]) - 10
        mask = (rng.uniform(size=(1, 16, 4, 4)) < 0.5).astype(np.float32)
        drop.mask = torch.from_numpy(mask)
        masks[f"block_{block}/Dropout_0"] = jnp.asarray(mask.transpose(0, 2, 3, 1))
    with torch.no_grad():
        expected = nhwc(ref.train()(nchw(x)))
    out, _, _ = _jax_apply("deblurgan", path, x, train=True, masks=masks)
    abs_err, _ = max_errors(out, expected)
    assert abs_err < TOL


# FPN-InceptionResNetV2 is checked by its import round trip (tests/test_import_weights.py), which
# compares the restored jaxgan generator with the PyTorch module (one compile of the big backbone).


def test_deblurganv2_fpn_mobilenet_eval(tmp_path):
    torch.manual_seed(2)
    ref = deblurganv2.FPNMobileNet(num_filters=8, num_filters_fpn=16)
    randomize_norm_stats(ref)
    path = state_file(ref, tmp_path / "fpn_mobilenet.h5", wrap="model", prefix="module.")
    x = _image(64)
    out, module, _ = _jax_apply("deblurganv2_fpn_mobilenet", path, x)
    with torch.no_grad():
        expected = nhwc(deblurganv2.per_image_norm_eval(ref)(nchw(x)))
    assert module.base_width == 8
    abs_err, _ = max_errors(out, expected)
    assert abs_err < TOL

