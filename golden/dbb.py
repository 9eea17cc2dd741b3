"""Density-bound blocks (docs/conventions.md): the top-k rule, compression, W-DBB pruning and DAP."""

import numpy as np

from .checks import InputError, require_array, require_int8, require_range

__all__ = [
    "channel_blocks", "dap_activations", "topk_mask", "dbb_compress", "dbb_decompress", "wdbb_prune", "dap",
    "dap_cycles", "dbb_bound_ok", "dense_split", "filter_blocks",
]


def topk_mask(blocks, nnz):
    """Kept positions of each block: the min(nnz, #non-zeros) largest magnitudes, ties to lower position.

    ``blocks`` int8 [n, BZ]; ``nnz`` an int or an int array [n]. Returns bool [n, BZ].
    This is the one implementation of the rule; W-DBB, DAP and training all call it.
    """
    require_int8("blocks", blocks, ndim=2)
    n, bz = blocks.shape
    nnz = np.broadcast_to(np.asarray(nnz), (n,))
    require_range("nnz", nnz, 0, bz)
    magnitude = np.abs(blocks.astype(np.int16))
    order = np.argsort(-magnitude, axis=1, kind="stable")  # stable: equal magnitudes keep position order
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(bz)[None, :].repeat(n, axis=0), axis=1)
    return (rank < nnz[:, None]) & (magnitude > 0)


def dbb_bound_ok(blocks, nnz):
    """True per block when it has at most ``nnz`` non-zeros."""
    return np.count_nonzero(blocks, axis=1) <= nnz


