"""Mixture-of-Rookies golden skip rule against brute force, its refusals, and the offline stage on the digits CNN."""

import numpy as np
import pytest

from golden.checks import InputError
from golden.mor import binary_dot, check_mor, mor_layer
from models.mor import proxy_clusters


def test_binary_dot_is_xnor_popcount(rng):
    x = rng.integers(-128, 128, (5, 37)).astype(np.int8)
    x[:, :5] = 0  # zeros binarize to -1, like negatives
    w = rng.integers(-128, 128, (7, 37)).astype(np.int8)
    w[:, 5:9] = 0  # zero weights binarize to +1
    for p in range(5):
        for n in range(7):
            xnor = sum(1 for xi, wi in zip(x[p], w[n]) if (xi > 0) == (wi >= 0))
            assert binary_dot(x, w)[p, n] == 2 * xnor - 37


def tables(rng, n_out, n_in):
    proxy = np.full(n_out, -1, np.int64)
    proxies = rng.choice(n_out, max(1, n_out // 3), replace=False)
    for i in range(n_out):
        if i not in proxies:
            proxy[i] = rng.choice(proxies)
    return {"bias": rng.integers(-3000, 3000, n_out).astype(np.int32), "proxy": proxy,
            "m_q": rng.integers(-500, 500, n_out).astype(np.int32),
            "b_q": rng.integers(-20000, 20000, n_out).astype(np.int32),
            "enable": rng.random(n_out) < 0.8}


def test_skip_rule_matches_brute_force(rng):
    for _ in range(10):
        n_in, n_out = rng.integers(1, 40), rng.integers(1, 12)
        x = np.where(rng.random((6, n_in)) < 0.5, rng.integers(0, 128, (6, n_in)), 0).astype(np.int8)
        w = rng.integers(-128, 128, (n_out, n_in)).astype(np.int8)
        t = tables(rng, n_out, n_in)
        out = mor_layer(x, w, **t)
        macs = 0
        for p in range(6):
            acc = [int(x[p].astype(np.int64) @ w[n].astype(np.int64)) + int(t["bias"][n]) for n in range(n_out)]
            for n in range(n_out):
                sx = np.where(x[p] > 0, 1, -1)
                sw = np.where(w[n] >= 0, 1, -1)
                estimate = int(t["m_q"][n]) * int(sx @ sw) + int(t["b_q"][n])
                skip = bool(t["proxy"][n] >= 0 and t["enable"][n] and acc[t["proxy"][n]] <= 0 and estimate < 0)
                assert out["skipped"][p, n] == skip
                assert out["y"][p, n] == (0 if skip else max(acc[n], 0))
                assert out["mispredicted"][p, n] == (skip and acc[n] > 0)
                macs += 0 if skip else n_in
        assert out["macs"] == macs and out["y"].dtype == np.int32


def test_one_input_vector_and_all_disabled(rng):
    x = rng.integers(0, 128, 20).astype(np.int8)
    w = rng.integers(-128, 128, (6, 20)).astype(np.int8)
    t = {**tables(rng, 6, 20), "enable": np.zeros(6, bool)}
    out = mor_layer(x, w, **t)
    assert out["y"].shape == (6,) and not out["skipped"].any() and out["macs"] == 120


@pytest.mark.parametrize("change, message", [
    (lambda t: {**t, "proxy": np.array([-1, 5, 0])}, r"proxy\[1\] = 5 is outside -1..2"),
    (lambda t: {**t, "proxy": np.array([-1, 0, 1])}, r"proxy\[2\] = 1 points at neuron 1, which is not a proxy"),
    (lambda t: {**t, "m_q": np.zeros(2, np.int32)}, r"m_q must have shape \[3\]"),
    (lambda t: {**t, "enable": np.ones(3, np.int64)}, "enable must have dtype bool"),
    (lambda t: {**t, "bias": np.array([2**31 - 1, 0, 0], np.int32)}, "accumulator could reach"),
])
def test_refusals(change, message):
    x = np.ones((2, 4), np.int8)
    w = np.ones((3, 4), np.int8)
    t = {"bias": np.zeros(3, np.int32), "proxy": np.array([-1, 0, 0]), "m_q": np.ones(3, np.int32),
         "b_q": np.zeros(3, np.int32), "enable": np.ones(3, bool)}
    with pytest.raises(InputError, match=message):
        check_mor(x, w, **change(t))


def test_proxy_clusters_follow_the_nearest_angle_graph():
    # 0 and 1 are nearly parallel, 2 and 3 too; 4 points at 3 (its nearest); 3 has in-degree 2.
    w = np.array([[10, 0, 0], [9, 1, 0], [0, 10, 1], [0, 9, 3], [0, 5, 4]])
    proxy = proxy_clusters(w)
    assert proxy.tolist() == [-1, 0, 3, -1, 3]


def test_offline_stage_on_the_digits_cnn():
    """Profiled tables are well-formed; at T = 1.0 nothing is skipped and the network is the exact INT8 one."""
    from flow.harness.activations import conv_inputs
    from flow.harness.network import load_network
    from models.mor import mor_forward, tables

    net = load_network()
    layer_tables = tables(net.qnet, conv_inputs(net.qnet, net.data.x_train[:100]))
    for layer in net.qnet.convs:
        t = layer_tables[layer.name]
        members = t.proxy >= 0
        assert (t.proxy[t.proxy[members]] == -1).all() and (t.proxy == -1).any()
        assert (np.abs(t.correlation) <= 1 + 1e-9).all() and np.median(t.correlation) > 0.5
        assert t.m_q.dtype == np.int32 and t.b_q.dtype == np.int32
    for image in net.data.x_test[:5]:
        logits, stats = mor_forward(net.qnet, layer_tables, 1.01, image)
        assert np.array_equal(logits, net.qnet.forward(image)[0])
        assert all(s["skipped"] == 0 and s["macs"] == s["dense_macs"] for s in stats.values())
    skipped = [mor_forward(net.qnet, layer_tables, 0.6, image)[1] for image in net.data.x_test[:20]]
    assert sum(s["skipped"] for layer in skipped for s in layer.values()) > 0


def test_mor_profiles_and_chooses_t_on_disjoint_training_images_even_few():
    """300 profiled, then up to 500 to choose T on; a user's data set of no more than 300 images is split in half
    (one image serves both), so T is never chosen on no images."""
    from flow.harness.mor_inputs import PROFILE_IMAGES, THRESHOLD_IMAGES, _splits

    assert _splits(60000) == (slice(0, PROFILE_IMAGES), slice(PROFILE_IMAGES, PROFILE_IMAGES + THRESHOLD_IMAGES))
    assert _splits(4) == (slice(0, 2), slice(2, 4)) and _splits(5) == (slice(0, 2), slice(2, 5))
    assert _splits(1) == (slice(0, 1), slice(0, 1))
