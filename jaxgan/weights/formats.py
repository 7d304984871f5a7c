"""The original repositories' generator checkpoints, as jaxgan generators.

Each format: `options(state)` infers the generator's jaxgan options from the tensor shapes (so
reduced-width checkpoints load too), `table(options)` lists which torch key fills which flax leaf.
- 'pix2pix': UnetGenerator (junyanz/pytorch-CycleGAN-and-pix2pix models/networks.py) -> 'unet'.
- 'deblurgan': ResnetGenerator with dropout (KupynOrest/DeblurGAN models/networks.py) -> 'resnet',
  learn_residual (DeblurGAN is trained with --learn_residual; the flag is not in the file).
- 'deblurganv2_fpn_mobilenet': FPNMobileNet (VITA-Group/DeblurGANv2 models/fpn_mobilenet.py) -> 'fpn_mobilenet'.
- 'deblurganv2_fpn_inception': FPNInception (models/fpn_inception.py) -> 'fpn_inception'.
Discriminator tables (no format of their own: `convert(state, table, shapes, ...)` takes them):
- `fc_discriminator_table`: Hung et al.'s FCDiscriminator (hfslyc/AdvSemiSeg model/discriminator.py) -> 'fc'.
"""

from __future__ import annotations

import numpy as np

from jaxgan.weights.mapping import Table, convert, require
from jaxgan.weights.torch_file import WeightsError


# ---- pix2pix U-Net ----------------------------------------------------------------------------
def _unet_prefix(level: int) -> str:
    """Module prefix of U-Net level `level` (0 = outermost): each level's Sequential holds the next
    level at index 1 (outermost) or 3 (the others)."""
    if level == 0:
        return "model.model."
    return "model.model.1.model." + "3.model." * (level - 1)


def pix2pix_options(state: dict, source: str) -> dict:
    require(state, ["model.model.0.weight"], "pix2pix", source)
    first = state["model.model.0.weight"]
    depth = 1
    while f"{_unet_prefix(depth)}1.weight" in state:
        depth += 1
    require(state, [f"{_unet_prefix(0)}3.weight"], "pix2pix", source)
    norm = "batch" if f"{_unet_prefix(1)}2.weight" in state else "instance"
    if depth < 5:
        raise WeightsError(f"{source}: a pix2pix U-Net has at least 5 levels, this file has {depth}")
    return dict(in_channels=int(first.shape[1]), out_channels=int(state[f"{_unet_prefix(0)}3.weight"].shape[1]),
                depth=depth, base_width=int(first.shape[0]), norm=norm, dropout=True, upsample="transpose")


def pix2pix_table(options: dict) -> Table:
    t, depth, batch = Table(), options["depth"], options["norm"] == "batch"
    for level in range(depth):
        p = _unet_prefix(level)
        outermost, innermost = level == 0, level == depth - 1
        t.conv(f"down_{level}", p + ("0" if outermost else "1"), bias=not batch)
        up = "3" if (outermost or innermost) else "5"
        t.conv_transpose(f"up_{level}/ConvTranspose_0", p + up, bias=outermost or not batch)
        norms = [] if outermost else [(f"up_norm_{level}", p + ("4" if innermost else "6"))]
        if not outermost and not innermost:
            norms.append((f"down_norm_{level}", p + "2"))
        for flax_name, torch_prefix in norms:
            if batch:
                t.batch_norm(f"{flax_name}/BatchNorm_0", torch_prefix)
            else:
                t.instance_norm(torch_prefix)
    return t


# ---- DeblurGAN ResNet ---------------------------------------------------------------------------
def deblurgan_options(state: dict, source: str) -> dict:
    require(state, ["model.1.weight", "model.10.conv_block.1.weight"], "deblurgan", source)
    blocks = 0
    while f"model.{10 + blocks}.conv_block.1.weight" in state:
        blocks += 1
    dropout = "model.10.conv_block.6.weight" in state
    stem = state["model.1.weight"]
    head = f"model.{17 + blocks}.weight"
    require(state, [head], "deblurgan", source)
    return dict(in_channels=int(stem.shape[1]), out_channels=int(state[head].shape[0]), base_width=int(stem.shape[0]),
                num_blocks=blocks, norm="batch" if "model.2.weight" in state else "instance", dropout=dropout,
                learn_residual=True, upsample="transpose")


