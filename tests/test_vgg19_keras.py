"""Keras's VGG19 weights file (.h5) against torchvision's layout: a tiny random file written as Keras
lays it out (old and new dataset names) loads to the params of the torchvision state dict holding the
same weights, conv1_1 converted from caffe's BGR input by its closed form; that conv then computes on
torchvision's input what Keras's computes on the caffe-preprocessed one; a bad file names the key."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.nets import vgg19
from jaxgan.weights.torch_file import WeightsError

h5py = pytest.importorskip("h5py")

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications.imagenet_utils.preprocess_input, 'caffe'
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _keras_weights(seed=0) -> dict:
    """{'block{b}_conv{c}': (kernel HWIO, bias)} random, He-scaled (activations stay O(1))."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, (kernel_shape, bias_shape) in vgg19.conv_shapes().items():
        block, conv = name[len("conv"):].split("_")
        scale = np.sqrt(2.0 / (9 * kernel_shape[2]))
        weights[f"block{block}_conv{conv}"] = (
            (scale * rng.standard_normal(kernel_shape)).astype(np.float32),
            (0.1 * rng.standard_normal(bias_shape)).astype(np.float32))
    return weights


def _write_h5(path, weights, naming="new", drop=None):
    """As Keras's save_weights: a group per layer with attribute weight_names; `naming` 'old'
    (block1_conv1_W_1:0 datasets in the group), 'new' (block1_conv1/kernel:0: a subgroup) or 'bare'
    (no weight_names attribute). `drop`: a group, or 'group/bias', left out."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [k.encode() for k in weights]
        for layer, (kernel, bias) in weights.items():
            if drop == layer:
                continue
            g = f.create_group(layer)
            names = ([f"{layer}_W_1:0", f"{layer}_b_1:0"] if naming == "old"
                     else [f"{layer}/kernel:0", f"{layer}/bias:0"])
            arrays = [kernel, bias]
            if drop == f"{layer}/bias":
                names, arrays = names[:1], arrays[:1]
            if naming != "bare":
                g.attrs["weight_names"] = [n.encode() for n in names]
            for n, a in zip(names, arrays):
                g.create_dataset(n, data=a)
    return path


def _torchvision_conv1(kernel, bias):
    """Keras's conv1_1 as torchvision's, written out channel by channel: RGB input c is Keras's BGR
    channel 2 - c, which sees 255 std_c t_c + 255 mean_c - caffe mean of that channel."""
    new_kernel = np.zeros_like(kernel, np.float64)
    new_bias = bias.astype(np.float64).copy()
    for c in range(3):
        new_kernel[:, :, c, :] = 255.0 * STD[c] * kernel[:, :, 2 - c, :]
        new_bias += kernel[:, :, 2 - c, :].astype(np.float64).sum((0, 1)) * (255.0 * MEAN[c] - CAFFE_MEAN_BGR[2 - c])
    return new_kernel, new_bias


def _torchvision_file(path, weights):
    """torchvision's VGG19 state dict holding the same weights (conv1_1 converted as above)."""
    torch = pytest.importorskip("torch")  # only this file format needs it
    state = {}
    for name in vgg19.CONVS:
        block, conv = name[len("conv"):].split("_")
        kernel, bias = weights[f"block{block}_conv{conv}"]
        if name == "conv1_1":
            kernel, bias = _torchvision_conv1(kernel, bias)
        index = vgg19.torchvision_index(name)
        state[f"features.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(
            np.asarray(kernel, np.float32).transpose(3, 2, 0, 1)))
        state[f"features.{index}.bias"] = torch.from_numpy(np.asarray(bias, np.float32))
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def weights():
    return _keras_weights()


@pytest.fixture(scope="module")
def torchvision_params(weights, tmp_path_factory):
    return vgg19.load_vgg19_params(_torchvision_file(tmp_path_factory.mktemp("tv") / "vgg19.pth", weights))


