"""jaxgan.train.history: the image pool against its definition (pix2pix / CycleGAN ImagePool)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.train import history

query = jax.jit(history.query)


def _ids(images) -> list:
    """Images are 1x1x1 and carry their id as their value."""
    return [int(round(float(v))) for v in np.asarray(images).reshape(-1)]


def _batch(ids) -> jax.Array:
    return jnp.asarray(np.asarray(ids, np.float32).reshape(-1, 1, 1, 1))


def test_fill_phase_returns_the_new_images_and_stores_them_in_order():
    pool = history.init_pool(5, (1, 1, 1))
    pool, out = query(pool, _batch([10, 11, 12]), jax.random.PRNGKey(0))
    assert _ids(out) == [10, 11, 12]
    assert int(pool["count"]) == 3
    assert _ids(pool["images"])[:3] == [10, 11, 12]
    pool, out = query(pool, _batch([13, 14]), jax.random.PRNGKey(1))
    assert _ids(out) == [13, 14]
    assert int(pool["count"]) == 5
    assert _ids(pool["images"]) == [10, 11, 12, 13, 14]


def test_after_full_each_image_is_swapped_with_probability_half_with_a_uniform_slot():
    """Replays every query on the host: a returned image is the new one (pool unchanged) or one
    that is in the pool at that moment, whose slot then holds the new image; the device pool must
    equal the replayed one after every batch. Then the statistics: P(swap) = 1/2, slots uniform."""
    size, batch, rounds = 50, 8, 250
    pool = history.init_pool(size, (1, 1, 1))
    pool, out = query(pool, _batch(range(size)), jax.random.PRNGKey(0))
    assert _ids(out) == list(range(size))
    host = list(range(size))
    swaps, slot_counts = 0, np.zeros(size, int)
    next_id = 1000
    for r in range(rounds):
        new = list(range(next_id, next_id + batch))
        next_id += batch
        pool, out = query(pool, _batch(new), jax.random.PRNGKey(r + 1))
        for image, returned in zip(new, _ids(out)):
            if returned == image:
                continue
            assert returned in host, f"returned image {returned} is neither new nor in the pool"
            slot = host.index(returned)
            host[slot] = image
            swaps += 1
            slot_counts[slot] += 1
        assert _ids(pool["images"]) == host
        assert int(pool["count"]) == size
    n = rounds * batch
    assert abs(swaps / n - 0.5) < 4 * np.sqrt(0.25 / n)  # binomial, 4 standard deviations
    expected = swaps / size
    chi2 = float(np.sum((slot_counts - expected) ** 2 / expected))
    assert chi2 < 49 + 6 * np.sqrt(2 * 49)  # chi-square with 49 degrees of freedom, ~6 sd


def test_query_is_a_pure_function_of_pool_and_key():
    pool = history.init_pool(4, (2, 2, 3))
    images = jax.random.normal(jax.random.PRNGKey(3), (6, 2, 2, 3))
    a = query(pool, images, jax.random.PRNGKey(7))
    b = query(pool, images, jax.random.PRNGKey(7))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(x, y)


def test_bad_shapes_and_sizes_are_value_errors():
    with pytest.raises(ValueError, match="history_size"):
        history.init_pool(0, (2, 2, 3))
    with pytest.raises(ValueError, match="shape"):
        history.query(history.init_pool(2, (2, 2, 3)), jnp.zeros((1, 4, 4, 3)), jax.random.PRNGKey(0))


def test_resize_pool_keeps_count_and_changes_size():
    pool = history.init_pool(3, (4, 4, 2))
    pool = {"images": pool["images"] + 0.5, "count": jnp.asarray(2, jnp.int32)}
    resized = history.resize_pool(pool, 8)
    assert resized["images"].shape == (3, 8, 8, 2)
    assert int(resized["count"]) == 2
    np.testing.assert_allclose(resized["images"], 0.5, atol=1e-6)