def dbb_compress(blocks, nnz):
    """Compress blocks that already meet the nnz/BZ bound into (values int8 [n, nnz], mask uint32 [n])."""
    require_int8("blocks", blocks, ndim=2)
    n, bz = blocks.shape
    require_range("nnz", np.asarray(nnz), 1, bz)
    over = ~dbb_bound_ok(blocks, nnz)
    if over.any():
        i = int(np.argmax(over))
        raise InputError(f"block {i} has {np.count_nonzero(blocks[i])} non-zeros, more than nnz={nnz}")
    keep = blocks != 0
    slot = np.cumsum(keep, axis=1) - 1
    values = np.zeros((n, nnz), dtype=np.int8)
    rows, cols = np.nonzero(keep)
    values[rows, slot[rows, cols]] = blocks[rows, cols]
    mask = (keep.astype(np.uint32) << np.arange(bz, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)
    return values, mask


def dbb_decompress(values, mask, bz):
    """Expand (values int8 [n, slots], mask uint32 [n]) back into dense int8 blocks [n, bz]."""
    require_int8("values", values, ndim=2)
    require_array("mask", mask, dtype=np.uint32, shape=(values.shape[0],))
    n, slots = values.shape
    if not 1 <= bz <= 32:
        raise InputError(f"bz must be between 1 and 32, not {bz}")
    if bz < 32 and (mask >> np.uint32(bz)).any():
        raise InputError(f"mask has bits at or above position bz={bz}")
    keep = ((mask[:, None] >> np.arange(bz, dtype=np.uint32)) & 1).astype(bool)
    counts = keep.sum(axis=1)
    if (counts > slots).any():
        raise InputError(f"a mask has {int(counts.max())} bits set, more than the {slots} value slots")
    slot = np.cumsum(keep, axis=1) - 1
    blocks = np.zeros((n, bz), dtype=np.int8)
    rows, cols = np.nonzero(keep)
    blocks[rows, cols] = values[rows, slot[rows, cols]]
    return blocks


def dense_split(blocks, nnz):
    """Dense-weight fallback (docs/arrays.md): each block as ceil(BZ/nnz) sub-blocks, the p-th keeping
    positions p·nnz .. p·nnz + nnz - 1. ``blocks`` [n, BZ] -> [n · passes, BZ], a block's
    sub-blocks consecutive; each meets the nnz/BZ bound and together they sum to the block.
    """
    require_int8("blocks", blocks, ndim=2)
    n, bz = blocks.shape
    if not 1 <= nnz <= bz:
        raise InputError(f"nnz must be between 1 and bz ({bz}), not {nnz}")
    passes = -(-bz // nnz)
    which = np.arange(bz) // nnz
    sub = np.where(which[None, None, :] == np.arange(passes)[None, :, None], blocks[:, None, :], np.int8(0))
    return sub.reshape(n * passes, bz).astype(np.int8)


def wdbb_prune(w, nnz, bz, axis=0):
    """W-DBB: keep the ``nnz`` largest magnitudes in every BZ block along ``axis`` (zero-padded at its end)."""
    require_int8("w", w)
    if not 1 <= nnz <= bz:
        raise InputError(f"nnz must be between 1 and bz ({bz}), not {nnz}")
    moved = np.moveaxis(w, axis, -1)
    length = moved.shape[-1]
    padded_len = -(-length // bz) * bz
    padded = np.zeros(moved.shape[:-1] + (padded_len,), dtype=np.int8)
    padded[..., :length] = moved
    blocks = padded.reshape(-1, bz)
    pruned = np.where(topk_mask(blocks, nnz), blocks, np.int8(0)).reshape(padded.shape)[..., :length]
    return np.ascontiguousarray(np.moveaxis(pruned, -1, axis))


def dap(cfg, blocks, nnz):
    """What the DAP cascade ``cfg`` outputs: (values int8 [n, nnz_max], mask uint32 [n]).

    ``blocks`` int8 [n, cfg.bz]; ``nnz`` an int or int array [n] in 1..cfg.nnz_max.
    """
    require_int8("blocks", blocks, ndim=2)
    if blocks.shape[1] != cfg.bz:
        raise InputError(f"blocks must have shape [*, {cfg.bz}], not {list(blocks.shape)}")
    nnz = np.asarray(nnz)
    if nnz.ndim > 1 or (nnz.ndim == 1 and nnz.shape[0] != blocks.shape[0]):
        raise InputError(f"nnz must be a scalar or have shape [{blocks.shape[0]}], not {list(nnz.shape)}")
    require_range("nnz", nnz, 1, cfg.nnz_max)
    kept = np.where(topk_mask(blocks, nnz), blocks, np.int8(0))
    return dbb_compress(kept, cfg.nnz_max)


def dap_cycles(cfg, n_blocks):
    """Cycles of ``n_blocks`` streamed back to back with no back-pressure (docs/cosim.md counting)."""
    return n_blocks + cfg.latency if n_blocks else 0


def channel_blocks(x, bz):
    """Activation blocks of a conv input as S2TA blocks them: per pixel, channels padded to a multiple of bz.

    ``x`` int8 [C, H, W] -> int8 [H * W * ceil(C / bz), bz], pixels in row-major order (docs/conventions.md).
    """
    require_int8("x", x, ndim=3)
    c, h, w = x.shape
    padded = -(-c // bz) * bz
    per_pixel = np.zeros((h, w, padded), dtype=np.int8)
    per_pixel[:, :, :c] = x.transpose(1, 2, 0)
    return per_pixel.reshape(-1, bz)


def filter_blocks(w, bz):
    """Weight blocks of conv filters as S2TA blocks them: per filter tap, input channels padded to bz.

    ``w`` int8 [F, C, R, S] -> int8 [F * R * S * ceil(C / bz), bz] (the W-DBB blocks of docs/conventions.md).
    """
    require_int8("w", w, ndim=4)
    return np.concatenate([channel_blocks(filt, bz) for filt in w])


def dap_activations(x, nnz, bz):
    """A conv input after DAP at ``nnz``: each channel block of each pixel keeps its top-nnz magnitudes.

    ``x`` int8 [C, H, W] -> int8 [C, H, W] with the pruned positions zeroed.
    """
    blocks = channel_blocks(x, bz)
    kept = np.where(topk_mask(blocks, nnz), blocks, np.int8(0))
    c, h, w = x.shape
    return np.ascontiguousarray(kept.reshape(h, w, -1)[:, :, :c].transpose(2, 0, 1))
