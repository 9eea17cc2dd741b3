"""What the systolic arrays compute (docs/arrays.md): GEMM with DBB semantics, fold tiling, exact cycle model.

A fold is one tile of ``cfg.pixels × cfg.channels`` outputs (GEMM rows × columns) computed over
the whole reduction; folds run M-major. ``sa`` variants take one reduction element per PE step
(K unpadded); ``s2ta_w`` one K-block of bz per step; ``s2ta_aw`` nnz_a steps per K-block (bz when
nnz_a = bz, the dense mode). With ``dense_w`` every K-block runs as ceil(bz/b) weight sub-blocks.
"""

import numpy as np

from .checks import InputError, require_int8
from .dbb import dbb_bound_ok, topk_mask
from .quant import wrap

__all__ = [
    "gemm", "array_gemm", "check_gemm", "dap_rows", "pad_reduction", "weight_blocks", "weight_passes", "fold_steps",
    "folds", "array_cycles", "sa_scalesim_cycles", "zvcg_updates",
]


def gemm(a, w, acc_width=32):
    """``a @ w`` for int8 ``a`` [M, K] and ``w`` [K, N], exact then wrapped to ``acc_width`` (int64)."""
    return wrap(a.astype(np.int64) @ w.astype(np.int64), acc_width)


def pad_reduction(x, bz, axis):
    """``x`` zero-padded along ``axis`` to a multiple of ``bz``."""
    extra = -x.shape[axis] % bz
    if not extra:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, extra)
    return np.pad(x, widths)


def dap_rows(a, nnz, bz):
    """``a`` [M, K] with every K-block of every row DAP-pruned at ``nnz`` (the top-k rule of docs/conventions.md)."""
    padded = pad_reduction(a, bz, 1)
    blocks = padded.reshape(-1, bz)
    kept = np.where(topk_mask(blocks, nnz), blocks, np.int8(0)).reshape(padded.shape)
    return np.ascontiguousarray(kept[:, :a.shape[1]])


def weight_blocks(w, bz):
    """The W-DBB blocks of GEMM weights ``w`` [K, N]: each column's reduction in blocks of ``bz`` (zero-padded),
    int8 [N · ceil(K / bz), bz], column-major."""
    return pad_reduction(w, bz, 0).T.reshape(-1, bz)


