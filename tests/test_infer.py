"""Inference on any image size: padding to the network's multiple, tiles blended without seams."""

import numpy as np
import pytest
from scipy import ndimage

from jaxgan import infer


def _checked(multiple, fn):
    """Wraps fn so that it fails unless called on one (1, h, w, c) batch with sides divisible by multiple."""
    calls = []

    def apply(batch):
        assert batch.ndim == 4 and batch.shape[0] == 1
        assert batch.shape[1] % multiple == 0 and batch.shape[2] % multiple == 0, batch.shape
        calls.append(batch.shape)
        return fn(batch)

    return apply, calls


@pytest.mark.parametrize("shape", [(37, 53, 3), (64, 64, 3), (5, 7, 3)])
def test_pad_and_crop_back_keeps_size_and_values(shape):
    image = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    apply, calls = _checked(16, lambda b: b * 0.5)
    out = infer.predict_array(apply, image, multiple=16)
    assert out.shape == shape
    np.testing.assert_allclose(out, image * 0.5, rtol=0, atol=1e-7)
    assert len(calls) == 1


def test_tiles_of_one_shape_cover_the_image_exactly_for_pointwise_net():
    image = np.random.default_rng(1).uniform(-1, 1, (150, 230, 3)).astype(np.float32)
    apply, calls = _checked(16, lambda b: np.tanh(b) * 2.0)
    out = infer.predict_array(apply, image, multiple=16, tile_size=64, overlap=16)
    np.testing.assert_allclose(out, np.tanh(image) * 2.0, atol=1e-6)
    assert len(set(calls)) == 1 and len(calls) > 4  # one compiled shape, many tiles


def test_blending_hides_seams_of_a_local_operator():
    """A 9x9 box filter tiled with overlap: blended tiles stay close to the whole-image result and
    much closer than hard-cut tiles (no overlap), whose errors sit on the seams."""
    rng = np.random.default_rng(2)
    image = ndimage.gaussian_filter(rng.uniform(-1, 1, (160, 200, 3)), (2, 2, 0)).astype(np.float32)

    def box(b):
        return ndimage.uniform_filter(b, size=(1, 9, 9, 1), mode="reflect")

    whole = box(image[None])[0]
    blended = infer.predict_array(box, image, multiple=8, tile_size=64, overlap=24)
    hard = infer.predict_array(box, image, multiple=8, tile_size=64, overlap=0)
    err_blended = np.abs(blended - whole)[8:-8, 8:-8].max()
    err_hard = np.abs(hard - whole)[8:-8, 8:-8].max()
    assert err_blended < 0.35 * err_hard
    assert blended.shape == image.shape


def test_wrong_rank_is_rejected():
    with pytest.raises(ValueError, match=r"\(H, W, C\).*\(4, 4\)"):
        infer.predict_array(lambda b: b, np.zeros((4, 4)), multiple=1)