def deblurgan_table(options: dict) -> Table:
    t, n, batch = Table(), options["num_blocks"], options["norm"] == "batch"
    bias = not batch

    def norm(flax_name, torch_prefix):
        if batch:
            t.batch_norm(f"{flax_name}/BatchNorm_0", torch_prefix)
        else:
            t.instance_norm(torch_prefix)

    t.conv("stem", "model.1", bias)
    norm("Norm_0", "model.2")
    for i, at in enumerate((4, 7)):
        t.conv(f"down_{i}", f"model.{at}", bias)
        norm(f"Norm_{i + 1}", f"model.{at + 1}")
    second = 6 if options["dropout"] else 5
    for i in range(n):
        p = f"model.{10 + i}.conv_block"
        t.conv(f"block_{i}/Conv_0", f"{p}.1", bias)
        norm(f"block_{i}/Norm_0", f"{p}.2")
        t.conv(f"block_{i}/Conv_1", f"{p}.{second}", bias)
        norm(f"block_{i}/Norm_1", f"{p}.{second + 1}")
    for i, at in enumerate((10 + n, 13 + n)):
        t.conv_transpose(f"up_{i}/ConvTranspose_0", f"model.{at}", bias)
        norm(f"Norm_{i + 3}", f"model.{at + 1}")
    t.conv("head", f"model.{17 + n}")
    return t


# ---- DeblurGAN-v2 FPN heads (both backbones) ----------------------------------------------------
def _fpn_head_table(t: Table) -> None:
    for level in range(1, 5):
        for j in range(2):
            t.conv(f"head_{level}_{j}", f"head{level}.block{j}", bias=False)
    t.conv("smooth", "smooth.0")
    t.conv("smooth2", "smooth2.0")
    t.conv("final", "final")
    for prefix in ("smooth.1", "smooth2.1", "fpn.td1.1", "fpn.td2.1", "fpn.td3.1"):
        t.instance_norm(prefix)
    for flax_level, td in ((3, 1), (2, 2), (1, 3)):  # td1 merges lateral3 (fpn_mobilenet.py:143-145)
        t.conv(f"top_down_{flax_level}", f"fpn.td{td}.0")
    for i in range(5):
        t.conv(f"lateral_{i}", f"fpn.lateral{i}", bias=False)


def _fpn_widths(state: dict, what: str, source: str) -> tuple[int, int]:
    require(state, ["head1.block0.weight", "fpn.lateral1.weight", "final.weight"], what, source)
    num_filters = int(state["head1.block0.weight"].shape[0])
    fpn = int(state["fpn.lateral1.weight"].shape[0])
    if fpn != 2 * num_filters:
        raise WeightsError(f"{source}: num_filters_fpn {fpn} != 2 x num_filters {num_filters} "
                           "(jaxgan's FPN generators have twice the head width)")
    return num_filters, int(state["final.weight"].shape[0])


# ---- DeblurGAN-v2 FPN-MobileNet ----------------------------------------------------------------
MOBILENET_STAGES = ((0, 2), (2, 4), (4, 7), (7, 11), (11, 16))  # fpn_mobilenet.py:90-94 (features slices)
MOBILENET_EXPANDS = (1,) + (6,) * 14  # the 15 inverted residuals the FPN uses


def fpn_mobilenet_options(state: dict, source: str) -> dict:
    num_filters, out = _fpn_widths(state, "deblurganv2_fpn_mobilenet", source)
    return dict(in_channels=3, out_channels=out, base_width=num_filters, backbone_width=1.0, norm="instance",
                backbone_norm="batch", learn_residual=True, upsample="resize")


def mobilenet_v2_table(t: Table, flax_prefix: str, torch_prefix: str) -> None:
    """MobileNetV2 features 0..15 (DeblurGAN-v2's mobilenet_v2.py layout: features.{i}.conv.{j};
    the same as torchvision's up to the nesting of the first conv) into jaxgan's MobileNetV2Features."""
    t.conv(f"{flax_prefix}/Conv_0", f"{torch_prefix}.0.0", bias=False)
    t.batch_norm(f"{flax_prefix}/Norm_0/BatchNorm_0", f"{torch_prefix}.0.1")
    for b, expand in enumerate(MOBILENET_EXPANDS):
        p, f = f"{torch_prefix}.{b + 1}.conv", f"{flax_prefix}/InvertedResidual_{b}"
        positions = (0, 3) if expand == 1 else (0, 3, 6)
        for j, at in enumerate(positions):
            t.conv(f"{f}/Conv_{j}", f"{p}.{at}", bias=False)
            t.batch_norm(f"{f}/Norm_{j}/BatchNorm_0", f"{p}.{at + 1}")


def _alias_unused(t: Table, canonical_prefix: str, stages, alias) -> None:
    """Marks the fpn.enc* aliases of the canonical backbone keys as known-unused."""
    for key, _ in list(t.entries.values()):
        if not key.startswith(canonical_prefix):
            continue
        index, rest = key[len(canonical_prefix):].split(".", 1)
        for s, (start, stop) in enumerate(stages):
            if start <= int(index) < stop:
                t.unused.add(alias(s, int(index) - start, rest))