@pytest.mark.parametrize("naming", ["new", "old", "bare"])
def test_keras_file_loads_to_the_torchvision_params_of_the_same_weights(naming, weights, torchvision_params,
                                                                       tmp_path):
    path = _write_h5(tmp_path / vgg19.KERAS_FILE, weights, naming)
    params = vgg19.load_vgg19_params(path)
    assert sorted(params) == sorted(torchvision_params) == sorted(vgg19.CONVS)
    for name in vgg19.CONVS:
        for leaf in ("kernel", "bias"):
            got, expected = params[name][leaf], torchvision_params[name][leaf]
            assert got.dtype == np.float32 and got.shape == expected.shape
            if name == "conv1_1":  # converted in float64 on both sides, rounded to float32
                np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
            else:
                np.testing.assert_array_equal(got, expected)


def test_converted_conv1_on_torchvision_input_is_keras_conv1_on_caffe_input(weights, tmp_path):
    """The same photo: torchvision's (x / 255 - mean) / std in RGB, Keras's x - caffe mean in BGR.
    Inside the one-pixel border the conv1_1 outputs agree; on it they differ by the padding's meaning."""
    params = vgg19.load_vgg19_params(_write_h5(tmp_path / "vgg19.h5", weights))
    keras = vgg19.load_keras_vgg19_params(tmp_path / "vgg19.h5")
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, (2, 12, 12, 3)).astype(np.float32)  # RGB pixels
    torchvision_input = (x / 255.0 - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
    caffe_input = x[..., ::-1] - np.asarray(CAFFE_MEAN_BGR, np.float32)
    features = jax.jit(vgg19.vgg19_features, static_argnames="layers")
    ours = np.asarray(features(params, jnp.asarray(torchvision_input), layers=("conv1_1",))["conv1_1"])
    theirs = np.asarray(features(keras, jnp.asarray(np.ascontiguousarray(caffe_input)), layers=("conv1_1",))["conv1_1"])
    scale = np.abs(theirs).max()
    assert np.abs(ours - theirs)[:, 1:-1, 1:-1].max() <= 1e-5 * scale
    border = np.abs(ours - theirs).max()
    assert 1e-5 * scale < border < 0.01 * scale  # the padding: up to 0.5 grey levels x the kernel


def test_keras_file_is_found_by_the_env_var_and_in_the_cache_folder(weights, tmp_path, monkeypatch):
    path = _write_h5(tmp_path / "elsewhere.hdf5", weights)
    monkeypatch.setenv(vgg19.ENV_VAR, str(path))
    assert vgg19.weights_path() == path
    monkeypatch.delenv(vgg19.ENV_VAR)
    monkeypatch.setenv("HOME", str(tmp_path))
    cached = tmp_path / ".cache" / "jaxgan" / "weights" / vgg19.KERAS_FILE
    cached.parent.mkdir(parents=True)
    _write_h5(cached, weights)
    assert vgg19.weights_path() == cached
    np.testing.assert_array_equal(vgg19.load_vgg19_params()["conv5_4"]["kernel"], weights["block5_conv4"][0])


@pytest.mark.parametrize("drop,key", [("block3_conv2", "'block3_conv2'"), ("block4_conv1/bias", "'block4_conv1/bias'")])
def test_keras_file_missing_a_key_names_the_file_and_the_key(drop, key, weights, tmp_path):
    path = _write_h5(tmp_path / "broken.h5", weights, drop=drop)
    with pytest.raises(WeightsError, match=rf"broken\.h5: missing key {key}"):
        vgg19.load_vgg19_params(path)


def test_keras_file_with_a_wrong_shape_or_not_hdf5_is_refused(weights, tmp_path):
    bad = dict(weights)
    kernel, bias = bad["block2_conv1"]
    bad["block2_conv1"] = (kernel[:, :, :32], bias)
    with pytest.raises(WeightsError, match=r"'block2_conv1/kernel' has shape \(3, 3, 32, 128\), expected \(3, 3, 64, 128\)"):
        vgg19.load_vgg19_params(_write_h5(tmp_path / "shape.h5", bad))
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(WeightsError, match=r"text\.h5: not a readable HDF5 file"):
        vgg19.load_vgg19_params(tmp_path / "text.h5")
