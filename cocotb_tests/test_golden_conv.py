"""Golden integer conv/linear against torch, requantization and wrap-around against big-int references."""

import numpy as np
import pytest
import torch

from golden.checks import InputError
from golden.conv import conv2d, linear
from golden.quant import fits, requantize, rescale, residual_add, wrap


@pytest.mark.parametrize("pad, stride", [(0, 1), (1, 1), (2, 2), (1, 3)])
def test_conv2d_matches_torch(pad, stride, rng):
    x = rng.integers(-128, 128, (5, 9, 7)).astype(np.int8)
    w = rng.integers(-128, 128, (4, 5, 3, 2)).astype(np.int8)
    bias = rng.integers(-2**20, 2**20, 4).astype(np.int32)
    ref = torch.nn.functional.conv2d(torch.tensor(x[None], dtype=torch.float64), torch.tensor(w, dtype=torch.float64),
                                     torch.tensor(bias, dtype=torch.float64), stride=stride, padding=pad)[0]
    assert (conv2d(x, w, pad=pad, stride=stride, bias=bias) == ref.numpy().astype(np.int64)).all()


def test_linear_matches_numpy(rng):
    x = rng.integers(-128, 128, 37).astype(np.int8)
    w = rng.integers(-128, 128, (6, 37)).astype(np.int8)
    bias = rng.integers(-1000, 1000, 6).astype(np.int32)
    assert linear(x, w, bias=bias).tolist() == [int(b) + sum(int(a) * int(c) for a, c in zip(x, row))
                                                for row, b in zip(w, bias)]


def test_accumulator_wraps_like_hardware():
    big = np.array([2**31, -2**31 - 1, 2**31 - 1, 5 * 2**32 + 3], dtype=np.int64)
    assert wrap(big, 32).tolist() == [-2**31, 2**31 - 1, 2**31 - 1, 3]
    assert wrap(np.array([200]), 8).tolist() == [-56]
    assert not fits(big, 32) and fits(big[2:3], 32)


def test_requantize_matches_big_int_formula(rng):
    acc = rng.integers(-2**31, 2**31, 2000)
    for mult, shift in [(1, 1), (2**31 - 1, 62), (1518500250, 37), (12345, 9)]:
        expect = [min(max((int(a) * mult + (1 << (shift - 1))) >> shift, 0), 127) for a in acc]
        assert requantize(acc, mult, shift).tolist() == expect


def test_requantize_per_channel_applies_each_channels_pair(rng):
    """Per-channel (mult, shift) (a depthwise conv's per-filter weight scales) requantize channel k of [F, H, W] by
    its own pair, as the big-int formula does."""
    acc = rng.integers(-2**31, 2**31, (3, 4, 5))
    mult, shift = np.array([1, 2**31 - 1, 1518500250]), np.array([1, 62, 37])
    expect = [[[min(max((int(a) * int(mult[k]) + (1 << int(shift[k] - 1))) >> int(shift[k]), 0), 127) for a in row]
               for row in acc[k]] for k in range(3)]
    assert requantize(acc, mult, shift).tolist() == expect
    with pytest.raises(InputError, match="one per channel of the accumulators"):
        requantize(acc, mult[:2], shift[:2])
    with pytest.raises(InputError, match="shift must be between 1 and 62, not 0"):
        requantize(acc, mult, np.array([1, 0, 5]))


@pytest.mark.parametrize("mult, shift", [(0, 4), (2**31, 4), (5, 0), (5, 63)])
def test_requantize_refuses_bad_parameters(mult, shift):
    with pytest.raises(InputError):
        requantize(np.zeros(3, np.int64), mult, shift)


def test_conv2d_refuses_bad_input():
    with pytest.raises(InputError, match="dtype int8"):
        conv2d(np.zeros((1, 4, 4), np.int32), np.zeros((1, 1, 3, 3), np.int8))
    with pytest.raises(InputError, match="input channels"):
        conv2d(np.zeros((2, 4, 4), np.int8), np.zeros((1, 1, 3, 3), np.int8))


@pytest.mark.parametrize("groups, c, f", [(2, 4, 6), (4, 4, 8), (6, 6, 6)], ids=["grouped", "grouped2", "depthwise"])
def test_grouped_conv2d_matches_torch(groups, c, f, rng):
    x = rng.integers(-128, 128, (c, 7, 6)).astype(np.int8)
    w = rng.integers(-128, 128, (f, c // groups, 3, 3)).astype(np.int8)
    bias = rng.integers(-2**20, 2**20, f).astype(np.int32)
    ref = torch.nn.functional.conv2d(torch.tensor(x[None], dtype=torch.float64), torch.tensor(w, dtype=torch.float64),
                                     torch.tensor(bias, dtype=torch.float64), stride=2, padding=1, groups=groups)[0]
    assert (conv2d(x, w, pad=1, stride=2, bias=bias, groups=groups) == ref.numpy().astype(np.int64)).all()
    for bad, message in [(3, "groups 3 needs channels and filters divisible by it"), (0, "groups must be a positive"),
                         (groups * 2, f"groups {groups * 2} needs")]:
        with pytest.raises(InputError, match=message):
            conv2d(x, w, groups=bad)


def test_residual_add_worked_example_of_the_conventions():
    """docs/conventions.md's table: the conv branch rescaled by 1610612736 / 2^36, the identity branch (50) by
    1288490189 / 2^31 to 30, summed, saturated to int8, then the ReLU."""
    scales = [(1610612736, 36), (1288490189, 31)]
    acc, shortcut = np.array([1000, -9000, 5000]), np.full(3, 50, np.int8)
    assert rescale(acc, *scales[0]).tolist() == [23, -211, 117]
    assert residual_add([acc, shortcut], scales).tolist() == [53, 0, 127]
    assert residual_add([acc, shortcut], scales, relu=False).tolist() == [53, -128, 127]
    with pytest.raises(InputError, match=r"one shape, not \(3,\), \(2,\)"):
        residual_add([acc, shortcut[:2]], scales)
    with pytest.raises(InputError, match="two or more branches"):
        residual_add([acc], scales[:1])
