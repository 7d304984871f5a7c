"""jaxgan.infer: any image size, padded to the network's multiple, tiles blended without seams, buckets."""

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
    out = infer.apply_tiled(apply, image, multiple=16)
    assert out.shape == shape
    np.testing.assert_allclose(out, image * 0.5, rtol=0, atol=1e-7)
    assert len(calls) == 1


def test_tiles_of_one_shape_cover_the_image_exactly_for_pointwise_net():
    image = np.random.default_rng(1).uniform(-1, 1, (150, 230, 3)).astype(np.float32)
    apply, calls = _checked(16, lambda b: np.tanh(b) * 2.0)
    out = infer.apply_tiled(apply, image, multiple=16, tile_size=64, overlap=16)
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
    blended = infer.apply_tiled(box, image, multiple=8, tile_size=64, overlap=24)
    hard = infer.apply_tiled(box, image, multiple=8, tile_size=64, overlap=0)
    err_blended = np.abs(blended - whole)[8:-8, 8:-8].max()
    err_hard = np.abs(hard - whole)[8:-8, 8:-8].max()
    assert err_blended < 0.35 * err_hard
    assert blended.shape == image.shape


def test_wrong_rank_is_rejected():
    with pytest.raises(ValueError, match=r"\(H, W, C\).*\(4, 4\)"):
        infer.apply_tiled(lambda b: b, np.zeros((4, 4)), multiple=1)


# ---- bucket shapes: a folder of many sizes compiles a handful of programs ---------------------------

def test_bucket_shape_is_the_smallest_bucket_side_holding_each_side():
    sides = (128, 256, 384, 512)
    assert infer.bucket_shape(300, 500, sides) == (384, 512)
    assert infer.bucket_shape(128, 129, sides) == (128, 256)
    assert infer.bucket_shape(513, 100, sides) is None  # beyond the largest: no bucket
    # bucket sides rounded up to the generator's multiple: 384 -> 512, 128 -> 256 for a multiple of 256
    assert infer.bucket_shape(300, 100, sides, multiple=256) == (512, 256)


def test_bucket_padding_extends_todays_padding():
    """The bucketed input, cut to today's padded size, IS today's input (the same reflect padding)."""
    from jaxgan.nets.layers import pad_to_multiple

    image = np.random.default_rng(3).uniform(-1, 1, (37, 53, 3)).astype(np.float32)
    today = np.asarray(pad_to_multiple(image[None], 16))[0]
    seen = []
    infer.apply_tiled(lambda b: seen.append(b) or b, image, multiple=16, buckets=(128,))
    assert seen[0].shape == (1, 128, 128, 3)
    np.testing.assert_array_equal(seen[0][0, :today.shape[0], :today.shape[1]], today)


def test_buckets_keep_a_local_operator_exact():
    """A 5x5 box filter (receptive radius 2): where its window stays inside today's padded image the
    bucketed result equals today's (padding beyond is never seen)."""
    rng = np.random.default_rng(4)

    def box(b):
        return ndimage.uniform_filter(b, size=(1, 5, 5, 1), mode="reflect")

    for shape in [(37, 53, 3), (64, 48, 3), (100, 30, 3)]:
        image = rng.uniform(-1, 1, shape).astype(np.float32)
        today = infer.apply_tiled(box, image, multiple=16)
        apply, calls = _checked(16, box)
        bucketed = infer.apply_tiled(apply, image, multiple=16, buckets=(64, 128))
        h, w = shape[:2]
        np.testing.assert_allclose(bucketed[:h - 2, :w - 2], today[:h - 2, :w - 2], rtol=0, atol=1e-6)
        assert bucketed.shape == shape and calls[0][1:3] == infer.bucket_shape(h, w, (64, 128), 16)


def test_buckets_leave_tiling_alone():
    """An image larger than the tile is tiled as before (tiles of one shape), buckets or not."""
    image = np.random.default_rng(5).uniform(-1, 1, (150, 230, 3)).astype(np.float32)
    apply, calls = _checked(16, lambda b: np.tanh(b))
    out = infer.apply_tiled(apply, image, multiple=16, tile_size=64, overlap=16, buckets=(256,))
    np.testing.assert_allclose(out, np.tanh(image), atol=1e-6)
    assert set(calls) == {(1, 64, 64, 3)}


def test_bucket_ladder_is_the_sides_below_the_tile_and_the_tile_itself():
    assert infer.bucket_ladder((256, 512, 768), 32, 768) == [256, 512, 768]
    assert infer.bucket_ladder((256, 512, 768), 32, 640) == [256, 512, 640]  # larger images: tiled at 640
    assert infer.bucket_ladder((256, 512, 768), 32, 1024) == [256, 512, 768, 1024]
    assert infer.bucket_ladder((100, 200), 64) == [128, 256]  # no tile: the sides, rounded up


