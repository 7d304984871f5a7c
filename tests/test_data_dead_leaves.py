"""Dead-leaves scenes: a pure function of (seed, index), shapes and radii against closed forms."""

import numpy as np
import pytest

from jaxgan.data import dead_leaves as dl

SIZE = 64


def test_same_seed_and_index_give_the_same_scene_whatever_was_drawn_before():
    alone = dl.scene(3, 7, SIZE)
    dl.scene(3, 6, SIZE)  # other draws in between change nothing (no global state)
    np.random.seed(123)
    again = dl.scene(3, 7, SIZE)
    np.testing.assert_array_equal(alone.image, again.image)
    np.testing.assert_array_equal(alone.layers, again.layers)


def test_different_indices_and_seeds_never_repeat():
    images = [dl.scene(0, i, SIZE).image for i in range(12)] + [dl.scene(1, 0, SIZE).image]
    for i in range(len(images)):
        for j in range(i):
            assert np.abs(images[i] - images[j]).mean() > 0.01, (i, j)


def test_scene_is_covered_and_layers_index_the_shapes():
    s = dl.scene(0, 2, SIZE, defocus_probability=0.0)
    assert s.image.shape == (SIZE, SIZE, 3) and s.image.dtype == np.float32
    assert 0.0 <= s.image.min() and s.image.max() <= 1.0
    assert s.layers.min() >= 0 and s.layers.max() <= s.num_layers
    assert (s.layers > 0).mean() > 0.9  # front-to-back until covered: little background left
    assert len(np.unique(s.layers)) > 20


def test_power_law_matches_its_cdf():
    r = dl.power_law(np.random.default_rng(0), 200_000, 2.0, 100.0, 3.0)
    assert r.min() >= 2.0 and r.max() <= 100.0
    for x in (3.0, 5.0, 20.0):  # P(R <= x) = (a^(1-alpha) - x^(1-alpha)) / (a^(1-alpha) - b^(1-alpha))
        cdf = (2.0 ** -2 - x ** -2) / (2.0 ** -2 - 100.0 ** -2)
        assert np.mean(r <= x) == pytest.approx(cdf, abs=0.005)


@pytest.mark.parametrize("kind, area", [("disk", np.pi * 20 ** 2), ("rectangle", None)])
def test_hard_shapes_have_their_area(kind, area):
    rng = np.random.default_rng(1)
    a = dl.shape_alpha(rng, 81, 81, 20.0, 1.0, kind=kind)
    if area is None:  # a rectangle of half-sides 20 and 20 * aspect, aspect in [0.3, 1]
        assert 4 * 20 ** 2 * 0.3 * 0.99 <= a.sum() <= 4 * 20 ** 2 * 1.01
        return
    assert a.sum() == pytest.approx(area, rel=0.01)
    assert a[40, 40] == 1.0 and a[0, 0] == 0.0


def test_spectral_field_has_the_requested_spectrum_slope():
    field = dl.spectral_field(np.random.default_rng(2), 128, 128, 1.2)
    assert field.std() == pytest.approx(1.0, rel=1e-5)
    amp = np.abs(np.fft.rfft2(field))
    fy, fx = np.fft.fftfreq(128)[:, None], np.fft.rfftfreq(128)[None, :]
    f = np.sqrt(fx ** 2 + fy ** 2)
    band = (f > 0.02) & (f < 0.4) & (fx > 0) & (fx < 0.5)  # (irfft2 symmetrises the fx = 0 and 0.5 columns)
    slope = np.polyfit(np.log(f[band]), np.log(amp[band]), 1)[0]
    assert slope == pytest.approx(-1.2, abs=0.02)


def test_textures_from_photos_stay_in_range():
    photo = np.random.default_rng(3).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    rng = np.random.default_rng(4)
    for _ in range(20):
        t = dl.texture(rng, 17, 23, (photo,))
        assert t.shape == (17, 23, 3) and t.dtype == np.float32 and 0 <= t.min() and t.max() <= 1
