"""Golden DBB models against brute-force references (hypothesis), and their refusals."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from generators.config import DapConfig
from golden.checks import InputError
from golden.dbb import channel_blocks, dap, dap_activations, dbb_compress, dbb_decompress, topk_mask, wdbb_prune

int8s = st.integers(-128, 127)


def topk_reference(block, k):
    """Brute force: repeatedly take the largest remaining |value|, scanning positions in order."""
    kept, left = set(), list(range(len(block)))
    for _ in range(k):
        best = None
        for i in left:
            if block[i] != 0 and (best is None or abs(int(block[i])) > abs(int(block[best]))):
                best = i
        if best is None:
            break
        kept.add(best)
        left.remove(best)
    return [i in kept for i in range(len(block))]


@st.composite
def blocks_and_k(draw):
    bz = draw(st.sampled_from([2, 4, 8, 16, 32]))
    n = draw(st.integers(1, 6))
    blocks = draw(arrays(np.int8, (n, bz), elements=st.integers(-4, 4) | int8s))  # small values: many ties
    return blocks, draw(st.integers(0, bz))


@settings(max_examples=300, deadline=None)
@given(blocks_and_k())
def test_topk_matches_brute_force(case):
    blocks, k = case
    got = topk_mask(blocks, k)
    for block, row in zip(blocks, got):
        assert row.tolist() == topk_reference(block, k)


def test_paper_example():
    values, mask = dbb_compress(np.array([[4, 0, 5, -7, 0, 0, 6, 0]], dtype=np.int8), 4)
    assert values.tolist() == [[4, 5, -7, 6]] and mask.tolist() == [0x4D]


@settings(max_examples=200, deadline=None)
@given(arrays(np.int8, st.tuples(st.integers(1, 20), st.just(8)), elements=int8s), st.integers(1, 8))
def test_compress_decompress_round_trip(blocks, nnz):
    pruned = np.where(topk_mask(blocks, nnz), blocks, np.int8(0))
    values, mask = dbb_compress(pruned, nnz)
    assert (dbb_decompress(values, mask, 8) == pruned).all()
    for row, v, m in zip(pruned, values, mask):
        positions = [i for i in range(8) if m >> i & 1]
        assert positions == [i for i in range(8) if row[i] != 0]
        assert list(v[:len(positions)]) == [row[i] for i in positions] and not v[len(positions):].any()


@settings(max_examples=100, deadline=None)
@given(arrays(np.int8, st.tuples(st.integers(1, 30), st.integers(1, 5)), elements=int8s), st.integers(1, 8))
def test_wdbb_prune_bounds_every_block(w, nnz):
    pruned = wdbb_prune(w, nnz, 8, axis=0)
    assert pruned.shape == w.shape
    padded = np.zeros((-(-w.shape[0] // 8) * 8, w.shape[1]), np.int8)
    padded[:w.shape[0]] = w
    for col in range(w.shape[1]):
        blocks = padded[:, col].reshape(-1, 8)
        expect = np.where(topk_mask(blocks, nnz), blocks, 0).reshape(-1)[:w.shape[0]]
        assert (pruned[:, col] == expect).all()
    bounded = np.zeros_like(padded)
    bounded[:w.shape[0]] = pruned
    assert (np.count_nonzero(bounded.T.reshape(-1, 8), axis=1) <= nnz).all()
    kept = pruned != 0
    assert (w[kept] == pruned[kept]).all()


def test_dap_matches_compress_of_topk():
    cfg = DapConfig(name="t", bz=8, nnz_max=5)
    rng = np.random.default_rng(1)
    blocks = rng.integers(-128, 128, (500, 8)).astype(np.int8)
    nnz = rng.integers(1, 6, 500)
    values, mask = dap(cfg, blocks, nnz)
    dense = dbb_decompress(values, mask, 8)
    for block, n, row in zip(blocks, nnz, dense):
        assert (row != 0).tolist() == topk_reference(block, n)


def test_channel_blocks_order_and_dap_activations():
    x = np.arange(3 * 2 * 2, dtype=np.int8).reshape(3, 2, 2)  # C=3 padded to 4 per pixel
    blocks = channel_blocks(x, 4)
    assert blocks.tolist()[0] == [0, 4, 8, 0] and blocks.tolist()[3] == [3, 7, 11, 0]
    pruned = dap_activations(x, 1, 4)
    assert pruned.shape == x.shape and (np.count_nonzero(pruned, axis=0) <= 1).all()
    assert (pruned[2] == x[2]).all()  # the largest channel of every pixel survives


@pytest.mark.parametrize("call, message", [
    (lambda cfg: dap(cfg, np.zeros((2, 8), np.int16), 1), "dtype int8"),
    (lambda cfg: dap(cfg, np.zeros((2, 4), np.int8), 1), "shape"),
    (lambda cfg: dap(cfg, np.zeros(8, np.int8), 1), "dimensions"),
    (lambda cfg: dap(cfg, np.zeros((2, 8), np.int8), 0), "between 1 and 5"),
    (lambda cfg: dap(cfg, np.zeros((2, 8), np.int8), 6), "between 1 and 5"),
    (lambda cfg: dap(cfg, np.zeros((2, 8), np.int8), np.ones(3, int)), "shape"),
    (lambda cfg: dap(cfg, np.zeros((2, 8), np.int8), 1.5), "integers"),
    (lambda cfg: dbb_compress(np.ones((1, 8), np.int8), 4), "more than nnz"),
    (lambda cfg: dbb_decompress(np.zeros((1, 2), np.int8), np.array([7], np.uint32), 8), "more than the 2"),
    (lambda cfg: wdbb_prune(np.zeros((8, 2), np.int8), 9, 8), "between 1 and bz"),
])
def test_golden_refuses_bad_input(call, message):
    with pytest.raises(InputError, match=message):
        call(DapConfig(name="t"))


def test_filter_blocks_follow_the_conv_gemm_order(rng):
    """filter_blocks are the K-blocks of each column of conv_as_gemm's weight matrix (docs/conventions.md)."""
    from golden.conv import conv_as_gemm
    from golden.dbb import filter_blocks

    w = rng.integers(-128, 128, (3, 5, 2, 3)).astype(np.int8)
    _, wmat, _ = conv_as_gemm(np.zeros((5, 4, 4), np.int8), w, c_block=4)
    assert np.array_equal(filter_blocks(w, 4), wmat.T.reshape(-1, 4))
