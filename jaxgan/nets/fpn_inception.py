"""DeblurGAN-v2's default generator: an FPN over Inception-ResNet-v2, with a global residual.

Behaviour follows VITA-Group/DeblurGANv2 models/fpn_inception.py (learned, not copied) over Cadene's
pretrainedmodels InceptionResNetV2 (pretrainedmodels/models/inceptionresnetv2.py):
- Backbone (batch norm, eps 1e-3; BasicConv2d = bias-free conv + BN + ReLU; valid padding unless noted):
  enc0 = conv2d_1a (3x3 s2, 32); enc1 = conv2d_2a (3x3, 32), conv2d_2b (3x3 p1, 64), 3x3 s2 max pool;
  enc2 = conv2d_3b (1x1, 80), conv2d_4a (3x3, 192), max pool; enc3 = mixed_5b (320), 10 x Block35
  (scale 0.17), mixed_6a (1088); enc4 = 20 x Block17 (scale 0.10), mixed_7a (2080). The network's tail
  (Block8s, conv2d_7b, classifier) is not used by the FPN, so it is not built.
- FPN (width F = 2 * base_width): bias-free 1x1 laterals of 2080, 1088, 192, 64 -> F and 32 -> F/2
  channels, reflect-padded back to H/32, H/16, H/8, H/4, H/2 (1 on each side for laterals 4, 3, 1;
  (1, 2) for lateral 2; (0, 1) for lateral 0; fpn_inception.py:154-167); top-down and heads as
  FPNMobileNet (jaxgan.nets.fpn_mobilenet), output clip(tanh(final) + x, -1, 1).
Any H, W: reflect-padded (edge where impossible) at the bottom / right to multiples of 32 and at
least 128 (the valid-padded stem needs it), output cropped back.

Parameter names mirror the original's (conv2d_1a/conv, conv2d_1a/bn, mixed_5b/branch1_0/..., repeat_3/...;
`backbone_torch_names` lists the pairs), so DeblurGAN-v2's fpn_inception.h5 converts key by key
(jaxgan.weights, format 'deblurganv2_fpn_inception').
Size, with the release's options (base_width 128, instance norm, 3->3): 35,840,099 params, the PyTorch
module's 60,929,291 minus its Inception-ResNet-v2 tail (Block8s, conv2d_7b, classifier: 25,089,192),
which the FPN never uses.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.nets import layers
from jaxgan.nets.fpn_mobilenet import _conv_norm_relu

# A branch: (name, [(features, kernel (kh, kw), stride, padding (ph, pw))...], torch index offset, single).
# `single`: the original holds one BasicConv2d (torch name `branchN`), else a Sequential (`branchN.j`).
def _c(features, k=1, stride=1, pad=0):
    k = (k, k) if isinstance(k, int) else k
    pad = (pad, pad) if isinstance(pad, int) else pad
    return (features, k, stride, pad)


MIXED_5B = (("branch0", [_c(96)], 0, True), ("branch1", [_c(48), _c(64, 5, 1, 2)], 0, False),
            ("branch2", [_c(64), _c(96, 3, 1, 1), _c(96, 3, 1, 1)], 0, False),
            ("branch3", [_c(64)], 1, False))  # branch3 = 3x3 avg pool (count_include_pad False) + 1x1
BLOCK35 = (("branch0", [_c(32)], 0, True), ("branch1", [_c(32), _c(32, 3, 1, 1)], 0, False),
           ("branch2", [_c(32), _c(48, 3, 1, 1), _c(64, 3, 1, 1)], 0, False))
MIXED_6A = (("branch0", [_c(384, 3, 2)], 0, True),
            ("branch1", [_c(256), _c(256, 3, 1, 1), _c(384, 3, 2)], 0, False))  # + 3x3 s2 max pool
BLOCK17 = (("branch0", [_c(192)], 0, True),
           ("branch1", [_c(128), _c(160, (1, 7), 1, (0, 3)), _c(192, (7, 1), 1, (3, 0))], 0, False))
MIXED_7A = (("branch0", [_c(256), _c(384, 3, 2)], 0, False), ("branch1", [_c(256), _c(288, 3, 2)], 0, False),
            ("branch2", [_c(256), _c(288, 3, 1, 1), _c(320, 3, 2)], 0, False))  # + 3x3 s2 max pool
STEM = (("conv2d_1a", _c(32, 3, 2)), ("conv2d_2a", _c(32, 3)), ("conv2d_2b", _c(64, 3, 1, 1)),
        ("conv2d_3b", _c(80)), ("conv2d_4a", _c(192, 3)))
REPEATS = (("repeat", BLOCK35, 10, 320, 0.17), ("repeat_1", BLOCK17, 20, 1088, 0.10))


def _branch_names(block_flax, block_torch, branches):
    for name, convs, offset, single in branches:
        for j in range(len(convs)):
            if single:
                yield f"{block_flax}/{name}", f"{block_torch}.{name}"
            else:
                yield f"{block_flax}/{name}_{j + offset}", f"{block_torch}.{name}.{j + offset}"


def backbone_torch_names(residual_convs: bool = False) -> list[tuple[str, str]]:
    """(flax module path under the backbone, torch module name under the InceptionResNetV2) of every
    BasicConv2d, or with residual_convs of every residual block's 1x1 `conv2d` (which has a bias)."""
    if residual_convs:
        return [(f"{r}_{i}/conv2d", f"{r}.{i}.conv2d") for r, _, n, _, _ in REPEATS for i in range(n)]
    names = [(name, name) for name, _ in STEM]
    names += list(_branch_names("mixed_5b", "mixed_5b", MIXED_5B))
    names += [p for i in range(10) for p in _branch_names(f"repeat_{i}", f"repeat.{i}", BLOCK35)]
    names += list(_branch_names("mixed_6a", "mixed_6a", MIXED_6A))
    names += [p for i in range(20) for p in _branch_names(f"repeat_1_{i}", f"repeat_1.{i}", BLOCK17)]
    names += list(_branch_names("mixed_7a", "mixed_7a", MIXED_7A))
    return names


