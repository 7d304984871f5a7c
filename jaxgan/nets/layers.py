"""What the zoo's networks are built from (NHWC, float32 params, `dtype` compute).

- `conv` / `Conv`: PyTorch-style conv (square kernel, symmetric zero padding, the zoo's init;
  nn.Conv's parameters).
- `ConvTranspose`: PyTorch `ConvTranspose2d` semantics.
- `Norm`: 'batch' | 'instance' | 'none', configured like pix2pix (momentum 0.1 in PyTorch terms,
  eps 1e-5, instance norm without affine parameters).
- `upsample_nearest` / `UpConv`: decoder upsampling by transposed conv or nearest resize + 3x3 conv.
- `pad_to_multiple`, `reflect_pad`, `check_image`, `check_choice`, `check_generator`, `count_params`.

How a convolution is computed on each backend is `jaxgan.ops`'s business (its fast paths for XLA
CPU, plain lax on GPU / TPU); these modules only hold the parameters and call it.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan import ops, trees


Dtype = Any
NORMS = ("batch", "instance", "none")
INITS = ("normal", "default", "torch")
UPSAMPLES = ("transpose", "resize")
OUT_ACTIVATIONS = ("tanh", "none")


# ----------------------------------------------------------------------------- validation
def check_choice(what: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise ValueError unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{what} must be one of {list(choices)}, got {value!r}")


def check_generator(module, upsample: bool = True) -> None:
    """The options the zoo's image generators share: norm, out_activation, weight_init (and upsample),
    and that learn_residual (output = tanh-bounded input + correction) has an output like its input."""
    check_choice("norm", module.norm, NORMS)
    if upsample:
        check_choice("upsample", module.upsample, UPSAMPLES)
    check_choice("out_activation", module.out_activation, OUT_ACTIVATIONS)
    check_choice("weight_init", module.weight_init, INITS)
    if module.learn_residual and (module.out_activation != "tanh" or module.in_channels != module.out_channels):
        raise ValueError("learn_residual needs out_activation='tanh' and out_channels == in_channels; got "
                         f"{module.out_activation!r}, {module.in_channels} -> {module.out_channels}")


def check_image(x: jax.Array, channels: int, who: str) -> None:
    """Raise ValueError unless `x` is an NHWC batch with `channels` channels."""
    if x.ndim != 4 or x.shape[-1] != channels:
        raise ValueError(
            f"{who} expects an NHWC batch of shape (B, H, W, {channels}); got shape {tuple(x.shape)}")


# ----------------------------------------------------------------------------- initializers
def kernel_init(init: str, transposed: bool = False) -> Callable:
    """'normal': N(0, 0.02) as pix2pix / DeblurGAN; 'default': flax's lecun_normal; 'torch': PyTorch's
    default conv init, kaiming_uniform(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), with torch's
    fan_in (for a transposed conv torch counts its out channels: weight (in, out, k, k), dim 1)."""
    check_choice("weight_init", init, INITS)
    if init == "torch":
        axes = dict(in_axis=-1, out_axis=-2) if transposed else {}
        return nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform", **axes)
    return nn.initializers.normal(0.02) if init == "normal" else nn.initializers.lecun_normal()


def bias_init(init: str, fan_in: int) -> Callable:
    """Conv bias: zeros, or ('torch') U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as PyTorch's default."""
    if init != "torch":
        return nn.initializers.zeros
    bound = 1.0 / float(fan_in) ** 0.5

    def uniform(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return uniform


def scale_init(init: str) -> Callable:
    """Norm-layer scale: N(1, 0.02) as pix2pix ('normal') or ones ('default', 'torch')."""
    check_choice("weight_init", init, INITS)
    if init in ("default", "torch"):
        return nn.initializers.ones

    def normal_around_one(key, shape, dtype=jnp.float32):
        return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)

    return normal_around_one


