"""ImageNet backbones of DeblurGAN-v2's generators from a file the user supplies: MobileNetV2 (the
FPN-MobileNet backbone) and Inception-ResNet-v2 (the FPN-Inception backbone). Nothing downloads.

MobileNetV2:

Accepted layouts: torchvision's `mobilenet_v2(weights="IMAGENET1K_V1").state_dict()`
(features.{i}.conv.{j}.{k}; mobilenet_v2-b0353104.pth) and the `mobilenetv2.pth.tar` DeblurGAN-v2 loads
(models/fpn_mobilenet.py:84-87; the layout of its models/mobilenet_v2.py, features.{i}.conv.{j}).
Lookup: the given path, else $JAXGAN_MOBILENET_V2_WEIGHTS, else ~/.cache/jaxgan/weights/mobilenet_v2.pth.
Only features 0..15 are used (the FPN taps up to the 15th inverted residual); the rest is ignored.

Inception-ResNet-v2: Cadene's pretrainedmodels `inceptionresnetv2(pretrained='imagenet')` state dict
(inceptionresnetv2-520b38e4.pth; conv2d_1a.conv.weight, ..., last_linear.bias), which DeblurGAN-v2's
FPN builds (models/fpn_inception.py:94). Lookup: the given path, else $JAXGAN_INCEPTION_RESNET_V2_WEIGHTS,
else ~/.cache/jaxgan/weights/inception_resnet_v2.pth. The FPN uses the network up to mixed_7a
(fpn_inception.py:96-115); repeat_2, block8, conv2d_7b and last_linear are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path

from jaxgan.weights.formats import MOBILENET_EXPANDS, mobilenet_v2_table
from jaxgan.weights.mapping import Table, convert
from jaxgan.weights.torch_file import WeightsError, load_state_dict

ENV_VAR = "JAXGAN_MOBILENET_V2_WEIGHTS"
DEFAULT_PATH = Path("~/.cache/jaxgan/weights/mobilenet_v2.pth")


INCEPTION_ENV_VAR = "JAXGAN_INCEPTION_RESNET_V2_WEIGHTS"
INCEPTION_DEFAULT_PATH = Path("~/.cache/jaxgan/weights/inception_resnet_v2.pth")


def _weights_path(path, env_var: str, default: Path, name: str, what: str) -> Path:
    """`path`, else $env_var, else `default`; WeightsError saying what to put where when it is missing."""
    candidate = Path(path) if path else Path(os.environ.get(env_var) or default)
    candidate = candidate.expanduser()
    if not candidate.is_file():
        raise WeightsError(
            f"{name} ImageNet weights not found at {candidate}: save {what} there, set variants.transfer_file "
            f"or ${env_var} to it (jaxgan never downloads weights; variants.transfer_from='' trains from scratch)")
    return candidate


def mobilenet_v2_path(path: str | os.PathLike | None = None) -> Path:
    """The MobileNetV2 weights file: `path`, else $JAXGAN_MOBILENET_V2_WEIGHTS, else the default place;
    WeightsError saying where to put it when there is none."""
    return _weights_path(path, ENV_VAR, DEFAULT_PATH, "MobileNetV2", "torchvision's mobilenet_v2(weights="
                         "'IMAGENET1K_V1').state_dict() (mobilenet_v2-b0353104.pth)")


def inception_resnet_v2_path(path: str | os.PathLike | None = None) -> Path:
    """The Inception-ResNet-v2 weights file: `path`, else $JAXGAN_INCEPTION_RESNET_V2_WEIGHTS, else the
    default place; WeightsError saying where to put it when there is none."""
    return _weights_path(path, INCEPTION_ENV_VAR, INCEPTION_DEFAULT_PATH, "Inception-ResNet-v2",
                         "Cadene pretrainedmodels' inceptionresnetv2(pretrained='imagenet') state dict "
                         "(inceptionresnetv2-520b38e4.pth)")


def _torchvision_table() -> Table:
    t = Table()
    t.conv("Conv_0", "features.0.0", bias=False)
    t.batch_norm("Norm_0/BatchNorm_0", "features.0.1")
    for b, expand in enumerate(MOBILENET_EXPANDS):
        p, f = f"features.{b + 1}.conv", f"InvertedResidual_{b}"
        convs = ([f"{p}.0.0", f"{p}.1"] if expand == 1 else [f"{p}.0.0", f"{p}.1.0", f"{p}.2"])
        norms = ([f"{p}.0.1", f"{p}.2"] if expand == 1 else [f"{p}.0.1", f"{p}.1.1", f"{p}.3"])
        for j, (c, n) in enumerate(zip(convs, norms)):
            t.conv(f"{f}/Conv_{j}", c, bias=False)
            t.batch_norm(f"{f}/Norm_{j}/BatchNorm_0", n)
    return t


def load_mobilenet_v2_variables(path: str | os.PathLike | None = None) -> dict:
    """{'params': ..., 'batch_stats': ...} of jaxgan's MobileNetV2Features (FPNMobileNet's 'backbone')."""
    import jax
    import jax.numpy as jnp

    from jaxgan.nets.fpn_mobilenet import MobileNetV2Features  # deferred with jax: jaxgan.weights stays light

    file = mobilenet_v2_path(path)
    state = load_state_dict(file)
    if "features.1.conv.0.0.weight" in state:
        table = _torchvision_table()
    else:
        table = Table()
        mobilenet_v2_table(table, "", "features")
        table.entries = {k.replace("params//", "params/").replace("batch_stats//", "batch_stats/"): v
                         for k, v in table.entries.items()}
    table.unused_patterns += [r"features\.(1[6-8])\..*", r"classifier\..*"]
    module = MobileNetV2Features()
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
    return convert(state, table, shapes, "MobileNetV2", str(file))


def load_inception_resnet_v2_variables(path: str | os.PathLike | None = None) -> dict:
    """{'params': ..., 'batch_stats': ...} of jaxgan's InceptionResNetV2Features (FPNInception's
    'backbone') from Cadene's state dict (see the module docstring)."""
    import jax
    import jax.numpy as jnp

    from jaxgan.nets.fpn_inception import InceptionResNetV2Features, backbone_torch_names  # deferred (jax)

    file = inception_resnet_v2_path(path)
    state = load_state_dict(file)
    table = Table()
    for flax_prefix, torch_prefix in backbone_torch_names():
        table.conv(f"{flax_prefix}/conv", f"{torch_prefix}.conv", bias=False)
        table.batch_norm(f"{flax_prefix}/bn", f"{torch_prefix}.bn")
    for flax_prefix, torch_prefix in backbone_torch_names(residual_convs=True):
        table.conv(flax_prefix, torch_prefix)
    table.unused_patterns.append(r"(repeat_2|block8|conv2d_7b|last_linear)\..*")
    module = InceptionResNetV2Features()
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros((1, 128, 128, 3))))
    return convert(state, table, shapes, "Inception-ResNet-v2", str(file))