class BasicConv2d(nn.Module):
    """Bias-free conv + BatchNorm (eps 1e-3, PyTorch momentum 0.1) + ReLU."""
    features: int
    kernel: tuple
    stride: int = 1
    padding: tuple = (0, 0)
    weight_init: str = "normal"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        (ph, pw) = self.padding
        x = nn.Conv(self.features, self.kernel, self.stride, padding=((ph, ph), (pw, pw)), use_bias=False,
                    kernel_init=layers.kernel_init(self.weight_init), dtype=self.dtype, param_dtype=jnp.float32,
                    name="conv")(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-3, dtype=self.dtype,
                         param_dtype=jnp.float32, scale_init=layers.scale_init(self.weight_init), name="bn")(x)
        return nn.relu(x)


def _max_pool(x):
    return nn.max_pool(x, (3, 3), (2, 2), padding="VALID")


class _Branches(nn.Module):
    """Parallel branches of BasicConv2d's, concatenated over channels (plus a 3x3 s2 max pool branch
    when `pool`, as Mixed_6a / Mixed_7a)."""
    branches: tuple
    pool: bool = False
    weight_init: str = "normal"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        outs = []
        for name, convs, offset, single in self.branches:
            h = x
            if offset:  # Mixed_5b's branch3 starts with an average pool (index 0 in the original)
                h = nn.avg_pool(h, (3, 3), (1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)
            for j, (features, kernel, stride, pad) in enumerate(convs):
                h = BasicConv2d(features, kernel, stride, pad, self.weight_init, self.dtype,
                                name=name if single else f"{name}_{j + offset}")(h, train)
            outs.append(h)
        if self.pool:
            outs.append(_max_pool(x))
        return jnp.concatenate(outs, axis=-1)


class _ResidualBlock(nn.Module):
    """Block35 / Block17: relu(x + scale * conv2d(concat(branches))), conv2d a 1x1 conv with bias."""
    branches: tuple
    scale: float
    weight_init: str = "normal"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = self._branches(x, train)
        h = nn.Conv(x.shape[-1], (1, 1), kernel_init=layers.kernel_init(self.weight_init), dtype=self.dtype,
                    param_dtype=jnp.float32, name="conv2d")(h)
        return nn.relu(h * self.scale + x)

    def _branches(self, x, train):
        outs = []
        for name, convs, _, single in self.branches:
            h = x
            for j, (features, kernel, stride, pad) in enumerate(convs):
                h = BasicConv2d(features, kernel, stride, pad, self.weight_init, self.dtype,
                                name=name if single else f"{name}_{j}")(h, train)
            outs.append(h)
        return jnp.concatenate(outs, axis=-1)


class InceptionResNetV2Features(nn.Module):
    """(B, H, W, 3) -> [enc0..enc4] (32, 64, 192, 1088, 2080 channels) as fpn_inception.py's FPN
    slices the network (:96-115); valid padding: sides H/2 - 1, H/4 - 2, H/8 - 3, H/16 - 2, H/32 - 2."""
    weight_init: str = "normal"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        common = dict(weight_init=self.weight_init, dtype=self.dtype)
        stem = {name: BasicConv2d(*spec, name=name, **common) for name, spec in STEM}
        enc0 = stem["conv2d_1a"](x, train)
        enc1 = _max_pool(stem["conv2d_2b"](stem["conv2d_2a"](enc0, train), train))
        enc2 = _max_pool(stem["conv2d_4a"](stem["conv2d_3b"](enc1, train), train))
        h = _Branches(MIXED_5B, name="mixed_5b", **common)(enc2, train)
        for i in range(10):
            h = _ResidualBlock(BLOCK35, 0.17, name=f"repeat_{i}", **common)(h, train)
        enc3 = _Branches(MIXED_6A, pool=True, name="mixed_6a", **common)(h, train)
        h = enc3
        for i in range(20):
            h = _ResidualBlock(BLOCK17, 0.10, name=f"repeat_1_{i}", **common)(h, train)
        enc4 = _Branches(MIXED_7A, pool=True, name="mixed_7a", **common)(h, train)
        return [enc0, enc1, enc2, enc3, enc4]


def _reflect(x, top, bottom, left, right):
    return jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), mode="reflect")