def test_a_folder_of_many_sizes_runs_through_a_handful_of_shapes():
    """60 sizes of 5 to 400 px a side, tile 192: with the ladder (64, 128, 192) at most 3 x 3 whole-image
    shapes plus the one tile shape of every larger image, against one shape per padded size of the
    images within a tile without buckets; a pointwise net's output is the same either way."""
    rng = np.random.default_rng(7)
    sizes = sorted({tuple(int(v) for v in rng.integers(5, 400, 2)) for _ in range(60)})
    shapes = {}
    for buckets in ((), (64, 128, 192)):
        apply, calls = _checked(16, np.tanh)
        for h, w in sizes:
            image = rng.uniform(-1, 1, (h, w, 3)).astype(np.float32)
            out = infer.apply_tiled(apply, image, multiple=16, tile_size=192, overlap=32, buckets=buckets)
            np.testing.assert_allclose(out, np.tanh(image), atol=1e-6)
        shapes[buckets] = set(calls)
    allowed = {(1, a, b, 3) for a in (64, 128, 192) for b in (64, 128, 192)}  # (192, 192): also the tile's
    assert shapes[(64, 128, 192)] <= allowed and (1, 192, 192, 3) in shapes[(64, 128, 192)]
    assert len(shapes[()]) >= 10 and len(shapes[(64, 128, 192)]) <= 9


def test_buckets_that_are_the_padded_sides_change_nothing_even_for_image_wide_statistics():
    """A whole-image normalisation (as instance norm) changes with any padding beyond today's; a ladder
    that holds every multiple up to the tile (multiple 64: 64, 128, 192) pads each image exactly to
    today's padded shape, so the result is today's; a finer multiple (16) under the same ladder is not."""
    def normalise(b):
        return (b - b.mean(axis=(1, 2), keepdims=True)) / b.std(axis=(1, 2), keepdims=True)

    rng = np.random.default_rng(8)
    for shape in [(37, 53, 3), (64, 130, 3), (150, 70, 3)]:
        image = rng.uniform(-1, 1, shape).astype(np.float32)
        today = infer.apply_tiled(normalise, image, multiple=64)
        bucketed = infer.apply_tiled(normalise, image, multiple=64, buckets=(64, 128, 192))
        np.testing.assert_allclose(bucketed, today, rtol=0, atol=1e-6)
        finer = infer.apply_tiled(normalise, image, multiple=16, buckets=(64, 128, 192))
        assert np.abs(finer - infer.apply_tiled(normalise, image, multiple=16)).max() > 1e-3


def test_buckets_keep_a_local_conv_net_exact_away_from_the_bottom_right_border():
    """A U-Net without normalisation (depth 2, eval mode): its output at a pixel whose receptive field
    stays inside today's padded image is today's within 1e-5 (8 px from the bottom / right border: here 5 suffice);
    at the border the bucket's padding is seen (more than 1e-4 off)."""
    import jax

    from jaxgan.nets import UNet

    g = UNet(depth=2, base_width=4, norm="none")
    variables = g.init(jax.random.PRNGKey(0), np.zeros((1, 16, 16, 3), np.float32))

    def apply(b):
        return np.asarray(g.apply(variables, b))

    rng = np.random.default_rng(9)
    for shape in [(45, 70, 3), (70, 45, 3)]:
        image = rng.uniform(-1, 1, shape).astype(np.float32)
        today = infer.apply_tiled(apply, image, multiple=4)
        bucketed = infer.apply_tiled(apply, image, multiple=4, buckets=(128,))
        h, w = shape[:2]
        np.testing.assert_allclose(bucketed[:h - 8, :w - 8], today[:h - 8, :w - 8], rtol=0, atol=1e-5)
        assert np.abs(bucketed - today).max() > 1e-4


@pytest.mark.parametrize("views", [1, 2, 4])
def test_flip_ensemble_averages_the_outputs_flipped_back(views):
    """run = x * a position-dependent weight R: the ensemble is x * the mean of R over the views'
    flips (closed form), in NumPy and inside jit; other view counts are refused."""
    import jax

    rng = np.random.default_rng(2)
    image = rng.uniform(-1, 1, (2, 5, 7, 3)).astype(np.float32)
    weight = rng.uniform(0, 1, (5, 7, 1)).astype(np.float32)
    flips = {1: [weight], 2: [weight, weight[:, ::-1]],
             4: [weight, weight[:, ::-1], weight[::-1], weight[::-1, ::-1]]}[views]
    expected = image * np.mean(flips, axis=0)
    np.testing.assert_allclose(infer.flip_ensemble(lambda x: x * weight, image, views), expected, atol=1e-6)
    traced = jax.jit(lambda x: infer.flip_ensemble(lambda v: v * weight, x, views))(image)
    np.testing.assert_allclose(np.asarray(traced), expected, atol=1e-6)
    with pytest.raises(ValueError, match="flip views must be one of"):
        infer.flip_ensemble(lambda x: x, image, 3)
