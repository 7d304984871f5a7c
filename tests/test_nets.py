"""jaxgan.nets: shapes, dtypes, exact parameter counts, padding, skips, residuals, receptive field,
input validation, factories. Tiny widths; shapes via jax.eval_shape, values under jax.jit."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.nets import layers
from jaxgan.nets import (DISCRIMINATORS, GENERATORS, FCDiscriminator, FPNMobileNet, Norm, PatchGAN, ResidualBlock,
                         ResNetGenerator, UNet, count_params, make_discriminator, make_generator)

KEY = jax.random.key(0)
TINY_GENERATORS = {
    "unet": dict(depth=3, base_width=4),
    "resnet": dict(base_width=4, num_blocks=2),
    "fpn_mobilenet": dict(base_width=4, backbone_width=0.25),
}
TINY_DISCRIMINATORS = {
    "patchgan": dict(base_width=4, num_layers=2),
    "pixelgan": dict(base_width=4),
    "multiscale": dict(base_width=4, num_layers=2, num_scales=2),
    "double_scale": dict(base_width=4, patch_layers=2, full_layers=3),
    "fc": dict(base_width=4),
}


def init_variables(module, x, scale=0.02, seed=0):
    """Variables without compiling init: params ~ N(0, scale) (norm scales 1 + that), fresh batch stats."""
    shapes = jax.eval_shape(lambda x: module.init({"params": KEY, "dropout": KEY}, x), x)
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = jax.tree_util.keystr(path)
        if "batch_stats" in name:
            return jnp.full(leaf.shape, 1.0 if name.endswith("['var']") else 0.0, leaf.dtype)
        value = scale * rng.standard_normal(leaf.shape) + (1.0 if name.endswith("['scale']") else 0.0)
        return jnp.asarray(value, leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def apply_eval(module, variables, x):
    return jax.jit(lambda v, x: module.apply(v, x, train=False))(variables, x)


def shapes_of(module, x_shape, train=False):
    """(output ShapeDtypeStructs, param ShapeDtypeStructs) without allocating or compiling."""
    x = jax.ShapeDtypeStruct(x_shape, jnp.float32)
    variables = jax.eval_shape(lambda x: module.init({"params": KEY, "dropout": KEY}, x), x)
    out = jax.eval_shape(lambda v, x: module.apply(v, x, train=train, rngs={"dropout": KEY},
                                                    mutable=["batch_stats"])[0], variables, x)
    return out, variables["params"]


def zeros_like_tree(tree):
    return jax.tree.map(jnp.zeros_like, tree)


# ----------------------------------------------------------------------------- shapes and dtypes
@pytest.mark.parametrize("name", list(TINY_GENERATORS))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_generator_shapes_and_dtypes(name, dtype):
    g = make_generator(name, in_channels=3, out_channels=3, dtype=dtype, **TINY_GENERATORS[name])
    for shape, train in [((2, 32, 32), False), ((1, 24, 40), True), ((3, 17, 9), False)]:
        out, params = shapes_of(g, (*shape, 3), train)
        chex.assert_shape(out, (*shape, 3))
        assert out.dtype == jnp.float32
        assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
    x = jnp.zeros((1, 32, 32, 3))
    variables = jax.eval_shape(lambda: g.init(KEY, x))
    lines = str(jax.make_jaxpr(lambda v: g.apply(v, x))(variables)).splitlines()
    convs = [line for line in lines if "= conv_general_dilated" in line]  # includes the custom-VJP bodies
    compute = "bf16[" if dtype == jnp.bfloat16 else "f32["
    assert convs and all(compute in line.split("=")[0] for line in convs)


@pytest.mark.parametrize("name", list(TINY_GENERATORS))
@pytest.mark.parametrize("out_channels", [1, 5])
def test_generator_logits_shapes(name, out_channels):
    options = dict(TINY_GENERATORS[name], in_channels=4, out_channels=out_channels, out_activation="none")
    if name == "fpn_mobilenet":
        options["learn_residual"] = False
    out, _ = shapes_of(make_generator(name, **options), (2, 16, 24, 4))
    chex.assert_shape(out, (2, 16, 24, out_channels))


def test_bfloat16_compute_close_to_float32():
    x = jax.random.uniform(KEY, (2, 12, 20, 3), minval=-1, maxval=1)
    outputs = []
    for dtype in (jnp.float32, jnp.bfloat16):
        g = UNet(depth=2, base_width=4, dtype=dtype)
        outputs.append(apply_eval(g, init_variables(g, x, scale=0.3), x))  # same float32 params
    y32, y16 = outputs
    chex.assert_type([y32, y16], jnp.float32)
    assert float(jnp.abs(y32).max()) > 0.1  # not a trivially tiny output
    np.testing.assert_allclose(np.asarray(y16), np.asarray(y32), atol=0.05)
    assert float(jnp.abs(y32 - y16).max()) > 0  # bfloat16 really computed something different


@pytest.mark.parametrize("name", list(TINY_DISCRIMINATORS))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("shape", [(2, 48, 48), (1, 64, 40)])
def test_discriminator_shapes_and_dtypes(name, dtype, shape):
    d = make_discriminator(name, in_channels=6, dtype=dtype, **TINY_DISCRIMINATORS[name])
    out, params = shapes_of(d, (*shape, 6))
    b, h, w = shape
    expected = {
        "patchgan": [(b, h // 4 - 2, w // 4 - 2, 1)],
        "pixelgan": [(b, h, w, 1)],
        "multiscale": [(b, h // 4 - 2, w // 4 - 2, 1), (b, h // 8 - 2, w // 8 - 2, 1)],
        "double_scale": [(b, h // 4 - 2, w // 4 - 2, 1), (b, h // 8 - 2, w // 8 - 2, 1)],
        "fc": [(b, h // 32, w // 32, 1)],
    }[name]
    outs = out if isinstance(out, list) else [out]
    assert isinstance(out, list) == (name in ("multiscale", "double_scale"))
    assert [o.shape for o in outs] == expected
    assert all(o.dtype == jnp.float32 for o in outs)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))


def test_discriminators_return_unbounded_logits():
    x = jax.random.uniform(KEY, (2, 48, 48, 3), minval=-1, maxval=1)
    d = make_discriminator("patchgan", in_channels=3, base_width=4, num_layers=2, weight_init="default")
    y = apply_eval(d, init_variables(d, x, scale=1.0), x)
    assert float(y.min()) < 0.0 and float(jnp.abs(y).max()) > 1.0  # no sigmoid / tanh inside


# ----------------------------------------------------------------------------- exact sizes
def test_exact_parameter_counts():
    assert count_params(UNet(depth=8, base_width=64, norm="batch"), (1, 256, 256, 3)) == 54_413_955
    resnet = ResNetGenerator(num_blocks=9, base_width=64, norm="instance")
    assert count_params(resnet, (1, 256, 256, 3)) == 11_378_179
    assert count_params(PatchGAN(in_channels=6, num_layers=3, norm="batch"), (1, 256, 256, 6)) == 2_768_705
    assert count_params(FPNMobileNet(), (1, 256, 256, 3)) == 2_106_627  # see fpn_mobilenet docstring
    # Hung et al.'s D on VOC's 21 classes: 4x4 kernels 21->64->128->256->512->1, each with a bias
    fc_weights = 16 * (21 * 64 + 64 * 128 + 128 * 256 + 256 * 512 + 512 * 1)
    assert count_params(FCDiscriminator(in_channels=21), (1, 321, 321, 21)) == fc_weights + 64 + 128 + 256 + 512 + 1


def test_patchgan_30x30_output_on_256():
    out, _ = shapes_of(PatchGAN(in_channels=6, base_width=2, num_layers=3), (1, 256, 256, 6))
    chex.assert_shape(out, (1, 30, 30, 1))


def test_patchgan_receptive_field_is_70():
    d = PatchGAN(in_channels=3, base_width=2, num_layers=3, norm="batch")
    x = jax.random.normal(KEY, (1, 96, 96, 3))
    variables = init_variables(d, x)
    grad = jax.jit(jax.grad(lambda x, v: d.apply(v, x)[0, 5, 5, 0]))(x, variables)
    rows, cols = np.nonzero(np.abs(np.asarray(grad)).sum(axis=(0, 3)))
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70
    assert rows.min() > 0 and rows.max() < 95  # the field lies inside the image, not clipped


# ----------------------------------------------------------------------------- structure
def test_unet_any_size_equals_padded_input_cropped():
    g = UNet(depth=2, base_width=4)
    for shape, mode in [((1, 7, 6, 3), "reflect"), ((2, 2, 3, 3), "edge")]:  # 2x3 -> 4x4 cannot reflect
        x = jax.random.uniform(KEY, shape, minval=-1, maxval=1)
        variables = init_variables(g, x, scale=0.3)
        padded = jnp.pad(x, ((0, 0), (0, -shape[1] % 4), (0, -shape[2] % 4), (0, 0)), mode=mode)
        y = apply_eval(g, variables, x)
        chex.assert_shape(y, shape)
        chex.assert_trees_all_close(y, apply_eval(g, variables, padded)[:, :shape[1], :shape[2]], atol=1e-6)


def test_unet_skip_connections_double_decoder_inputs():
    g = UNet(depth=4, base_width=4)
    _, params = shapes_of(g, (1, 16, 16, 3))
    # every decoder level but the innermost sees concat(skip, upsampled): twice the channels
    assert params["up_3"]["ConvTranspose_0"]["kernel"].shape == (4, 4, 32, 16)
    assert params["up_2"]["ConvTranspose_0"]["kernel"].shape == (4, 4, 32, 8)
    assert params["up_0"]["ConvTranspose_0"]["kernel"].shape == (4, 4, 8, 3)


@pytest.mark.parametrize("name,options,expected", [
    ("unet", dict(depth=4), 4), ("resnet", {}, 2), ("fpn_mobilenet", dict(upsample="transpose"), 2),
    ("unet", dict(depth=4, upsample="resize"), 0)])
def test_every_transposed_conv_takes_a_fast_path(name, options, expected, monkeypatch):
    """On CPU each transposed conv is the custom-VJP conv or the GEMM path; none is lax.conv_transpose's autodiff."""
    calls = {"custom_vjp": 0, "gemm": 0}

    def counting(kind, fn):
        def wrapped(*args):
            calls[kind] += 1
            return fn(*args)
        return wrapped

    from jaxgan.ops import conv_transpose as ct

    monkeypatch.setattr(ct, "conv_transpose_vjp", counting("custom_vjp", ct.conv_transpose_vjp))
    monkeypatch.setattr(ct, "conv_transpose_matmul", counting("gemm", ct.conv_transpose_matmul))
    g = make_generator(name, **{**TINY_GENERATORS[name], **options})
    x = jnp.zeros((1, 32, 32, 3))
    variables = jax.eval_shape(lambda: g.init(KEY, x))
    calls.update(custom_vjp=0, gemm=0)  # count one forward pass
    eqns = jax.make_jaxpr(lambda v: g.apply(v, x))(variables).jaxpr.eqns
    assert calls["custom_vjp"] + calls["gemm"] == expected
    assert not any(e.primitive.name == "conv_general_dilated" and max(e.params["lhs_dilation"]) > 1 for e in eqns)


