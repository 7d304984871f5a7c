"""VGG19 (perceptual loss) and MobileNetV2 (FPN backbone) with torchvision-layout weights: jaxgan's
networks given a torchvision state dict (random weights, reference.torchvision_layout) compute the
PyTorch features; without a file, one message says which file to put where."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from jaxgan import losses  # noqa: E402
from jaxgan.config_io import load_config_file  # noqa: E402
from jaxgan.nets import vgg19  # noqa: E402
from jaxgan.nets.fpn_mobilenet import MobileNetV2Features  # noqa: E402
from jaxgan.weights import WeightsError  # noqa: E402
from jaxgan.train import state as state_lib  # noqa: E402
from jaxgan.train import steps, transfer  # noqa: E402
from jaxgan.weights.imagenet import load_mobilenet_v2_variables  # noqa: E402
from reference import deblurganv2  # noqa: E402
from reference.torchvision_layout import VGG, VGG19_CFG, MobileNetV2, vgg19_features_upto  # noqa: E402
from reference_helpers import max_errors, nchw, nhwc, randomize_norm_stats  # noqa: E402


def test_vgg19_features_match_torchvision_layout(tmp_path):
    torch.manual_seed(0)
    net = VGG(VGG19_CFG).eval()
    with torch.no_grad():  # VGG's He-scale weights: keep activations O(1) through 16 layers
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(1.5)
    path = tmp_path / "vgg19.pth"
    torch.save(dict(net.state_dict(), **{"classifier.0.weight": torch.zeros(2, 2)}), path)
    params = vgg19.load_vgg19_params(path)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    layers = ("conv3_3", "relu3_3", "conv5_4")
    outs = jax.jit(vgg19.vgg19_features, static_argnames="layers")(params, jnp.asarray(x), layers=layers)
    assert sorted(outs) == sorted(layers)
    for layer, index, relu in (("conv3_3", 14, False), ("relu3_3", 14, True), ("conv5_4", 34, False)):
        with torch.no_grad():
            expected = vgg19_features_upto(net, index)(nchw(x))
            expected = nhwc(torch.relu(expected) if relu else expected)
        out = np.asarray(outs[layer])
        abs_err, rel_err = max_errors(out, expected)
        scale = np.abs(expected).max()
        assert abs_err <= 1e-4 * max(scale, 1.0), (layer, abs_err, rel_err, scale)
    assert vgg19.torchvision_index("conv3_3") == 14 and vgg19.torchvision_index("conv5_4") == 34


def test_vgg19_missing_file_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv(vgg19.ENV_VAR, str(tmp_path / "nowhere.pth"))
    with pytest.raises(WeightsError, match=r"nowhere\.pth.*vgg19.*JAXGAN_VGG19_WEIGHTS"):
        vgg19.load_vgg19_params()
    monkeypatch.delenv(vgg19.ENV_VAR)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(WeightsError, match=r"\.cache/jaxgan/weights/vgg19\.pth"):
        vgg19.load_vgg19_params()


def _backbone_outputs(variables, x):
    return jax.jit(lambda v, x: MobileNetV2Features().apply(v, x, train=False))(variables, jnp.asarray(x))


@pytest.mark.parametrize("layout", ["torchvision", "deblurganv2"])
def test_mobilenet_v2_backbone_matches(layout, tmp_path):
    torch.manual_seed(1)
    if layout == "torchvision":
        net = MobileNetV2()
    else:
        net = deblurganv2.MobileNetV2()
    randomize_norm_stats(net)
    net.eval()
    path = tmp_path / "mobilenet_v2.pth"
    torch.save(net.state_dict(), path)
    variables = load_mobilenet_v2_variables(path)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    stages = _backbone_outputs(variables, x)
    h, expected = nchw(x), []
    with torch.no_grad():
        for start, stop in ((0, 2), (2, 4), (4, 7), (7, 11), (11, 16)):
            for m in list(net.features)[start:stop]:
                h = m(h)
            expected.append(nhwc(h))
    for out, exp in zip(stages, expected):
        abs_err, _ = max_errors(out, exp)
        assert abs_err <= 1e-4 * max(np.abs(exp).max(), 1.0)


def test_mobilenet_v2_missing_file_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("JAXGAN_MOBILENET_V2_WEIGHTS", raising=False)
    with pytest.raises(WeightsError, match=r"\.cache/jaxgan/weights/mobilenet_v2\.pth.*JAXGAN_MOBILENET_V2_WEIGHTS"):
        load_mobilenet_v2_variables()


def _random_vgg19(seed=0):
    torch.manual_seed(seed)
    net = VGG(VGG19_CFG).eval()
    with torch.no_grad():  # VGG's He-scale weights: keep activations O(1) through the layers
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(1.5)
    return net


@pytest.mark.parametrize("name, normalise", [("deblurgan_gopro", False), ("deblurganv2_mobilenet_gopro", True)])
def test_published_config_perceptual_loss_with_a_vgg19_file_is_the_torch_loss(name, normalise, tmp_path,
                                                                             monkeypatch):
    """The published config's perceptual term, from a torchvision VGG19 state dict the user supplies
    ($JAXGAN_VGG19_WEIGHTS): features[:15] and the feature MSE equal PyTorch's (DeblurGAN: raw
    [-1, 1] input; DeblurGAN-v2: ImageNet-normalised)."""
    net = _random_vgg19()
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(net.state_dict(), path)
    monkeypatch.setenv(vgg19.ENV_VAR, str(path))
    config = load_config_file(f"experiments/configs/{name}.py")
    loss_nets = steps.make_loss_nets(config)
    rng = np.random.default_rng(2)
    pred, target = (rng.uniform(-1, 1, (2, 24, 24, 3)).astype(np.float32) for _ in range(2))
    loss = float(jax.jit(lambda v, p, t: losses.perceptual_loss(
        v, p, t, config.loss.perceptual_layers, net=config.loss.perceptual_net,
        input=config.loss.perceptual_input))(loss_nets["vgg"], pred, target))

    def torch_input(x):
        t = (nchw(x) + 1) / 2
        mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
        return (t - mean[:, None, None]) / std[:, None, None] if normalise else nchw(x)

    features = vgg19_features_upto(net, 14)
    with torch.no_grad():
        f_pred, f_target = features(torch_input(pred)), features(torch_input(target))
        expected = float(torch.nn.functional.mse_loss(f_pred, f_target))
    ours = np.asarray(vgg19.vgg19_features(loss_nets["vgg"], jnp.asarray(pred if not normalise else
                                           np.asarray(losses.perceptual.network_input(pred, "imagenet"))))["conv3_3"])
    abs_err, _ = max_errors(ours, nhwc(f_pred))
    assert abs_err <= 1e-4 * max(np.abs(nhwc(f_pred)).max(), 1.0)
    assert loss == pytest.approx(expected, rel=1e-4)


@pytest.mark.slow
def test_published_deblurganv2_config_loads_the_mobilenet_file_into_the_backbone(tmp_path):
    """variants.transfer_from='imagenet:mobilenet_v2' + transfer_file (a torchvision state dict):
    apply_transfer puts it under G's 'backbone/', whose features then equal PyTorch's."""
    torch.manual_seed(3)
    net = MobileNetV2()
    randomize_norm_stats(net, 3)
    net.eval()
    path = tmp_path / "mobilenet_v2-b0353104.pth"
    torch.save(net.state_dict(), path)
    config = load_config_file("experiments/configs/deblurganv2_mobilenet_gopro.py")
    config.variants.transfer_file = str(path)
    config.discriminator.name = "patchgan"  # D is not transferred; keep its init cheap
    config.discriminator.options = dict(in_channels=3, base_width=4, num_layers=1, norm="instance")
    transfer.check_source(config)
    g, d = state_lib.make_modules(config)
    x = np.random.default_rng(3).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    state = jax.jit(lambda k: state_lib.create_state(config, g, d, {"input": x}, k))(jax.random.PRNGKey(0))
    state, report = transfer.apply_transfer(config, state, verbose=False)
    assert report.loaded and not report.skipped
    backbone = {"params": state.g.params["backbone"], "batch_stats": state.g.batch_stats["backbone"]}
    stages = _backbone_outputs(backbone, x)
    h = nchw(x)
    with torch.no_grad():
        for m in list(net.features)[:16]:
            h = m(h)
    abs_err, _ = max_errors(stages[-1], nhwc(h))
    assert abs_err <= 1e-4 * max(np.abs(nhwc(h)).max(), 1.0)


def _random_inception(seed):
    """Cadene's InceptionResNetV2 (reference.deblurganv2, full size) with random weights and statistics."""
    torch.manual_seed(seed)
    net = deblurganv2.InceptionResNetV2()
    randomize_norm_stats(net, seed)
    with torch.no_grad():  # keep the activations O(1) through its 30 residual blocks
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(0.5)
    return net.eval()


