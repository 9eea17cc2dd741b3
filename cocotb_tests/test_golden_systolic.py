"""Golden systolic-array models: conv lowering vs conv2d, DBB GEMM vs brute force, cycle model, refusals."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from flow.techniques.dense import needs_dense_w
from generators.config import CATALOG
from golden.checks import InputError
from golden.conv import conv2d, conv_as_gemm
from golden.dbb import dense_split
from golden.systolic import array_cycles, array_gemm, check_gemm, fold_steps, folds, sa_scalesim_cycles
from models.quantize import QLayer

from .test_golden_dbb import topk_reference


@st.composite
def convs(draw):
    c, f = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    r, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pad, stride = draw(st.integers(0, 2)), draw(st.integers(1, 2))
    h, w = draw(st.integers(max(1, r - 2 * pad), 7)), draw(st.integers(max(1, s - 2 * pad), 7))
    x = draw(arrays(np.int8, (c, h, w), elements=st.integers(-128, 127)))
    wt = draw(arrays(np.int8, (f, c, r, s), elements=st.integers(-128, 127)))
    return x, wt, pad, stride, draw(st.sampled_from([1, 4, 8]))


@settings(max_examples=150, deadline=None)
@given(convs())
def test_conv_as_gemm_equals_conv2d(case):
    x, w, pad, stride, c_block = case
    a, wmat, (f, h, ww) = conv_as_gemm(x, w, pad=pad, stride=stride, c_block=c_block)
    c_padded = -(-x.shape[0] // c_block) * c_block
    assert a.shape == (h * ww, w.shape[2] * w.shape[3] * c_padded) and wmat.shape == (a.shape[1], f)
    y = (a.astype(np.int64) @ wmat.astype(np.int64)).T.reshape(f, h, ww)
    assert np.array_equal(y, conv2d(x, w, pad=pad, stride=stride))


def test_conv_as_gemm_orders_channels_fastest_per_tap():
    x = np.arange(2 * 2 * 2, dtype=np.int8).reshape(2, 2, 2)
    a, _, _ = conv_as_gemm(x, np.ones((1, 2, 2, 2), np.int8), c_block=4)
    # k = (r*S + s)*C' + c with C' = 4: tap (0,0) holds channels 0, 1 then two zero pads.
    assert a[0].tolist() == [0, 4, 0, 0, 1, 5, 0, 0, 2, 6, 0, 0, 3, 7, 0, 0]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_s2ta_aw_gemm_is_dap_then_gemm(data):
    cfg = CATALOG["s2ta_aw"]["default"]
    m, k, n = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 20)), data.draw(st.integers(1, 3))
    a = data.draw(arrays(np.int8, (m, k), elements=st.integers(-3, 3) | st.integers(-128, 127)))
    w = np.ones((k, n), np.int8)
    w[np.arange(k) % cfg.bz >= cfg.b] = 0  # 4/8: the first b positions of each block
    nnz = data.draw(st.sampled_from([1, 2, 3, 4, 5, 8]))
    pruned = np.zeros_like(a)
    for i in range(m):
        for k0 in range(0, k, cfg.bz):
            block = a[i, k0:k0 + cfg.bz]
            keep = topk_reference(np.pad(block, (0, cfg.bz - len(block))), nnz if nnz < cfg.bz else cfg.bz)
            pruned[i, k0:k0 + cfg.bz] = np.where(keep[:len(block)], block, 0)
    expected = pruned.astype(np.int64) @ w.astype(np.int64)
    assert np.array_equal(array_gemm(cfg, a, w, nnz_a=nnz), expected)


def test_dense_split_sums_back_and_meets_the_bound(rng):
    blocks = rng.integers(-128, 128, (50, 8)).astype(np.int8)
    for nnz in (1, 3, 4, 8):
        sub = dense_split(blocks, nnz)
        passes = -(-8 // nnz)
        assert sub.shape == (50 * passes, 8)
        assert (np.count_nonzero(sub, axis=1) <= nnz).all()
        assert np.array_equal(sub.reshape(50, passes, 8).astype(np.int64).sum(axis=1), blocks)


def test_fold_steps_per_variant():
    k = 19  # 3 blocks of 8
    assert fold_steps(CATALOG["sa"]["default"], k) == 19
    assert fold_steps(CATALOG["s2ta_w"]["default"], k) == 3
    assert fold_steps(CATALOG["s2ta_w"]["default"], k, dense_w=True) == 6
    assert fold_steps(CATALOG["s2ta_aw"]["default"], k, nnz_a=3) == 9
    assert fold_steps(CATALOG["s2ta_aw"]["default"], k, nnz_a=8, dense_w=True) == 48


def test_sa_cycle_model_vs_scalesim_formula():
    """Per fold we pay K where SCALE-Sim pays K + R + C - 2: the skew overlaps the next fold."""
    cfg = CATALOG["sa"]["default"]
    for m, n, k in [(16, 16, 64), (37, 9, 100), (4, 4, 7)]:
        f = len(folds(cfg, m, n))
        ours = array_cycles(cfg, [k] * f)
        assert ours == f * k + 2 * cfg.rows + cfg.cols
        assert sa_scalesim_cycles(cfg, m, n, k) - ours == f * (cfg.rows + cfg.cols - 2) - (2 * cfg.rows + cfg.cols + 1)


def test_short_folds_are_spaced_by_min_fold_steps():
    cfg = CATALOG["sa"]["default"]
    assert array_cycles(cfg, [1, 1, 1]) == cfg.front_latency + 1 + 2 * cfg.min_fold_steps + cfg.latency


@pytest.mark.parametrize("variant, kwargs, message", [
    ("sa", dict(nnz_a=3), "nnz_a applies to s2ta_aw only"),
    ("sa", dict(dense_w=True), "dense_w applies to s2ta_w and s2ta_aw only"),
    ("s2ta_aw", dict(nnz_a=6), r"nnz_a must be one of \[1, 2, 3, 4, 5, 8\]"),
    ("s2ta_aw", dict(nnz_a=0), "nnz_a must be one of"),
    ("s2ta_aw", dict(), "nnz_a must be one of"),
    ("s2ta_w", dict(), "breaks the 4/8 W-DBB bound of s2ta_w/default: column 1, rows 8..15 hold 5 non-zeros"),
])
def test_check_gemm_refusals(variant, kwargs, message):
    cfg = CATALOG[variant]["default"]
    w = np.zeros((16, 2), np.int8)
    w[8:13, 1] = 1
    with pytest.raises(InputError, match=message):
        check_gemm(cfg, np.ones((3, 16), np.int8), w if variant == "s2ta_w" else np.ones((16, 2), np.int8), **kwargs)


def test_check_gemm_refuses_mismatched_k():
    with pytest.raises(InputError, match="K differs"):
        check_gemm(CATALOG["sa"]["default"], np.ones((3, 16), np.int8), np.ones((15, 2), np.int8))


@settings(max_examples=100, deadline=None)
@given(convs(), st.sampled_from(["s2ta_w", "s2ta_aw", "sa"]), st.booleans())
def test_dense_weight_mode_only_where_the_lowered_weights_break_the_bound(case, variant, as_fc):
    """A layer takes the dense-weight fallback exactly when check_gemm would refuse its lowered weights without it."""
    x, wt, pad, stride, _ = case
    cfg = CATALOG[variant]["small"]
    if as_fc:
        layer = QLayer(name="fc1", kind="fc", w=wt.reshape(wt.shape[0], -1))
        wmat = np.ascontiguousarray(layer.w.T)
    else:
        layer = QLayer(name="conv1", kind="conv", w=wt)
        wmat = conv_as_gemm(x, wt, pad=pad, stride=stride, c_block=1 if cfg.scalar else cfg.bz)[1]
    try:
        check_gemm(cfg, np.zeros((1, wmat.shape[0]), np.int8), wmat, nnz_a=cfg.bz if variant == "s2ta_aw" else None)
        refused = False
    except InputError:
        refused = True
    assert needs_dense_w(cfg, layer) == refused


def test_a_single_channel_first_layer_needs_no_dense_weight_mode():
    """C = 1 padded to BZ per tap leaves one non-zero per block: within any b, so conv1 runs one weight pass."""
    cfg = CATALOG["s2ta_aw"]["default"]
    dense = np.full((6, 1, 3, 3), 5, np.int8)
    assert not needs_dense_w(cfg, QLayer(name="conv1", kind="conv", w=dense))
    assert needs_dense_w(cfg, QLayer(name="conv2", kind="conv", w=np.full((6, 8, 3, 3), 5, np.int8)))
    assert needs_dense_w(cfg, QLayer(name="fc1", kind="fc", w=np.full((10, 16), 5, np.int8)))
