"""CSCNN filter rules and product counts against brute force; centrosymmetric retraining on the digits CNN."""

import numpy as np
import pytest

from golden.checks import InputError
from golden.cscnn import canonical_mask, cartesian_products, is_centrosymmetric, mirror_canonical


@pytest.mark.parametrize("r, s, stored", [(3, 3, 5), (5, 5, 13), (2, 2, 2), (1, 1, 1), (3, 2, 3), (1, 3, 2)])
def test_canonical_half_holds_each_dual_pair_once(r, s, stored):
    mask = canonical_mask(r, s)
    assert mask.sum() == stored
    both = mask | mask[::-1, ::-1]
    assert both.all(), "every tap or its dual is stored"


def symmetric(rng, f, c, r, s, density=1.0):
    w = rng.integers(-127, 128, (f, c, r, s))
    w = np.where(rng.random(w.shape) < density, w, 0)
    return mirror_canonical(w).astype(np.int8)


def test_is_centrosymmetric_per_slice(rng):
    w = symmetric(rng, 3, 2, 3, 3)
    assert is_centrosymmetric(w).all()
    w[1, 0, 0, 0] ^= 1
    assert is_centrosymmetric(w).tolist() == [[True, True], [False, True], [True, True]]


def test_cartesian_products_match_brute_force(rng):
    for _ in range(20):
        c, f = rng.integers(1, 4, 2)
        r, s = rng.integers(1, 4, 2)
        x = np.where(rng.random((c, 5, 4)) < 0.5, rng.integers(-128, 128, (c, 5, 4)), 0).astype(np.int8)
        w = symmetric(rng, f, c, r, s, density=0.6)
        scnn = sum(1 for fi in range(f) for ci in range(c) for ri in range(r) for si in range(s) if w[fi, ci, ri, si]
                   for v in x[ci].flat if v)
        canonical = canonical_mask(r, s)
        cscnn = sum(1 for fi in range(f) for ci in range(c) for ri in range(r) for si in range(s)
                    if w[fi, ci, ri, si] and canonical[ri, si] for v in x[ci].flat if v)
        assert cartesian_products(x, w, reuse=False) == scnn
        assert cartesian_products(x, w, reuse=True) == cscnn


def test_dense_3x3_reuse_forms_five_ninths(rng):
    x = rng.integers(1, 128, (4, 6, 6)).astype(np.int8)
    w = symmetric(rng, 8, 4, 3, 3)
    w[w == 0] = 1
    assert cartesian_products(x, w, reuse=True) * 9 == cartesian_products(x, w, reuse=False) * 5


def test_reuse_refuses_a_non_centrosymmetric_filter(rng):
    w = symmetric(rng, 2, 2, 3, 3)
    w[1, 1, 0, 2] = w[1, 1, 2, 0] + 1 if w[1, 1, 2, 0] < 127 else 0
    with pytest.raises(InputError, match="filter 1, channel 1 differs from its dual"):
        cartesian_products(np.ones((2, 4, 4), np.int8), w, reuse=True)


def test_centrosymmetric_retraining_keeps_duals_tied_and_pruned_together():
    from flow.harness.network import load_network
    from models.centrosymmetric import fine_tune_centrosymmetric
    from models.quantize import quantize

    net = load_network(log=lambda *_: None)
    base = net.model
    for sparsity in (0.0, 0.5):
        qnet = quantize(fine_tune_centrosymmetric(base, net.data, sparsity=sparsity, epochs=5), net.data.x_train)
        for layer in qnet.convs:
            assert is_centrosymmetric(layer.w).all(), f"{layer.name} at sparsity {sparsity}"
            zero_pairs = (layer.w == 0)[..., canonical_mask(3, 3)].mean()
            assert zero_pairs >= sparsity - 0.01
        assert qnet.accuracy(net.data.x_test, net.data.y_test) >= net.int8_accuracy - 0.02