def _inception_stages(net, x):
    """enc0..enc4 as fpn_inception.py:96-115 slices the network."""
    stages = ((net.conv2d_1a,), (net.conv2d_2a, net.conv2d_2b, net.maxpool_3a),
              (net.conv2d_3b, net.conv2d_4a, net.maxpool_5a), (net.mixed_5b, net.repeat, net.mixed_6a),
              (net.repeat_1, net.mixed_7a))
    h, out = nchw(x), []
    with torch.no_grad():
        for stage in stages:
            for m in stage:
                h = m(h)
            out.append(nhwc(h))
    return out


@pytest.mark.slow
def test_published_inception_config_loads_cadenes_file_into_the_backbone(tmp_path, monkeypatch):
    """deblurganv2_inception_gopro.py (variants.transfer_from='imagenet:inception_resnet_v2') with a
    state dict laid out as Cadene's inceptionresnetv2-520b38e4.pth: apply_transfer fills all of G's
    'backbone/' (nothing skipped), whose five stages then equal PyTorch's; the backbone is frozen."""
    from jaxgan.nets.fpn_inception import InceptionResNetV2Features

    net = _random_inception(4)
    path = tmp_path / "inceptionresnetv2-520b38e4.pth"
    torch.save(net.state_dict(), path)
    config = load_config_file("experiments/configs/deblurganv2_inception_gopro.py")
    config.generator.options.base_width = 4  # the heads are not transferred: keep them small
    config.discriminator.name = "patchgan"
    config.discriminator.options = dict(in_channels=3, base_width=4, num_layers=1, norm="instance")
    monkeypatch.setenv("JAXGAN_INCEPTION_RESNET_V2_WEIGHTS", str(path))  # the lookup when transfer_file is empty
    transfer.check_source(config)
    assert tuple(config.variants.freeze_prefixes) == ("backbone/",) and config.variants.unfreeze_step == 3000
    g, d = state_lib.make_modules(config)
    x = np.random.default_rng(4).uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    state = jax.jit(lambda k: state_lib.create_state(config, g, d, {"input": x}, k))(jax.random.PRNGKey(0))
    state, report = transfer.apply_transfer(config, state, verbose=False)
    assert report.loaded and not report.skipped
    n_backbone = len(jax.tree.leaves(state.g.params["backbone"])) + len(jax.tree.leaves(state.g.batch_stats))
    assert len(report.loaded) == n_backbone
    backbone = {"params": state.g.params["backbone"], "batch_stats": state.g.batch_stats["backbone"]}
    stages = jax.jit(lambda v, x: InceptionResNetV2Features().apply(v, x, train=False))(backbone, jnp.asarray(x))
    for out, exp in zip(stages, _inception_stages(net, x)):
        abs_err, _ = max_errors(out, exp)
        assert abs_err <= 1e-4 * max(np.abs(exp).max(), 1.0)


def test_inception_missing_file_says_where(tmp_path, monkeypatch):
    """No file: one line naming the default place, the file to put there and the variable to set;
    check_source stops before any model is built."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("JAXGAN_INCEPTION_RESNET_V2_WEIGHTS", raising=False)
    config = load_config_file("experiments/configs/deblurganv2_inception_gopro.py")
    with pytest.raises(WeightsError, match=r"\.cache/jaxgan/weights/inception_resnet_v2\.pth: save .*"
                                           r"inceptionresnetv2-520b38e4\.pth.*JAXGAN_INCEPTION_RESNET_V2_WEIGHTS") as e:
        transfer.check_source(config)
    assert "\n" not in str(e.value)
