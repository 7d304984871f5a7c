"""DeblurGAN-v2's lightweight generator: an FPN over a MobileNetV2 backbone, with a global residual.

Behaviour follows VITA-Group/DeblurGANv2 models/fpn_mobilenet.py (learned, not copied):
- Backbone: MobileNetV2 (width multiplier `backbone_width`) up to its 15th inverted-residual block
  (the later 160/320-channel blocks and the 1x1 head are unused, so they are not built). Stages
  enc0..enc4 at strides 2, 4, 8, 16, 32 with 16, 24, 32, 64, 160 channels (x backbone_width). Inverted
  residual: 1x1 expand (x6) -> depthwise 3x3 -> 1x1 linear projection, BN + ReLU6, identity skip when
  shapes allow. The backbone always uses `backbone_norm` (batch norm, as MobileNetV2).
- FPN (width F = 2 * base_width): bias-free 1x1 laterals; top-down: map = td(lateral + nearest x2 of the
  coarser map), td = 3x3 conv + norm + ReLU; lateral0 (F/2 channels) at stride 2.
- Heads: two bias-free 3x3 conv + ReLU per level (base_width channels), nearest-upsampled to stride 4,
  concatenated, `smooth` 3x3 conv + norm + ReLU, x2 up, + lateral0, `smooth2` 3x3 conv (base_width/2)
  + norm + ReLU, x2 up, 3x3 `final` conv. Output clip(tanh(final) + x, -1, 1) (learn_residual).
- `upsample='resize'` (reference) uses nearest x2 for the two decoder upsamplings; 'transpose' replaces
  them with learned 4x4 stride-2 transposed convs (same channels). FPN merges stay nearest.

Size, with reference options (base_width 64, backbone_width 1, instance norm, 3->3), counted with
`python benchmarks/nets_cost.py` (jax.eval_shape for params; FLOPs from
`jax.jit(apply).lower(params, x).compile().cost_analysis()['flops']`, XLA CPU, batch 1, eval mode):
  params: 2,106,627 trainable (the PyTorch module also holds the unused MobileNetV2 tail and classifier)
  FLOPs: 5.35 GFLOPs at 256x256; 78.13 GFLOPs at 1280x720 (padded to 1280x736, a multiple of 32).
  XLA counts 2 FLOPs per multiply-add: ~2.7 GMACs at 256x256, ~39 GMACs at 1280x736.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.nets import layers

# MobileNetV2 settings (expand ratio t, channels c, repeats n, first stride s); the FPN taps the
# first 15 inverted-residual blocks: enc0 = stem + block 0, enc1 = 1-2, enc2 = 3-5, enc3 = 6-9, enc4 = 10-14.
MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2))
STAGE_ENDS = (1, 3, 6, 10, 15)  # exclusive end (in blocks) of enc0..enc4


class InvertedResidual(nn.Module):
    """MobileNetV2 block: (B, H, W, Cin) -> (B, H/stride, W/stride, features)."""
    features: int
    stride: int
    expand_ratio: int
    norm: str = "batch"
    weight_init: str = "normal"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        common = dict(weight_init=self.weight_init, dtype=self.dtype)
        hidden = round(x.shape[-1] * self.expand_ratio)
        h = x
        if self.expand_ratio != 1:
            h = layers.conv(hidden, 1, use_bias=False, **common)(h)
            h = nn.relu6(layers.Norm(self.norm, **common)(h, train))
        h = layers.conv(hidden, 3, self.stride, 1, use_bias=False, groups=hidden, **common)(h)
        h = nn.relu6(layers.Norm(self.norm, **common)(h, train))
        h = layers.conv(self.features, 1, use_bias=False, **common)(h)
        h = layers.Norm(self.norm, **common)(h, train)
        if self.stride == 1 and x.shape[-1] == self.features:
            h = x + h
        return h


class MobileNetV2Features(nn.Module):
    """(B, H, W, C) with H, W multiples of 32 -> [enc0..enc4] at strides 2, 4, 8, 16, 32."""
    width_mult: float = 1.0
    norm: str = "batch"
    weight_init: str = "normal"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        common = dict(norm=self.norm, weight_init=self.weight_init, dtype=self.dtype)
        stem = max(1, int(32 * self.width_mult))
        h = layers.conv(stem, 3, 2, 1, use_bias=False, weight_init=self.weight_init, dtype=self.dtype)(x)
        h = nn.relu6(layers.Norm(self.norm, weight_init=self.weight_init, dtype=self.dtype)(h, train))
        stages, block = [], 0
        for t, c, n, s in MOBILENET_V2:
            for i in range(n):
                if block == STAGE_ENDS[-1]:
                    break
                features = max(1, int(c * self.width_mult))
                h = InvertedResidual(features, s if i == 0 else 1, t, **common)(h, train)
                block += 1
                if block in STAGE_ENDS:
                    stages.append(h)
        return stages


def _conv_norm_relu(features, name, norm, train, h, **common):
    h = layers.conv(features, 3, 1, 1, name=name, **common)(h)
    return nn.relu(layers.Norm(norm, name=f"{name}_norm", **common)(h, train))


class FPNMobileNet(nn.Module):
    """(B, H, W, in_channels) in [-1, 1] -> (B, H, W, out_channels) float32.

    Any H, W: reflect-padded (edge where impossible) to multiples of 32, output cropped back.
    learn_residual (default, DeblurGAN-v2): clip(tanh(final) + x, -1, 1), needs out_activation 'tanh'
    and out_channels == in_channels. out_activation 'none' + learn_residual False gives logits.
    """
    in_channels: int = 3
    out_channels: int = 3
    base_width: int = 64
    backbone_width: float = 1.0
    norm: str = "instance"
    backbone_norm: str = "batch"
    out_activation: str = "tanh"
    learn_residual: bool = True
    upsample: str = "resize"
    weight_init: str = "normal"
    dtype: Any = jnp.float32

    def __post_init__(self):
        layers.check_generator(self)
        layers.check_choice("backbone_norm", self.backbone_norm, layers.NORMS)
        if self.base_width < 2:
            raise ValueError(f"base_width must be >= 2, got {self.base_width}")
        super().__post_init__()

    @property
    def size_multiple(self) -> int:
        """The multiple of the input sides the network pads to (and crops back from) by itself."""
        return 32

    @nn.compact
    def __call__(self, x, train: bool = False):
        layers.check_image(x, self.in_channels, "FPNMobileNet")
        padded = layers.pad_to_multiple(x, self.size_multiple)
        common = dict(weight_init=self.weight_init, dtype=self.dtype)
        fpn_width, head_width = 2 * self.base_width, self.base_width

        enc = MobileNetV2Features(self.backbone_width, self.backbone_norm, name="backbone", **common)(
            padded.astype(self.dtype), train)
        lateral = [layers.conv(fpn_width // 2 if i == 0 else fpn_width, 1, use_bias=False,
                               name=f"lateral_{i}", **common)(e) for i, e in enumerate(enc)]
        maps = [lateral[4]]  # top-down, coarsest first
        for i in (3, 2, 1):
            merged = lateral[i] + layers.upsample_nearest(maps[-1])
            maps.append(_conv_norm_relu(fpn_width, f"top_down_{i}", self.norm, train, merged, **common))

        heads = []
        for level, m in zip((4, 3, 2, 1), maps):
            for j in range(2):
                m = nn.relu(layers.conv(head_width, 3, 1, 1, use_bias=False, name=f"head_{level}_{j}",
                                        **common)(m))
            heads.append(layers.upsample_nearest(m, 2 ** (level - 1)) if level > 1 else m)

        h = _conv_norm_relu(head_width, "smooth", self.norm, train, jnp.concatenate(heads, -1), **common)
        h = self._upsample(h, head_width, "up_0") + lateral[0]
        h = _conv_norm_relu(head_width // 2, "smooth2", self.norm, train, h, **common)
        h = self._upsample(h, head_width // 2, "up_1")
        h = layers.conv(self.out_channels, 3, 1, 1, name="final", **common)(h)
        return layers.image_output(h, x, self.out_activation, self.learn_residual)

    def _upsample(self, h, features, name):
        if self.upsample == "resize":
            return layers.upsample_nearest(h)
        return layers.ConvTranspose(features, 4, 2, 1, weight_init=self.weight_init, dtype=self.dtype,
                                    name=name)(h)