def test_resize_upsampling_has_no_transposed_convs():
    for name in ("unet", "resnet"):
        g = make_generator(name, upsample="resize", **TINY_GENERATORS[name])
        out, params = shapes_of(g, (1, 16, 16, 3))
        chex.assert_shape(out, (1, 16, 16, 3))
        assert "ConvTranspose" not in str(jax.tree_util.tree_structure(params))
    g = FPNMobileNet(upsample="transpose", **TINY_GENERATORS["fpn_mobilenet"])
    out, params = shapes_of(g, (1, 32, 32, 3))
    chex.assert_shape(out, (1, 32, 32, 3))
    assert params["up_0"]["kernel"].shape == (4, 4, 4, 4) and params["up_1"]["kernel"].shape == (4, 4, 2, 2)


def test_unet_dropout_on_pix2pix_levels():
    called = []

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, nn.Dropout) and not context.module.deterministic:
            called.append(context.module.name)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        shapes_of(UNet(depth=8, base_width=1), (1, 256, 256, 3), train=True)
    assert sorted(called) == ["dropout_4", "dropout_5", "dropout_6"]
    called.clear()
    with nn.intercept_methods(record):
        shapes_of(UNet(depth=8, base_width=1, dropout=False), (1, 256, 256, 3), train=True)
    assert called == []


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_residual_block_adds_the_skip(norm):
    block = ResidualBlock(norm=norm)
    x = jax.random.normal(KEY, (2, 6, 5, 4))
    variables = init_variables(block, x)
    zeroed = {**variables, "params": zeros_like_tree(variables["params"])}
    chex.assert_trees_all_close(apply_eval(block, zeroed, x), x)  # F = 0 -> identity
    assert float(jnp.abs(apply_eval(block, variables, x) - x).max()) > 1e-3