class FPNInception(nn.Module):
    """(B, H, W, in_channels) in [-1, 1] -> (B, H, W, out_channels) float32 (see the module docstring).

    base_width: the heads' width (num_filters, 128 in the release; the FPN has twice as many).
    learn_residual (default): clip(tanh(final) + x, -1, 1); out_activation 'none' + learn_residual
    False gives logits.
    """
    in_channels: int = 3
    out_channels: int = 3
    base_width: int = 128
    norm: str = "instance"
    out_activation: str = "tanh"
    learn_residual: bool = True
    weight_init: str = "normal"
    dtype: Any = jnp.float32

    def __post_init__(self):
        layers.check_generator(self, upsample=False)
        if self.in_channels != 3:
            raise ValueError(f"FPNInception's Inception-ResNet-v2 stem takes 3 channels, got {self.in_channels}")
        if self.base_width < 2:
            raise ValueError(f"base_width must be >= 2, got {self.base_width}")
        super().__post_init__()

    @nn.compact
    def __call__(self, x, train: bool = False):
        layers.check_image(x, self.in_channels, "FPNInception")
        padded = layers.pad_to_multiple(x, 32, minimum=128)  # multiples of 32, at least 128
        common = dict(weight_init=self.weight_init, dtype=self.dtype)
        fpn_width, head_width = 2 * self.base_width, self.base_width

        enc = InceptionResNetV2Features(name="backbone", **common)(padded.astype(self.dtype), train)
        lateral = [layers.conv(fpn_width // 2 if i == 0 else fpn_width, 1, use_bias=False, name=f"lateral_{i}",
                               **common)(e) for i, e in enumerate(enc)]
        lateral[4] = _reflect(lateral[4], 1, 1, 1, 1)
        lateral[3] = _reflect(lateral[3], 1, 1, 1, 1)
        lateral[2] = _reflect(lateral[2], 1, 2, 1, 2)
        lateral[1] = _reflect(lateral[1], 1, 1, 1, 1)
        lateral[0] = _reflect(lateral[0], 0, 1, 0, 1)
        maps = [lateral[4]]
        for i in (3, 2, 1):
            merged = lateral[i] + layers.upsample_nearest(maps[-1])
            maps.append(_conv_norm_relu(fpn_width, f"top_down_{i}", self.norm, train, merged, **common))

        heads = []
        for level, m in zip((4, 3, 2, 1), maps):
            for j in range(2):
                m = nn.relu(layers.conv(head_width, 3, 1, 1, use_bias=False, name=f"head_{level}_{j}", **common)(m))
            heads.append(layers.upsample_nearest(m, 2 ** (level - 1)) if level > 1 else m)
        h = _conv_norm_relu(head_width, "smooth", self.norm, train, jnp.concatenate(heads, -1), **common)
        h = layers.upsample_nearest(h) + lateral[0]
        h = _conv_norm_relu(head_width // 2, "smooth2", self.norm, train, h, **common)
        h = layers.upsample_nearest(h)
        h = layers.conv(self.out_channels, 3, 1, 1, name="final", **common)(h)
        return layers.image_output(h, x, self.out_activation, self.learn_residual)
