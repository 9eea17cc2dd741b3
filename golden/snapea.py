"""SnaPEA exact mode and the predictive-sparse algorithms of the seed report (docs/snapea.md), with product counts.

All five compute ``ReLU(conv2d(x, w) + bias)`` (int32 [F, H', W']) and count the products they form:

- ``conv2d``: every tap of every output, padding included.
- ``compressed``: only pairs whose weight and activation are both non-zero (padding is zero).
- ``snapea``: per filter, weights ≥ 0 first (zeros too, in (c, r, s) order), then the negative ones by
  descending magnitude; accumulate the first phase, add the bias, then stop before the next negative
  product once the partial sum is < 0 (the output is then 0). Every tap of the order is multiplied.
- ``proposal1``: SnaPEA over the non-zero weights only (docs/snapea.md's offline order, ``weight_order``).
- ``proposal2``: Proposal 1 that also skips pairs whose activation is zero.

The terminating three require x ≥ 0 (post-ReLU activations): only then is stopping exact. ``lanes``
groups the negative phase as the PE does (a sign check after each group of ``lanes`` products).
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .checks import InputError, require_array
from .conv import check_conv, conv2d
from .quant import fits

__all__ = ["ALGORITHMS", "weight_order", "check_snapea", "pixel_windows", "run_algorithm", "terminating_layer"]

ALGORITHMS = ("conv2d", "compressed", "snapea", "proposal1", "proposal2")


def weight_order(w_filter, *, keep_zeros=False):
    """``(taps, n_first)``: indices into the flattened (c, r, s) filter in SnaPEA's order and the length of
    its first (non-negative) phase. Positive weights (and zeros with ``keep_zeros``) in (c, r, s) order,
    then negative ones by descending magnitude, ties in (c, r, s) order; zeros dropped otherwise."""
    flat = np.asarray(w_filter).reshape(-1).astype(np.int64)
    first = np.flatnonzero(flat >= 0 if keep_zeros else flat > 0)
    negative = np.flatnonzero(flat < 0)
    negative = negative[np.argsort(flat[negative], kind="stable")]
    return np.concatenate([first, negative]), len(first)


def check_snapea(x, w, bias, pad, stride, *, acc_width=32):
    """Refuse what the terminating algorithms cannot run exactly: shapes and dtypes, a negative activation,
    a missing or mistyped bias, and a layer whose accumulator could leave ``acc_width`` bits."""
    check_conv(x, w, pad, stride)
    require_array("bias", bias, dtype=np.int32, shape=(w.shape[0],))
    if (x < 0).any():
        c, h, wd = (int(i) for i in np.argwhere(x < 0)[0])
        raise InputError(f"x[{c}, {h}, {wd}] = {x[c, h, wd]} is negative; SnaPEA's early termination is exact "
                         f"only for activations >= 0 (post-ReLU)")
    bound = np.abs(w.astype(np.int64)).reshape(len(w), -1).sum(axis=1) * 127 + np.abs(bias.astype(np.int64))
    if not fits(bound, acc_width):
        f = int(np.argmax(bound))
        raise InputError(f"filter {f}'s accumulator could reach {int(bound[f])}, beyond {acc_width} bits")


def pixel_windows(x, shape, pad, stride):
    """int64 [H'·W', C·R·S]: each output pixel's activations in (c, r, s) order (padding as 0)."""
    _, r, s = shape
    xp = np.pad(x.astype(np.int64), ((0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, (r, s), axis=(1, 2))[:, ::stride, ::stride]  # [C, H', W', R, S]
    _, h, wd, _, _ = win.shape
    return win.transpose(1, 2, 0, 3, 4).reshape(h * wd, -1), (h, wd)


def terminating_layer(x, w, bias, *, pad, stride=1, keep_zeros=False, skip_zero_x=False, lanes=1):
    """``{"y", "mults", "terminated"}`` of SnaPEA's exact mode on one layer.

    ``mults`` int64 [F, H', W'] counts products formed per output; ``terminated`` [F, H', W'] marks
    the outputs stopped early. The sign is checked after the first phase plus bias and after every
    ``lanes`` products of the negative phase while products remain.
    """
    check_snapea(x, w, bias, pad, stride)
    a, (h, wd) = pixel_windows(x, w.shape[1:], pad, stride)
    y = np.zeros((len(w), h * wd), np.int64)
    mults = np.zeros((len(w), h * wd), np.int64)
    terminated = np.zeros((len(w), h * wd), bool)
    for f in range(len(w)):
        taps, n_first = weight_order(w[f], keep_zeros=keep_zeros)
        weights = w[f].reshape(-1)[taps].astype(np.int64)
        acts = a[:, taps]
        active = acts != 0 if skip_zero_x else np.ones(acts.shape, bool)
        first = (acts[:, :n_first] * weights[:n_first]).sum(axis=1) + int(bias[f])
        neg_active = active[:, n_first:]
        partial = first[:, None] + np.cumsum(acts[:, n_first:] * weights[n_first:], axis=1)
        count = np.cumsum(neg_active, axis=1)
        remaining = neg_active.sum(axis=1)
        # A check follows every lanes-th product of the negative phase while products remain.
        check = neg_active & (count % lanes == 0) & (count < remaining[:, None]) & (partial < 0)
        stop_now = (first < 0) & (remaining > 0)
        later = check.any(axis=1)
        at_check = count[np.arange(len(a)), check.argmax(axis=1)] if check.shape[1] else remaining
        neg_mults = np.where(stop_now, 0, np.where(later, at_check, remaining))
        terminated[f] = stop_now | later
        final = partial[:, -1] if partial.shape[1] else first
        y[f] = np.where(terminated[f], 0, np.maximum(final, 0))
        mults[f] = active[:, :n_first].sum(axis=1) + neg_mults
    shape = (len(w), h, wd)
    return {"y": y.astype(np.int32).reshape(shape), "mults": mults.reshape(shape),
            "terminated": terminated.reshape(shape)}


def run_algorithm(name, x, w, bias, *, pad, stride=1):
    """``{"y": int32 [F, H', W'] = ReLU(conv2d + bias), "mults": int}`` of one of ``ALGORITHMS``."""
    if name == "conv2d":
        y = np.maximum(conv2d(x, w, pad=pad, stride=stride, bias=bias), 0).astype(np.int32)
        return {"y": y, "mults": int(y.size * w[0].size)}
    if name == "compressed":
        y = np.maximum(conv2d(x, w, pad=pad, stride=stride, bias=bias), 0).astype(np.int32)
        a, _ = pixel_windows(x, w.shape[1:], pad, stride)
        nonzero_w = (w.reshape(len(w), -1) != 0).astype(np.int64)
        return {"y": y, "mults": int(((a != 0).astype(np.int64) @ nonzero_w.T).sum())}
    if name not in ALGORITHMS:
        raise InputError(f"unknown algorithm {name!r}; algorithms are {', '.join(ALGORITHMS)}")
    out = terminating_layer(x, w, bias, pad=pad, stride=stride, keep_zeros=name == "snapea",
                            skip_zero_x=name == "proposal2")
    return {"y": out["y"], "mults": int(out["mults"].sum())}
