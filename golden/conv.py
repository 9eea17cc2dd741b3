"""Integer convolution and fully-connected layers (exact int64 sums, wrapped to acc_width)."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .checks import InputError, require_int8
from .quant import wrap

__all__ = ["MAX_ELEMENTS", "conv2d", "conv_as_gemm", "conv_output_size", "check_conv", "linear", "pool2d"]

MAX_ELEMENTS = 1 << 26  # of a padded input or its im2col matrix: refused beyond, before allocating


def conv_output_size(size, kernel, pad, stride):
    return (size + 2 * pad - kernel) // stride + 1


def conv2d(x, w, *, pad=0, stride=1, bias=None, acc_width=32, groups=1):
    """``y[f, p, q] = bias[f] + sum_{c,r,s} w[f,c,r,s] * xpad[c, p*stride + r, q*stride + s]``.

    ``x`` int8 [C, H, W], ``w`` int8 [F, C, R, S], ``bias`` int32 [F] or None. Returns int64
    [F, H', W'] holding signed ``acc_width``-bit values (wrapped like the RTL).
    ``groups`` > 1 (grouped; depthwise when it equals C): ``w`` is [F, C / groups, R, S] and filter group g
    (F / groups filters) sees input channels g·C/groups .. (g+1)·C/groups - 1 only, as torch's Conv2d.
    """
    check_conv(x, w, pad, stride, groups)
    f, cg, R, S = w.shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(xp, (R, S), axis=(1, 2))[:, ::stride, ::stride]  # [C, H', W', R, S]
    _, h_out, w_out, _, _ = windows.shape
    # im2col per group: [groups, H'·W', C/groups·R·S], exact int64; one batched matmul (~4x einsum)
    columns = windows.reshape(groups, cg, h_out * w_out, R * S).transpose(0, 2, 1, 3).reshape(groups, h_out * w_out, -1)
    filters = w.astype(np.int64).reshape(groups, f // groups, -1)
    acc = (filters @ columns.transpose(0, 2, 1)).reshape(f, h_out, w_out)
    if bias is not None:
        acc = acc + _bias(bias, f)[:, None, None]
    return wrap(acc, acc_width)


def conv_as_gemm(x, w, *, pad=0, stride=1, c_block=1):
    """Convolution lowered to a GEMM (im2col, docs/conventions.md): ``(a [M, K], wmat [K, F], (F, H', W'))``.

    M = output pixels row-major; the reduction runs channel-fastest per filter tap with the
    channels zero-padded per tap to ``C' = ceil(C / c_block) · c_block``: k = (r·S + s)·C' + c,
    K = R·S·C'. ``c_block`` = 1 gives the unpadded dense order. ``(a @ wmat).T`` reshaped to
    [F, H', W'] equals ``conv2d(x, w)``.
    """
    check_conv(x, w, pad, stride)
    c, _, _ = x.shape
    f, _, r, s = w.shape
    padded_c = -(-c // c_block) * c_block
    xp = np.zeros((padded_c, x.shape[1] + 2 * pad, x.shape[2] + 2 * pad), dtype=np.int8)
    xp[:c, pad:pad + x.shape[1], pad:pad + x.shape[2]] = x
    windows = sliding_window_view(xp, (r, s), axis=(1, 2))[:, ::stride, ::stride]  # [C', H', W', R, S]
    _, h_out, w_out, _, _ = windows.shape
    a = windows.transpose(1, 2, 3, 4, 0).reshape(h_out * w_out, r * s * padded_c)
    wp = np.zeros((f, padded_c, r, s), dtype=np.int8)
    wp[:, :c] = w
    wmat = wp.transpose(2, 3, 1, 0).reshape(r * s * padded_c, f)
    return np.ascontiguousarray(a), np.ascontiguousarray(wmat), (f, h_out, w_out)


def check_conv(x, w, pad, stride, groups=1):
    """Refuse a convolution the golden models cannot run: dtypes, ranks, channels and groups, pad and stride, fit."""
    require_int8("x", x, ndim=3)
    require_int8("w", w, ndim=4)
    if groups != 1:
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
            raise InputError(f"groups must be a positive integer, not {groups!r}")
        if x.shape[0] % groups or w.shape[0] % groups or w.shape[1] * groups != x.shape[0]:
            raise InputError(f"groups {groups} needs channels and filters divisible by it and w with C / groups input "
                             f"channels: x has {x.shape[0]} channels, w {w.shape[0]} filters of {w.shape[1]}")
    elif w.shape[1] != x.shape[0]:
        raise InputError(f"w has {w.shape[1]} input channels but x has {x.shape[0]}")
    if isinstance(pad, bool) or isinstance(stride, bool) or not isinstance(pad, (int, np.integer)) \
            or not isinstance(stride, (int, np.integer)) or pad < 0 or stride < 1:
        raise InputError(f"pad must be an integer >= 0 and stride >= 1, not pad={pad!r}, stride={stride!r}")
    c, h, wd = x.shape
    _, _, r, s = w.shape
    if h + 2 * pad < r or wd + 2 * pad < s:
        raise InputError(f"a {r}x{s} filter does not fit a {h}x{wd} input padded by {pad}")
    padded = c * (h + 2 * pad) * (wd + 2 * pad)
    lowered = conv_output_size(h, r, pad, stride) * conv_output_size(wd, s, pad, stride) * r * s * c  # all groups
    if max(padded, lowered) > MAX_ELEMENTS:
        raise InputError(f"x {list(x.shape)} padded by {pad} with {r}x{s} filters needs {max(padded, lowered)} "
                         f"elements, more than the {MAX_ELEMENTS} a convolution may take (is pad {pad} meant?)")


def linear(x, w, *, bias=None, acc_width=32):
    """``y[o] = bias[o] + sum_i w[o, i] * x[i]``; ``x`` int8 [n_in], ``w`` int8 [n_out, n_in]."""
    require_int8("x", x, ndim=1)
    require_int8("w", w, ndim=2)
    if w.shape[1] != x.shape[0]:
        raise InputError(f"w has {w.shape[1]} inputs but x has {x.shape[0]}")
    acc = w.astype(np.int64) @ x.astype(np.int64)
    if bias is not None:
        acc = acc + _bias(bias, w.shape[0])
    return wrap(acc, acc_width)


def _bias(bias, n):
    if not isinstance(bias, np.ndarray) or bias.dtype != np.int32 or bias.shape != (n,):
        raise InputError(f"bias must be int32 of shape [{n}]")
    return bias.astype(np.int64)


def pool2d(x, kind, *, kernel, stride, pad=0):
    """Max (``kind`` "max") or average ("avg") pooling of a post-ReLU int8 [C, H, W] (≥ 0) with a
    ``kernel`` (kh, kw) window. Max pads with 0 (no larger than any input); average divides the window's
    sum, padding included (torch's default), by kh·kw rounding half up: ``(sum + n // 2) // n``. int8 out."""
    require_int8("x", x, ndim=3)
    if (x < 0).any():
        raise InputError("pooling takes post-ReLU activations (>= 0)")
    kh, kw = kernel
    if x.shape[1] + 2 * pad < kh or x.shape[2] + 2 * pad < kw:
        raise InputError(f"a {kh}x{kw} pooling window does not fit a {x.shape[1]}x{x.shape[2]} input padded by {pad}")
    xp = np.pad(x.astype(np.int64), ((0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    if kind == "max":
        return windows.max(axis=(3, 4)).astype(np.int8)
    if kind == "avg":
        n = kh * kw
        return ((windows.sum(axis=(3, 4)) + n // 2) // n).astype(np.int8)
    raise InputError(f"pooling kind must be max or avg, not {kind!r}")