def fpn_mobilenet_table(options: dict) -> Table:
    t = Table()
    _fpn_head_table(t)
    mobilenet_v2_table(t, "backbone", "fpn.features")
    _alias_unused(t, "fpn.features.", MOBILENET_STAGES, lambda s, j, rest: f"fpn.enc{s}.{j}.{rest}")
    t.unused_patterns.append(r"fpn\.features\.(1[6-8])\..*")  # MobileNetV2's tail, unused by the FPN
    return t


# ---- DeblurGAN-v2 FPN-InceptionResNetV2 ---------------------------------------------------------
def fpn_inception_options(state: dict, source: str) -> dict:
    num_filters, out = _fpn_widths(state, "deblurganv2_fpn_inception", source)
    return dict(in_channels=3, out_channels=out, base_width=num_filters, norm="instance", learn_residual=True)


def fpn_inception_table(options: dict) -> Table:
    from jaxgan.nets.fpn_inception import backbone_torch_names  # deferred: jax, kept out of `jaxgan --help`

    t = Table()
    _fpn_head_table(t)
    for flax_prefix, torch_prefix in backbone_torch_names():
        t.conv(f"backbone/{flax_prefix}/conv", f"fpn.inception.{torch_prefix}.conv", bias=False)
        t.batch_norm(f"backbone/{flax_prefix}/bn", f"fpn.inception.{torch_prefix}.bn")
    for flax_prefix, torch_prefix in backbone_torch_names(residual_convs=True):
        t.conv(f"backbone/{flax_prefix}", f"fpn.inception.{torch_prefix}")
    aliases = {"conv2d_1a": "enc0", "conv2d_2a": "enc1.0", "conv2d_2b": "enc1.1", "conv2d_3b": "enc2.0",
               "conv2d_4a": "enc2.1", "mixed_5b": "enc3.0", "repeat": "enc3.1", "mixed_6a": "enc3.2",
               "repeat_1": "enc4.0", "mixed_7a": "enc4.1"}
    for key, _ in list(t.entries.values()):
        if key.startswith("fpn.inception."):
            head, rest = key[len("fpn.inception."):].split(".", 1)
            t.unused.add(f"fpn.{aliases[head]}.{rest}")
    # Inception-ResNet-v2's tail after mixed_7a (and its classifier): held by the original, unused.
    t.unused_patterns.append(r"fpn\.inception\.(repeat_2|block8|conv2d_7b|last_linear)\..*")
    return t


# ---- Hung et al.'s FCDiscriminator ----------------------------------------------------------------
def fc_discriminator_table() -> Table:
    """conv1..conv4 and classifier (discriminator.py:10-14), each with a bias; jaxgan's 'fc' D uses
    the same module names."""
    t = Table()
    for name in ("conv1", "conv2", "conv3", "conv4", "classifier"):
        t.conv(name, name)
    return t


FORMATS = {
    "pix2pix": ("unet", pix2pix_options, pix2pix_table),
    "deblurgan": ("resnet", deblurgan_options, deblurgan_table),
    "deblurganv2_fpn_mobilenet": ("fpn_mobilenet", fpn_mobilenet_options, fpn_mobilenet_table),
    "deblurganv2_fpn_inception": ("fpn_inception", fpn_inception_options, fpn_inception_table),
}


def sample_size(generator: str) -> int:
    """An input side the generator accepts, for shaping its variables."""
    return {"fpn_inception": 128, "fpn_mobilenet": 64}.get(generator, 64)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise WeightsError(f"unknown format {fmt!r}; valid formats: {', '.join(sorted(FORMATS))}")


def convert_generator(fmt: str, state: dict[str, np.ndarray], source: str = "state dict"):
    """(generator name, options, flax variables) of the original checkpoint `state` of format `fmt`."""
    import jax
    import jax.numpy as jnp

    from jaxgan import nets  # deferred: jax, kept out of `jaxgan --help` (which lists FORMATS)

    _check_format(fmt)
    name, options_fn, table_fn = FORMATS[fmt]
    options = options_fn(state, source)
    module = nets.make_generator(name, **options)
    side = sample_size(name)
    shapes = jax.eval_shape(lambda: module.init({"params": jax.random.key(0), "dropout": jax.random.key(1)},
                                                jnp.zeros((1, side, side, options["in_channels"]))))
    variables = convert(state, table_fn(options), shapes, fmt, source)
    return name, options, variables