@pytest.mark.parametrize("name", ["unet", "resnet", "fpn_mobilenet"])
def test_learn_residual_with_zeroed_net_is_identity(name):
    g = make_generator(name, learn_residual=True, **TINY_GENERATORS[name])
    x = jax.random.uniform(KEY, (2, 12, 20, 3), minval=-1, maxval=1)
    variables = init_variables(g, x, scale=0.3)
    zeroed = {**variables, "params": zeros_like_tree(variables["params"])}
    chex.assert_trees_all_close(apply_eval(g, zeroed, x), x, atol=1e-7)
    y = apply_eval(g, variables, x)
    assert float(jnp.abs(y).max()) <= 1.0 and float(jnp.abs(y - x).max()) > 1e-4



def test_image_output_crops_then_tanh_then_residual_clip():
    # the generators' shared output head, against its closed form on values where the clip acts
    h = jnp.asarray(np.random.default_rng(0).normal(0, 2, (1, 6, 7, 2)), jnp.bfloat16)
    x = jnp.full((1, 4, 5, 2), 0.9, jnp.float32)
    cropped = np.asarray(h[:, :4, :5], np.float32)
    logits = layers.image_output(h, x, "none", False)
    assert logits.dtype == jnp.float32
    np.testing.assert_array_equal(logits, cropped)
    np.testing.assert_allclose(layers.image_output(h, x, "tanh", False), np.tanh(cropped), rtol=1e-5, atol=1e-6)
    residual = layers.image_output(h, x, "tanh", True)
    np.testing.assert_allclose(residual, np.clip(0.9 + np.tanh(cropped), -1, 1), rtol=1e-5, atol=1e-6)
    assert (np.asarray(residual) == 1.0).sum() > 5  # the clip was exercised

