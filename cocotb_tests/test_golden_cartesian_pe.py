"""Golden Cartesian-product PE (SCNN / CSCNN) against torch's conv2d, brute-force counts and hand-worked schedules."""

import dataclasses

import numpy as np
import pytest
import torch

from generators.config import PeConfig
from golden.cartesian_pe import activation_vectors, bank_of, pe_conv, pe_tile, tile_ops, weight_vectors
from golden.checks import InputError
from golden.cscnn import cartesian_products, mirror_canonical

SMALL = PeConfig(name="t", reuse=False, px=2, py=2, banks=8, filters=2, tile_h=4, tile_w=5, r=3, s=2)


def full_conv(x, w, bias):
    """torch's conv2d in full mode (padding R-1, S-1), exact in float64 for int8 operands."""
    r, s = w.shape[2:]
    y = torch.nn.functional.conv2d(torch.from_numpy(x[None].astype(np.float64)),
                                   torch.from_numpy(w.astype(np.float64)),
                                   torch.from_numpy(bias.astype(np.float64)), padding=(r - 1, s - 1))
    return y[0].numpy().astype(np.int64)


def layer(rng, cfg, c, f, h, w, *, density=0.5, values=(-128, 128)):
    x = np.where(rng.random((c, h, w)) < density, rng.integers(*values, (c, h, w)), 0).astype(np.int8)
    wgt = np.where(rng.random((f, c, cfg.r, cfg.s)) < density, rng.integers(*values, (f, c, cfg.r, cfg.s)), 0)
    if cfg.reuse:
        wgt = mirror_canonical(wgt)
    return x, wgt.astype(np.int8), rng.integers(-5000, 5000, f).astype(np.int32)


@pytest.mark.parametrize("reuse", [False, True])
@pytest.mark.parametrize("r, s", [(3, 3), (2, 2), (3, 2), (1, 4), (5, 5), (1, 1)])
def test_outputs_equal_torch_full_mode_and_counts_equal_brute_force(rng, reuse, r, s):
    cfg = dataclasses.replace(SMALL, reuse=reuse, r=r, s=s)
    for h, w in [(4, 5), (3, 2), (9, 11)]:  # one tile, a partial tile, planar tiles with overlap-add
        x, wgt, bias = layer(rng, cfg, c=3, f=5, h=h, w=w)
        out = pe_conv(cfg, x, wgt, bias)
        assert out["y"].dtype == np.int32
        np.testing.assert_array_equal(out["y"], full_conv(x, wgt, bias))
        assert out["mults"] == cartesian_products(x, wgt, reuse=reuse)


def test_extremes_and_all_zero_channels(rng):
    for reuse in (False, True):
        cfg = dataclasses.replace(SMALL, reuse=reuse, r=3, s=3)
        x, wgt, bias = layer(rng, cfg, c=4, f=3, h=4, w=5, density=1.0, values=(-128, -127))
        x[1] = 0        # an all-zero activation channel
        wgt[:, 2] = 0   # an all-zero weight channel
        out = pe_conv(cfg, x, wgt, bias)
        np.testing.assert_array_equal(out["y"], full_conv(x, wgt, bias))
        zero = pe_conv(cfg, np.zeros_like(x), wgt, bias)
        assert zero["mults"] == 0 and zero["stalls"] == 0
        np.testing.assert_array_equal(zero["y"], np.broadcast_to(bias[:, None, None], zero["y"].shape))


def test_reuse_forms_five_ninths_of_the_products_on_dense_3x3(rng):
    cfg = dataclasses.replace(SMALL, r=3, s=3)
    x, wgt, bias = layer(rng, cfg, c=3, f=4, h=4, w=5, density=1.0, values=(1, 128))
    wgt = mirror_canonical(wgt)
    scnn = pe_conv(cfg, x, wgt, bias)
    cscnn = pe_conv(dataclasses.replace(cfg, reuse=True), x, wgt, bias)
    np.testing.assert_array_equal(scnn["y"], cscnn["y"])
    assert cscnn["mults"] * 9 == scnn["mults"] * 5


def test_compressed_formats():
    plane = np.array([[0, 3, 0], [-1, 0, 0], [0, 0, 7]], np.int8)
    acts = activation_vectors(SMALL, plane)
    assert acts["value"].tolist() == [[3, -1], [7, 0]]
    assert acts["x"].tolist() == [[0, 1], [2, 0]] and acts["y"].tolist() == [[1, 0], [2, 0]]
    assert acts["valid"].tolist() == [[True, True], [True, False]]
    cfg = dataclasses.replace(SMALL, r=3, s=3, reuse=True)
    taps = mirror_canonical(np.arange(1, 19).reshape(2, 3, 3)).astype(np.int8)
    wgts = weight_vectors(cfg, taps)
    # canonical half (taps 0..4), tap-major then filter: (0,0) f0, f1, (0,1) f0, f1, ...
    assert wgts["r"].reshape(-1)[:10].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert wgts["s"].reshape(-1)[:10].tolist() == [0, 0, 1, 1, 2, 2, 0, 0, 1, 1]
    assert wgts["f"].reshape(-1)[:10].tolist() == [0, 1] * 5
    assert wgts["value"].reshape(-1)[:4].tolist() == [1, 10, 2, 11]
    ops = tile_ops(cfg, plane[None], taps[:, None], np.array([5, 6], np.int32))
    assert [op.kind for op in ops] == ["bias", "bias", "act", "act", "wgt", "wgt", "wgt", "wgt", "wgt", "end"]
    assert [op.first for op in ops if op.kind == "act"] == [True, False]