def check_gemm(cfg, a, w, *, nnz_a=None, dense_w=False):
    """Refuse operands the preset cannot run (InputError with a one-line reason)."""
    require_int8("a", a, ndim=2)
    require_int8("w", w, ndim=2)
    if a.shape[1] != w.shape[0]:
        raise InputError(f"a is [M, K] = {list(a.shape)} but w is [K, N] = {list(w.shape)}: K differs")
    if 0 in a.shape or 0 in w.shape:
        raise InputError(f"a {list(a.shape)} and w {list(w.shape)} must not be empty")
    if cfg.variant == "s2ta_aw":
        allowed = [*range(1, cfg.nnz_max + 1), cfg.bz]
        if isinstance(nnz_a, bool) or not isinstance(nnz_a, (int, np.integer)) or int(nnz_a) not in allowed:
            raise InputError(f"nnz_a must be one of {allowed} for s2ta_aw/{cfg.name}, not {nnz_a!r}")
    elif nnz_a is not None:
        raise InputError(f"nnz_a applies to s2ta_aw only, not {cfg.variant}")
    if cfg.scalar:
        if dense_w:
            raise InputError(f"dense_w applies to s2ta_w and s2ta_aw only, not {cfg.variant}")
        return
    if not dense_w:
        blocks = weight_blocks(w, cfg.bz)
        over = ~dbb_bound_ok(blocks, cfg.b)
        if over.any():
            n, kb = divmod(int(np.argmax(over)), blocks.shape[0] // w.shape[1])
            raise InputError(f"w breaks the {cfg.b}/{cfg.bz} W-DBB bound of {cfg.variant}/{cfg.name}: column {n}, "
                             f"rows {kb * cfg.bz}..{kb * cfg.bz + cfg.bz - 1} hold "
                             f"{np.count_nonzero(blocks[np.argmax(over)])} non-zeros (prune it or set dense_w)")


def array_gemm(cfg, a, w, *, nnz_a=None, dense_w=False):
    """``Y = a · w`` as array ``cfg`` computes it, int64 [M, N] wrapped to ``cfg.acc_width``.

    ``s2ta_aw`` first DAP-prunes each K-block of ``a`` at ``nnz_a`` (no pruning at nnz_a = bz).
    """
    check_gemm(cfg, a, w, nnz_a=nnz_a, dense_w=dense_w)
    if cfg.variant == "s2ta_aw" and nnz_a != cfg.bz:
        a = dap_rows(a, int(nnz_a), cfg.bz)
    return gemm(a, w, cfg.acc_width)


def weight_passes(cfg, dense_w):
    """Weight sub-blocks per K-block: ceil(bz/b) in dense-weight mode, else 1."""
    return -(-cfg.bz // cfg.b) if dense_w else 1


def fold_steps(cfg, k, *, nnz_a=None, dense_w=False):
    """PE steps of one fold over a reduction of length ``k``."""
    if cfg.scalar:
        return k
    blocks = -(-k // cfg.bz) * weight_passes(cfg, dense_w)
    if cfg.variant == "s2ta_w":
        return blocks
    return blocks * int(nnz_a)


def folds(cfg, m, n):
    """(first row, first column) of each output tile, M-major."""
    return [(m0, n0) for m0 in range(0, m, cfg.pixels) for n0 in range(0, n, cfg.channels)]


def array_cycles(cfg, steps):
    """RTL cycles of folds of ``steps`` PE steps each, streamed back to back without back-pressure.

    Counted as docs/cosim.md: from the cycle the first step is accepted to the one of the last
    result word, both included. The first PE step enters ``front_latency`` cycles after it
    is accepted; a fold's last step enters no sooner than ``min_fold_steps`` after the
    previous fold's (so drains overlap compute); the last result word follows ``latency``
    cycles after the last step.
    """
    if not steps:
        return 0
    return cfg.front_latency + steps[0] + sum(max(s, cfg.min_fold_steps) for s in steps[1:]) + cfg.latency


def sa_scalesim_cycles(cfg, m, n, k):
    """SCALE-Sim v3's output-stationary compute cycles for the same GEMM: ceil(M/R)·ceil(N/C)·(K+R+C-2) - 1.

    Ours (``array_cycles``) overlap each fold's skew and drain with the next fold, so per fold
    we pay max(K, R+C-1) instead of K + R + C - 2, plus 2R + C once.
    """
    return -(-m // cfg.rows) * -(-n // cfg.cols) * (k + cfg.rows + cfg.cols - 2) - 1


def zvcg_updates(cfg, a, w):
    """(accumulator updates ZVCG suppresses, accumulator updates of plain ``sa``) for ``a · w`` on array ``cfg``.

    Every PE of every fold updates its accumulator once per step (padding PEs included, as in
    the RTL); ZVCG keeps the register enable low when either operand is 0, except on a fold's
    last step, which always moves the sum to the shadow register.
    """
    check_gemm(cfg, a, w)
    m, k = a.shape
    n = w.shape[1]
    tiles_m, tiles_n = -(-m // cfg.pixels), -(-n // cfg.channels)
    a_nz = np.zeros((tiles_m * cfg.pixels, k), bool)
    a_nz[:m] = a != 0
    w_nz = np.zeros((k, tiles_n * cfg.channels), bool)
    w_nz[:, :n] = w != 0
    both = a_nz[:, :-1].astype(np.int64) @ w_nz[:-1].astype(np.int64)  # steps with both operands non-zero
    total = tiles_m * cfg.pixels * tiles_n * cfg.channels * k
    return int(total - both.sum() - tiles_m * cfg.pixels * tiles_n * cfg.channels), total
