"""Golden SnaPEA and the predictive-sparse algorithms: exact outputs, brute-force multiplication counts, refusals."""

import re

import numpy as np
import pytest

from golden.checks import InputError
from golden.conv import conv2d
from golden.snapea import ALGORITHMS, pixel_windows, run_algorithm, terminating_layer, weight_order
from golden.snapea_pe import FETCH_STAGES, GROUP_STAGES, Pixel, pe_layer, pe_pixel, pe_schedule


def brute_force(x, w, bias, pad, *, keep_zeros, skip_zero_x, lanes=1):
    """The report's Algorithms 1/2 written literally, one output and one product at a time."""
    f_n, c_n, r_n, s_n = w.shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (pad, pad), (pad, pad)))
    h, wd = xp.shape[1] - r_n + 1, xp.shape[2] - s_n + 1
    y, mults = np.zeros((f_n, h, wd), np.int64), 0
    for f in range(f_n):
        taps = [(int(w[f, c, r, s]), c, r, s) for c in range(c_n) for r in range(r_n) for s in range(s_n)]
        first = [t for t in taps if t[0] > 0 or (keep_zeros and t[0] == 0)]
        negative = sorted((t for t in taps if t[0] < 0), key=lambda t: t[0])  # stable: ties keep (c, r, s)
        for p in range(h):
            for q in range(wd):
                acc = 0
                for wv, c, r, s in first:
                    if skip_zero_x and xp[c, p + r, q + s] == 0:
                        continue
                    acc += wv * xp[c, p + r, q + s]
                    mults += 1
                acc += int(bias[f])
                pairs = [(wv, xp[c, p + r, q + s]) for wv, c, r, s in negative
                         if not (skip_zero_x and xp[c, p + r, q + s] == 0)]
                stopped = False
                for g in range(0, len(pairs), lanes):
                    if acc < 0:
                        stopped = True
                        break
                    for wv, xv in pairs[g:g + lanes]:
                        acc += wv * xv
                        mults += 1
                y[f, p, q] = 0 if stopped else max(acc, 0)
    return y, mults


def layer(rng, c=3, h=5, wd=6, f=4, zeros=0.4):
    x = np.where(rng.random((c, h, wd)) < zeros, 0, rng.integers(0, 128, (c, h, wd))).astype(np.int8)
    w = np.where(rng.random((f, c, 3, 3)) < zeros, 0, rng.integers(-128, 128, (f, c, 3, 3))).astype(np.int8)
    return x, w, rng.integers(-3000, 3000, f).astype(np.int32)


def test_weight_order_is_positive_then_descending_negative_magnitude():
    w = np.array([[[3, -1], [0, -5]], [[-5, 2], [-1, 0]]], np.int8)  # (c, r, s) flat: 3 -1 0 -5 -5 2 -1 0
    taps, n_first = weight_order(w)
    assert taps.tolist() == [0, 5, 3, 4, 1, 6] and n_first == 2
    taps, n_first = weight_order(w, keep_zeros=True)
    assert taps.tolist() == [0, 2, 5, 7, 3, 4, 1, 6] and n_first == 4


@pytest.mark.parametrize("name", ALGORITHMS)
def test_every_algorithm_is_relu_of_conv_plus_bias(name, rng):
    for pad in (0, 1):
        x, w, bias = layer(rng)
        expected = np.maximum(conv2d(x, w, pad=pad, bias=bias), 0)
        assert np.array_equal(run_algorithm(name, x, w, bias, pad=pad)["y"], expected)


@pytest.mark.parametrize("keep_zeros, skip_zero_x", [(True, False), (False, False), (False, True)])
@pytest.mark.parametrize("lanes", [1, 3])
def test_terminating_counts_match_brute_force(keep_zeros, skip_zero_x, lanes, rng):
    for _ in range(4):
        x, w, bias = layer(rng, zeros=rng.random() * 0.7)
        pad = int(rng.integers(0, 2))
        out = terminating_layer(x, w, bias, pad=pad, keep_zeros=keep_zeros, skip_zero_x=skip_zero_x, lanes=lanes)
        y, mults = brute_force(x, w, bias, pad, keep_zeros=keep_zeros, skip_zero_x=skip_zero_x, lanes=lanes)
        assert np.array_equal(out["y"], y) and int(out["mults"].sum()) == mults


