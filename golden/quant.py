"""Integer-only arithmetic between layers (docs/conventions.md): accumulator wrap-around and requantization."""

import numpy as np

from .checks import InputError

__all__ = ["wrap", "requantize", "fits"]


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


def requantize(acc, mult, shift):
    """ReLU layer output: ``clamp((acc * mult + (1 << (shift - 1))) >> shift, 0, 127)`` in int64, as int8."""
    if not 0 < int(mult) < 1 << 31:
        raise InputError(f"mult must be between 1 and 2**31 - 1, not {mult}")
    if not 1 <= int(shift) <= 62:
        raise InputError(f"shift must be between 1 and 62, not {shift}")
    acc = np.asarray(acc, dtype=np.int64)
    q = (acc * np.int64(mult) + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)
    return np.clip(q, 0, 127).astype(np.int8)