def test_bank_hash_spreads_filters_and_fills_rows():
    cfg = PeConfig(name="t", reuse=False)  # 32 banks, 4 filters, 10x10 full tile
    assert [bank_of(cfg, f, 0, 0) for f in range(4)] == [(0, 0), (1, 0), (2, 0), (3, 0)]
    assert bank_of(cfg, 2, 1, 3) == ((13 * 4 + 2) % 32, (13 * 4 + 2) // 32)
    addresses = {bank_of(cfg, f, u, v) for f in range(4) for u in range(10) for v in range(10)}
    assert len(addresses) == 400 and max(row for _, row in addresses) == cfg.depth - 1


def test_forced_bank_conflict_schedule_worked_by_hand():
    """Weights (0,0) and (2,0) of filter 0 times activations (0,0) and (2,0): every product lands in bank 2.

    Full tile 6x6, 2 filters, 8 banks: address (6u + v)·2 + f, u = x - r + 2, v = y - s + 1 = 1, so
    u ∈ {2, 0, 4, 2} -> addresses 26, 2, 50, 26, all ≡ 2 mod 8. One pair, 4 cycles, 3 stalls;
    two of the products meet at the same accumulator (read-add-write back to back).
    Ops enter the input buffer from cycle 0 and the PE takes them a cycle later: bias×2 (cycles 1, 2),
    act (3), wgt (4), end (5, the cycle the pair loads); the pair dispatches in 6..9, its last grants
    pass the arbitration stage in 10, the drain reads rows from 11 (depth 72/8 = 9 rows): 11 + 9 + 2 = 22 cycles.
    """
    x = np.zeros((1, 4, 5), np.int8)
    x[0, 0, 0], x[0, 2, 0] = 3, 5
    w = np.zeros((2, 1, 3, 2), np.int8)
    w[0, 0, 0, 0], w[0, 0, 2, 0] = 7, -11
    out = pe_tile(SMALL, x, w, np.array([100, -100], np.int32))
    assert (out["mults"], out["stalls"], out["cycles"]) == (4, 3, 22)
    expected = full_conv(x, w, np.array([100, -100]))
    np.testing.assert_array_equal(out["y"], expected)
    assert out["y"][0, 2, 1] == 100 + 3 * 7 + 5 * -11


def test_relu_ppu(rng):
    cfg = dataclasses.replace(SMALL, relu=True)
    x, wgt, bias = layer(rng, cfg, c=2, f=2, h=4, w=5)
    np.testing.assert_array_equal(pe_conv(cfg, x, wgt, bias)["y"], np.maximum(full_conv(x, wgt, bias), 0))


@pytest.mark.parametrize("change, message", [
    (lambda x, w, b: (x, w.astype(np.int16), b), "w must have dtype int8, not int16"),
    (lambda x, w, b: (x, w[:, :, :2], b), "takes 3x2 filters, not 2x2"),
    (lambda x, w, b: (x, w, b.astype(np.int64)), "bias must have dtype int32, not int64"),
    (lambda x, w, b: (x, w, b[:1]), "bias has 1 values but w has 2 filters"),
    (lambda x, w, b: (x[:1], w, b), "w has 2 input channels but x has 1"),
])
def test_refusals(rng, change, message):
    x, w, b = layer(rng, SMALL, c=2, f=2, h=4, w=5)
    with pytest.raises(InputError, match=message):
        pe_conv(SMALL, *change(x, w, b))


def test_reuse_refuses_a_non_centrosymmetric_filter_and_relu_refuses_planar_tiles(rng):
    cfg = dataclasses.replace(SMALL, reuse=True)
    x, w, b = layer(rng, cfg, c=2, f=2, h=4, w=5)
    w[1, 0, 0, 0] = w[1, 0, 2, 1] ^ 1
    with pytest.raises(InputError, match=r"not centrosymmetric \(filter 1, channel 0"):
        pe_conv(cfg, x, w, b)
    relu = dataclasses.replace(SMALL, relu=True)
    with pytest.raises(InputError, match="planar tiles"):
        pe_conv(relu, *layer(rng, relu, c=1, f=1, h=5, w=5))
