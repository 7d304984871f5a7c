"""VGG19 (perceptual loss) and MobileNetV2 (FPN backbone) with torchvision-layout weights: jaxgan's
networks given a torchvision state dict (random weights, reference.torchvision_layout) compute the
PyTorch features; without a file, one message says which file to put where."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from jaxgan.nets import vgg19  # noqa: E402
from jaxgan.nets.fpn_mobilenet import MobileNetV2Features  # noqa: E402
from jaxgan.weights import WeightsError  # noqa: E402
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
    apply = jax.jit(vgg19.vgg19_features, static_argnames="layer")
    for layer, index, relu in (("conv3_3", 14, False), ("relu3_3", 14, True), ("conv5_4", 34, False)):
        with torch.no_grad():
            expected = vgg19_features_upto(net, index)(nchw(x))
            expected = nhwc(torch.relu(expected) if relu else expected)
        out = np.asarray(apply(params, jnp.asarray(x), layer=layer))
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