# ----------------------------------------------------------------------------- convolutions
class Conv(nn.Module):
    """PyTorch-style conv: square kernel, symmetric zero padding, float32 params, `dtype` compute.

    The same parameters as flax's `nn.Conv` (`kernel` (k, k, Cin/groups, features), `bias`), so
    checkpoints are interchangeable; computed by `jaxgan.ops.conv2d`."""
    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    use_bias: bool = True
    groups: int = 1
    weight_init: str = "normal"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        k = self.kernel_size
        cin = x.shape[-1]
        if cin % self.groups:
            raise ValueError(f"Conv: {cin} input channels are not divisible by groups={self.groups}")
        kernel = self.param("kernel", kernel_init(self.weight_init), (k, k, cin // self.groups, self.features),
                            jnp.float32)
        y = ops.conv2d(x.astype(self.dtype), kernel.astype(self.dtype), self.stride, self.padding, self.groups)
        if self.use_bias:
            fan_in = k * k * (cin // self.groups)
            y = y + self.param("bias", bias_init(self.weight_init, fan_in), (self.features,),
                               jnp.float32).astype(self.dtype)
        return y


def conv(features: int, kernel_size: int, stride: int = 1, padding: int = 0, *, use_bias: bool = True,
         weight_init: str = "normal", dtype: Dtype = jnp.float32, groups: int = 1, name: str | None = None):
    """A `Conv` (PyTorch semantics: square kernel, symmetric zero padding, float32 params)."""
    return Conv(features, kernel_size, stride, padding, use_bias=use_bias, groups=groups,
                weight_init=weight_init, dtype=dtype, name=name)


class ConvTranspose(nn.Module):
    """PyTorch `ConvTranspose2d(k, s, p, output_padding)` as a flax module; kernel (k, k, Cin, features).

    (B, H, W, Cin) -> (B, (H-1)s - 2p + k + op, ..., features), computed by `jaxgan.ops.conv2d_transpose`.
    Kernel layout: kernel[a, b, i, o] = torch_weight[i, o, k-1-a, k-1-b] (spatially flipped, as
    flax's nn.ConvTranspose with transpose_kernel=False).
    """
    features: int
    kernel_size: int = 4
    strides: int = 2
    padding: int = 1
    output_padding: int = 0
    use_bias: bool = True
    weight_init: str = "normal"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        k = self.kernel_size
        kernel = self.param("kernel", kernel_init(self.weight_init, transposed=True), (k, k, x.shape[-1], self.features),
                            jnp.float32)
        y = ops.conv2d_transpose(x.astype(self.dtype), kernel.astype(self.dtype), self.strides, self.padding,
                                 self.output_padding)
        if self.use_bias:
            bias = self.param("bias", bias_init(self.weight_init, k * k * self.features), (self.features,), jnp.float32)
            y = y + bias.astype(self.dtype)
        return y


# ----------------------------------------------------------------------------- norms, upsampling
class Norm(nn.Module):
    """'batch' (running stats in `batch_stats`, flax momentum 0.9 = PyTorch 0.1, eps 1e-5),
    'instance' (per-sample per-channel, no affine, eps 1e-5) or 'none' (identity)."""
    kind: str = "batch"
    weight_init: str = "normal"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_choice("norm", self.kind, NORMS)
        if self.kind == "batch":
            return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                scale_init=scale_init(self.weight_init), dtype=self.dtype,
                                param_dtype=jnp.float32)(x)
        if self.kind == "instance":
            return nn.InstanceNorm(epsilon=1e-5, use_bias=False, use_scale=False, dtype=self.dtype)(x)
        return x


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
    """Nearest-neighbour upsampling of an NHWC batch by an integer factor."""
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class UpConv(nn.Module):
    """Decoder x2 upsampling: 'transpose' = ConvTranspose(k, 2, p, op); 'resize' = nearest x2 + 3x3 conv
    (no checkerboard artifacts). (B, H, W, C) -> (B, 2H, 2W, features)."""
    features: int
    mode: str = "transpose"
    kernel_size: int = 4
    padding: int = 1
    output_padding: int = 0
    use_bias: bool = True
    weight_init: str = "normal"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        check_choice("upsample", self.mode, UPSAMPLES)
        if self.mode == "transpose":
            return ConvTranspose(self.features, self.kernel_size, 2, self.padding, self.output_padding,
                                 self.use_bias, self.weight_init, self.dtype)(x)
        return conv(self.features, 3, 1, 1, use_bias=self.use_bias, weight_init=self.weight_init,
                    dtype=self.dtype)(upsample_nearest(x))


def image_output(h: jax.Array, x: jax.Array, out_activation: str, learn_residual: bool) -> jax.Array:
    """The zoo's generator output from the last layer's h (padded) and the input x: h cropped to x's
    height and width in float32; 'none' returns those logits, 'tanh' an image in [-1, 1], and
    learn_residual that image added to x and clipped to [-1, 1] (DeblurGAN's global skip)."""
    h = h[:, :x.shape[1], :x.shape[2]].astype(jnp.float32)
    if out_activation != "tanh":
        return h
    h = jnp.tanh(h)
    return jnp.clip(x.astype(jnp.float32) + h, -1.0, 1.0) if learn_residual else h


# ----------------------------------------------------------------------------- padding, counting
def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
    """Reflection padding of H and W by `pad` (PyTorch ReflectionPad2d)."""
    return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def pad_to_multiple(x: jax.Array, multiple: int, minimum: int = 0) -> jax.Array:
    """(B, H, W, C) padded at the bottom / right to sides that are multiples of `multiple` (and at
    least `minimum`): reflect when both pads are shorter than their sides, edge padding otherwise.
    Crop back with `x[:, :h, :w]`. H and W may be symbolic (jax.export), then as a gather."""
    h, w = x.shape[1], x.shape[2]
    if not (isinstance(h, int) and isinstance(w, int)):
        return _pad_symbolic(x, multiple, minimum)
    ph, pw = (max(minimum, -(-side // multiple) * multiple) - side for side in (h, w))
    if ph == 0 and pw == 0:
        return x
    mode = "reflect" if ph < h and pw < w else "edge"
    return jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode)


def _pad_symbolic(x: jax.Array, multiple: int, minimum: int) -> jax.Array:
    """pad_to_multiple for symbolic sides: the padded rows / columns gathered from their sources."""
    if minimum:
        raise ValueError("pad_to_multiple: a minimum size needs concrete image sides")
    if multiple == 1:
        return x
    h, w = x.shape[1], x.shape[2]
    ph, pw = ((h + multiple - 1) // multiple) * multiple - h, ((w + multiple - 1) // multiple) * multiple - w
    reflect = jnp.logical_and(jnp.asarray(ph) < jnp.asarray(h), jnp.asarray(pw) < jnp.asarray(w))

    def sources(n):
        i = jnp.arange(((n + multiple - 1) // multiple) * multiple)
        return jnp.where(reflect, jnp.where(i < n, i, 2 * (n - 1) - i), jnp.minimum(i, n - 1))

    return jnp.take(jnp.take(x, sources(h), axis=1), sources(w), axis=2)


def count_params(module: nn.Module, input_shape: Sequence[int]) -> int:
    """Number of trainable parameters (the `params` collection), computed with `jax.eval_shape`."""
    def init():
        key = jax.random.key(0)
        return module.init({"params": key, "dropout": key}, jnp.zeros(input_shape, jnp.float32))

    return trees.count_params(jax.eval_shape(init)["params"])
