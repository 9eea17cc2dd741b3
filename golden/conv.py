"""Integer convolution and fully-connected layers (exact int64 sums, wrapped to acc_width)."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .checks import InputError, require_int8
from .quant import wrap

__all__ = ["conv2d", "conv_output_size", "linear"]


def conv_output_size(size, kernel, pad, stride):
    return (size + 2 * pad - kernel) // stride + 1


def conv2d(x, w, *, pad=0, stride=1, bias=None, acc_width=32):
    """``y[f, p, q] = bias[f] + sum_{c,r,s} w[f,c,r,s] * xpad[c, p*stride + r, q*stride + s]``.

    ``x`` int8 [C, H, W], ``w`` int8 [F, C, R, S], ``bias`` int32 [F] or None. Returns int64
    [F, H', W'] holding signed ``acc_width``-bit values (wrapped like the RTL).
    """
    require_int8("x", x, ndim=3)
    require_int8("w", w, ndim=4)
    if w.shape[1] != x.shape[0]:
        raise InputError(f"w has {w.shape[1]} input channels but x has {x.shape[0]}")
    if pad < 0 or stride < 1:
        raise InputError(f"pad must be >= 0 and stride >= 1, not pad={pad}, stride={stride}")
    _, _, R, S = w.shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (pad, pad), (pad, pad)))
    if xp.shape[1] < R or xp.shape[2] < S:
        raise InputError(f"a {R}x{S} filter does not fit a padded {xp.shape[1]}x{xp.shape[2]} input")
    windows = sliding_window_view(xp, (R, S), axis=(1, 2))[:, ::stride, ::stride]  # [C, H', W', R, S]
    acc = np.einsum("chwrs,fcrs->fhw", windows, w.astype(np.int64))
    if bias is not None:
        acc = acc + _bias(bias, w.shape[0])[:, None, None]
    return wrap(acc, acc_width)


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
