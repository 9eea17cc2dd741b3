"""Integer-only arithmetic between layers (docs/conventions.md): accumulator wrap-around and requantization."""

import numpy as np

from .checks import InputError

__all__ = ["wrap", "rescale", "requantize", "residual_add", "fits"]


def wrap(acc, width=32):
    """``acc`` (any integers) wrapped modulo 2**width into signed ``width``-bit values, as int64."""
    acc = np.asarray(acc, dtype=np.int64)
    if width >= 64:
        return acc
    half = np.int64(1) << np.int64(width - 1)
    return ((acc + half) & ((np.int64(1) << np.int64(width)) - 1)) - half


def fits(acc, width=32):
    """True when every value of ``acc`` is representable in signed ``width`` bits."""
    acc = np.asarray(acc, dtype=np.int64)
    return bool(acc.size == 0 or (acc.min() >= -(1 << (width - 1)) and acc.max() < (1 << (width - 1))))


def rescale(acc, mult, shift):
    """``(acc * mult + (1 << (shift - 1))) >> shift`` in int64: §1's fixed-point multiply with round-half-up, signed,
    not clamped (mult in 1 .. 2**31 - 1, shift in 1 .. 62). ``mult`` and ``shift`` are one pair, or one per
    channel (1-D, the length of ``acc``'s first axis: per-channel weight scales)."""
    acc = np.asarray(acc, dtype=np.int64)
    mult, shift = np.asarray(mult, dtype=np.int64), np.asarray(shift, dtype=np.int64)
    if mult.shape != shift.shape or mult.ndim > 1 or mult.ndim and (acc.ndim == 0 or len(mult) != len(acc)):
        raise InputError(f"mult and shift must be one pair or one per channel of the accumulators "
                         f"{list(acc.shape)}, not {list(mult.shape)} and {list(shift.shape)}")
    if not ((0 < mult) & (mult < 1 << 31)).all():
        raise InputError(f"mult must be between 1 and 2**31 - 1, not {mult.min() if mult.ndim else mult}")
    if not ((1 <= shift) & (shift <= 62)).all():
        raise InputError(f"shift must be between 1 and 62, not {shift.min() if shift.ndim else shift}")
    if mult.ndim:   # one per channel: broadcast along the other axes
        mult, shift = (v.reshape(-1, *[1] * (acc.ndim - 1)) for v in (mult, shift))
    return (acc * mult + (np.int64(1) << (shift - 1))) >> shift


def requantize(acc, mult, shift):
    """ReLU layer output: ``clamp((acc * mult + (1 << (shift - 1))) >> shift, 0, 127)`` in int64, as int8."""
    return np.clip(rescale(acc, mult, shift), 0, 127).astype(np.int8)


def residual_add(branches, scales, *, relu=True):
    """INT8 residual Add (docs/conventions.md): each branch (a conv's int32 accumulators or int8 activations, all of
    one shape) rescaled to the output's scale by its ``(mult, shift)`` (``rescale``), summed exactly, saturated to
    int8 [-128, 127], then the following ReLU when ``relu`` (0 .. 127). int8 out."""
    if len(branches) != len(scales) or len(branches) < 2:
        raise InputError(f"an Add takes two or more branches with a (mult, shift) each, not {len(branches)} and "
                         f"{len(scales)}")
    if len({np.shape(b) for b in branches}) != 1:
        raise InputError(f"an Add's branches must have one shape, not {', '.join(str(np.shape(b)) for b in branches)}")
    total = sum(rescale(b, m, s) for b, (m, s) in zip(branches, scales))
    return np.clip(total, 0 if relu else -128, 127).astype(np.int8)
