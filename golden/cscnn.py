"""CSCNN filter rules (docs/cscnn.md): centrosymmetry, the canonical half, and Cartesian-product counts."""

import numpy as np

from .checks import InputError, require_int8

__all__ = ["dual", "canonical_mask", "is_centrosymmetric", "mirror_canonical", "cartesian_products"]


def dual(w):
    """``w[..., R-1-r, S-1-s]`` at (r, s): each weight's dual (the centre is its own)."""
    return w[..., ::-1, ::-1]


def canonical_mask(r, s):
    """bool [R, S]: the stored half, taps with r·S + s ≤ (R·S - 1) // 2 (centre included)."""
    index = np.arange(r * s).reshape(r, s)
    return index <= (r * s - 1) // 2


def is_centrosymmetric(w):
    """True per filter slice [F, C] of ``w`` [F, C, R, S] whose every weight equals its dual."""
    if not isinstance(w, np.ndarray) or w.ndim != 4:
        raise InputError(f"w must be a numpy array [F, C, R, S], not {getattr(w, 'shape', type(w).__name__)}")
    return (w == dual(w)).all(axis=(2, 3))


def mirror_canonical(w):
    """``w`` [..., R, S] with each non-canonical tap replaced by its dual (the filter its canonical half stores)."""
    return np.where(canonical_mask(*w.shape[-2:]), w, dual(w))


def cartesian_products(x, w, *, reuse):
    """Products a Cartesian-product PE forms for ``x`` int8 [C, H, W] and ``w`` int8 [F, C, R, S].

    Per input channel: (non-zero weights it multiplies) × (non-zero activations). SCNN
    (``reuse`` False) multiplies every non-zero weight; CSCNN multiplies the canonical half of
    a centrosymmetric ``w`` only, each product serving the weight and its dual.
    """
    require_int8("x", x, ndim=3)
    require_int8("w", w, ndim=4)
    if w.shape[1] != x.shape[0]:
        raise InputError(f"w has {w.shape[1]} input channels but x has {x.shape[0]}")
    if reuse and not is_centrosymmetric(w).all():
        f, c = np.argwhere(~is_centrosymmetric(w))[0]
        raise InputError(f"w is not centrosymmetric: filter {f}, channel {c} differs from its dual")
    kept = w != 0
    if reuse:
        kept = kept & canonical_mask(*w.shape[2:])
    weights_per_channel = kept.sum(axis=(0, 2, 3)).astype(np.int64)
    acts_per_channel = np.count_nonzero(x, axis=(1, 2)).astype(np.int64)
    return int(weights_per_channel @ acts_per_channel)