# ----------------------------------------------------------------------------- norms and init
def test_batch_norm_momentum_and_instance_norm():
    x = 3.0 + 2.0 * jax.random.normal(KEY, (4, 5, 6, 3))
    bn = Norm("batch")
    variables = jax.jit(bn.init)(KEY, x)
    _, updated = jax.jit(lambda v, x: bn.apply(v, x, train=True, mutable=["batch_stats"]))(variables, x)
    mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
    chex.assert_trees_all_close(updated["batch_stats"]["BatchNorm_0"]["mean"], 0.1 * mean, rtol=1e-5)
    chex.assert_trees_all_close(updated["batch_stats"]["BatchNorm_0"]["var"], 0.9 + 0.1 * var, rtol=1e-5)
    y = jax.jit(Norm("instance").apply)({}, x)
    chex.assert_trees_all_close(y.mean((1, 2)), jnp.zeros((4, 3)), atol=1e-5)
    chex.assert_trees_all_close(y.var((1, 2)), jnp.ones((4, 3)), atol=1e-3)
    assert Norm("instance").init(KEY, x) == {}  # no affine parameters, as pix2pix / DeblurGAN


def test_weight_init_options():
    x = jnp.zeros((1, 8, 8, 64))
    for weight_init, kernel_std, scale_std in [("normal", 0.02, 0.02), ("default", 1 / np.sqrt(9 * 64), 0.0)]:
        params = jax.jit(ResidualBlock(norm="batch", weight_init=weight_init).init)(KEY, x)["params"]
        kernel = np.asarray(params["Conv_0"]["kernel"])
        scale = np.asarray(params["Norm_0"]["BatchNorm_0"]["scale"])
        assert abs(kernel.mean()) < 0.1 * kernel_std and abs(kernel.std() / kernel_std - 1) < 0.05
        assert abs(scale.mean() - 1) < 0.01 and abs(scale.std() - scale_std) < 0.006


# ----------------------------------------------------------------------------- errors
ALL_MODULES = [(make_generator, n, o) for n, o in TINY_GENERATORS.items()] + [
    (make_discriminator, n, o) for n, o in TINY_DISCRIMINATORS.items()]


@pytest.mark.parametrize("factory,name,options", ALL_MODULES)
def test_bad_input_shapes_raise(factory, name, options):
    module = factory(name, in_channels=3, **options)
    good = jnp.zeros((1, 64, 64, 3))
    variables = jax.eval_shape(lambda: module.init({"params": KEY, "dropout": KEY}, good))
    for bad in [jnp.zeros((64, 64, 3)), jnp.zeros((1, 64, 64, 4))]:
        with pytest.raises(ValueError, match=r"\(B, H, W, 3\).*got shape \(" + ", ".join(map(str, bad.shape))):
            module.apply(variables, bad)


def test_patchgan_too_small_input_raises():
    with pytest.raises(ValueError, match="H, W >= 24"):
        PatchGAN(num_layers=3).init(KEY, jnp.zeros((1, 16, 32, 3)))


def test_factories_reject_unknown_names_and_options():
    with pytest.raises(ValueError, match="valid names.*fpn_mobilenet.*resnet.*unet"):
        make_generator("unet256")
    with pytest.raises(ValueError, match="valid names.*double_scale.*multiscale.*patchgan.*pixelgan"):
        make_discriminator("nlayer")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['n_blocks'\].*valid options.*num_blocks"):
        make_generator("resnet", n_blocks=9)
    with pytest.raises(ValueError, match=r"\['ndf'\].*base_width"):
        make_discriminator("patchgan", ndf=64)
    for bad in [dict(norm="bn"), dict(upsample="bilinear"), dict(out_activation="sigmoid"),
                dict(weight_init="xavier")]:
        with pytest.raises(ValueError, match=list(bad)[0]):
            make_generator("unet", **bad)
    with pytest.raises(ValueError, match="learn_residual"):
        make_generator("resnet", learn_residual=True, out_activation="none")
    assert {"unet", "resnet", "fpn_mobilenet"} <= set(GENERATORS)
    assert {"patchgan", "pixelgan", "multiscale", "double_scale"} <= set(DISCRIMINATORS)