def test_dense_and_compressed_counts():
    x = np.array([[[0, 2], [3, 0]]], np.int8)
    w = np.array([[[[1, 0], [0, -2]]]], np.int8)
    bias = np.zeros(1, np.int32)
    assert run_algorithm("conv2d", x, w, bias, pad=1)["mults"] == 9 * 4
    # Non-zero weights at (0,0) and (1,1); each meets a non-zero activation at 2 of the 9 positions.
    assert run_algorithm("compressed", x, w, bias, pad=1)["mults"] == 4


def test_large_negative_bias_stops_before_the_negative_phase(rng):
    x, w, _ = layer(rng)
    bias = np.full(len(w), -10**6, np.int32)
    out = terminating_layer(x, w, bias, pad=1)
    assert out["terminated"].all() and not out["y"].any()
    assert out["mults"].sum() == sum(int((w[f] > 0).sum()) for f in range(len(w))) * 5 * 6  # pad 1: 5x6 outputs


@pytest.mark.parametrize("change, message", [
    (lambda x, w, b: (np.where(x == x.max(), -1, x).astype(np.int8), w, b), "is negative; SnaPEA's early termination"),
    (lambda x, w, b: (x, w, b.astype(np.int64)), "bias must have dtype int32, not int64"),
    (lambda x, w, b: (x, w, np.full(4, 2**31 - 10, np.int32)), "accumulator could reach"),
    (lambda x, w, b: (x.astype(np.int16), w, b), "x must have dtype int8"),
])
def test_refusals(change, message, rng):
    x, w, bias = change(*layer(rng))
    with pytest.raises(InputError, match=re.escape(message)):
        run_algorithm("proposal2", x, w, bias, pad=1)


@pytest.mark.parametrize("two_sided", [False, True])
@pytest.mark.parametrize("lanes, window", [(1, 1), (3, 3), (2, 5), (4, 8)])
def test_pe_schedule_is_exact(lanes, window, two_sided, rng):
    for _ in range(3):
        x, w, bias = layer(rng, zeros=rng.random() * 0.7)
        out = pe_layer(x, w, bias, pad=1, lanes=lanes, window=window, two_sided=two_sided)
        assert np.array_equal(out["y"], np.maximum(conv2d(x, w, pad=1, bias=bias), 0))


def test_one_lane_pe_forms_the_algorithms_products(rng):
    """One lane without look-ahead checks the sign after every product, as terminating_layer(lanes=1) does, so
    one-sided it forms exactly Proposal 1's products."""
    x, w, bias = layer(rng)
    one = pe_layer(x, w, bias, pad=1, lanes=1, window=1, two_sided=False)
    assert np.array_equal(one["mults"], terminating_layer(x, w, bias, pad=1)["mults"])


@pytest.mark.parametrize("lanes", [1, 2, 4])
def test_groups_form_at_most_a_group_more_products(lanes, rng):
    """A sign check per group stops at most one group (lanes products: the group that crosses into the
    negative phase may hold only negative products) after Proposal 2's per-product check, and never takes
    more than the non-terminating count."""
    x, w, bias = layer(rng)
    pe = pe_layer(x, w, bias, pad=1, lanes=lanes, window=10**6, two_sided=True)["mults"]
    per_product = terminating_layer(x, w, bias, pad=1, skip_zero_x=True)["mults"]
    assert (pe >= per_product).all() and (pe <= per_product + lanes).all()
    a, _ = pixel_windows(x, w.shape[1:], 1, 1)
    every = ((a != 0).astype(np.int64) @ (w.reshape(len(w), -1) != 0).T.astype(np.int64)).T.reshape(pe.shape)
    assert (pe <= every).all()


