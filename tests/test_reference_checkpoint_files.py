"""Generator files saved exactly as each original saves them load through jaxgan.weights
(load_state_dict + convert_generator) and give the PyTorch module's output, in both torch.save
formats: the zip of torch >= 1.6 and the legacy pickle of the originals' era (torch 0.4 / 1.0).

- pix2pix (Bleuje/pytorch-CycleGAN-and-pix2pix models/base_model.py:104-108): G wrapped in
  DataParallel (networks.py:69 init_net), saved as torch.save(net.module.cpu().state_dict()): no prefix.
- DeblurGAN (KupynOrest/DeblurGAN models/base_model.py:42-45): torch.save(network.cpu().state_dict())
  of the bare network (networks.py:59 netG.cuda(); data_parallel only inside forward).
- DeblurGAN-v2 (VITA-Group/DeblurGANv2 train.py:45-50): torch.save({'model': self.netG.state_dict()})
  with netG = nn.DataParallel(model_g) (models/networks.py:293): every key prefixed 'module.'.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from jaxgan import nets  # noqa: E402
from jaxgan.weights import convert_generator, load_state_dict  # noqa: E402
from reference import deblurgan, deblurganv2, pix2pix  # noqa: E402
from reference_helpers import max_errors, nchw, nhwc, randomize_norm_stats  # noqa: E402


def _save_pix2pix(net, path, zip_format):
    wrapped = torch.nn.DataParallel(net)  # init_net's wrapper (no GPU here: it only holds .module)
    torch.save(wrapped.module.cpu().state_dict(), path, _use_new_zipfile_serialization=zip_format)


def _save_deblurgan(net, path, zip_format):
    torch.save(net.cpu().state_dict(), path, _use_new_zipfile_serialization=zip_format)


def _save_deblurganv2(net, path, zip_format):
    torch.save({"model": torch.nn.DataParallel(net).state_dict()}, path, _use_new_zipfile_serialization=zip_format)


def _pix2pix():
    torch.manual_seed(0)
    net = pix2pix.init_weights(pix2pix.UnetGenerator(3, 3, num_downs=5, ngf=4))
    randomize_norm_stats(net)
    return net.eval(), _save_pix2pix, 32


def _deblurgan():
    torch.manual_seed(1)
    return deblurgan.ResnetGenerator(3, 3, ngf=4, n_blocks=1).eval(), _save_deblurgan, 32


def _deblurganv2():
    torch.manual_seed(2)
    net = deblurganv2.FPNMobileNet(num_filters=4, num_filters_fpn=8)
    randomize_norm_stats(net)
    return deblurganv2.per_image_norm_eval(net), _save_deblurganv2, 64


CASES = {"pix2pix": _pix2pix, "deblurgan": _deblurgan, "deblurganv2_fpn_mobilenet": _deblurganv2}


@pytest.mark.parametrize("zip_format", [False, True], ids=["legacy", "zip"])
@pytest.mark.parametrize("fmt", sorted(CASES))
def test_a_file_saved_as_the_original_saves_it_predicts_as_pytorch(fmt, zip_format, tmp_path):
    net, save, side = CASES[fmt]()
    path = tmp_path / "G.pth"
    save(net, path, zip_format)
    with open(path, "rb") as f:
        assert (f.read(4) == b"PK\x03\x04") == zip_format  # the format asked for was written
    state = load_state_dict(path)
    name, options, variables = convert_generator(fmt, state, str(path))
    image = np.random.default_rng(0).uniform(-1, 1, (1, side, side, 3)).astype(np.float32)
    module = nets.make_generator(name, **options)
    out = jax.jit(lambda v, x: module.apply(v, x, train=False))(variables, jnp.asarray(image))
    with torch.no_grad():
        expected = nhwc(net(nchw(image)))
    abs_err, rel_err = max_errors(out, expected)
    assert abs_err < 1e-4, (abs_err, rel_err)
    assert np.abs(expected - image).max() > 1e-2  # the network changes the image: the check is not trivial