def test_pe_pixel_hand_worked():
    """lanes 2, window 4. Positives w = 1 1 1 1 1 then -2 -3, x = 0 5 0 3 2 | 7 1, bias -20; rows 0..3 and 4..6.
    Two-sided: row 0 has entries 1 and 3 eligible, one group (acc = -12, only 4 entries behind it: no check);
    row 1 has 4, 5, 6 eligible, two groups: the first takes 4 and 5 (acc = -12 + 2 - 14 = -24) and leaves 6
    entries behind it, every positive one, with acc < 0: the pixel ends early at group 1 with 4 products.
    One-sided takes 2 a group: 0 1 | 2 3 | 4 5, then stops: 6 products, ended by group 2."""
    weights = np.array([1, 1, 1, 1, 1, -2, -3], np.int64)
    acts = np.array([0, 5, 0, 3, 2, 7, 1], np.int64)
    assert pe_pixel(weights, acts, 5, -20, lanes=2, window=4, two_sided=True) == (0, 4, (1, 2), 1, True)
    assert pe_pixel(weights, acts, 5, -20, lanes=2, window=4, two_sided=False) == (0, 6, (2, 2), 2, True)
    # A zero bias: 0 + 8 = 8, then 8 + 2 - 14 = -4 < 0 with entry 6 left: ended by group 1.
    assert pe_pixel(weights, acts, 5, 0, lanes=2, window=4, two_sided=True) == (0, 4, (1, 2), 1, True)
    # Bias 20 keeps acc >= 0 (28, then 16), so the walk reaches the end: 16 - 3 = 13 after the last group.
    assert pe_pixel(weights, acts, 5, 20, lanes=2, window=4, two_sided=True) == (13, 5, (1, 2), 2, False)
    # No positive entry and a negative bias: the first group ends the pixel with no product.
    assert pe_pixel(weights[5:], acts[5:], 0, -1, lanes=2, window=4, two_sided=True) == (0, 0, (1,), 0, False)
    assert pe_pixel(weights[5:], acts[5:], 0, -1, lanes=1, window=4, two_sided=True) == (0, 0, (2,), 0, True)
    # An empty filter: one empty row, one group, ReLU(bias).
    assert pe_pixel(np.array([], np.int64), np.array([], np.int64), 0, 9, lanes=2, window=4,
                    two_sided=True) == (9, 0, (1,), 0, False)


def test_pe_schedule_hand_worked():
    """Rows are fetched from cycle 1 and issue FETCH_STAGES = 4 cycles later (cycle 5 on); a group's sum reaches the
    accumulator GROUP_STAGES = 3 cycles after its issue, which writes the result then."""
    assert FETCH_STAGES == 4 and GROUP_STAGES == 3
    one_group = Pixel(0, 0, (1,), 0, False)
    # One group a pixel: results at 8, 9, 10. A row of two groups holds the fetch pipeline a cycle.
    assert pe_schedule([one_group] * 3) == [8, 9, 10]
    assert pe_schedule([Pixel(0, 0, (2,), 1, False), one_group]) == [9, 10]
    # Pixel 0 (six rows) ends early at its first group (issued at 5, ended at 8); the kill acts at 9. Fetching got to
    # pixel 1 at cycle 7, so at 9 the stages hold F (1, 2), S1 (1, 1), S2 (1, 0), S3 (0, 5) and the row stage
    # (0, 4), which issues a group the accumulator drops; the kill drops (0, 5), an empty slot at 10; pixel 1's
    # six rows issue at 11..16 and its last group ends it at 19.
    six = (1,) * 6
    assert pe_schedule([Pixel(0, 0, six, 0, True), Pixel(0, 0, six, 5, False)]) == [8, 19]
    # Killed while fetching is still in the pixel: pixel 0 (nine rows) ends at 8 and at 9, with F at (0, 8), the
    # kill drops that row; F goes to (1, 0) in cycle 10, which issues at 14 and ends at 17.
    nine = (1,) * 9
    assert pe_schedule([Pixel(0, 0, nine, 0, True), Pixel(0, 0, nine, 0, True)]) == [8, 17]
