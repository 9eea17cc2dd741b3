"""Cartesian-product PE (docs/cscnn.md): compressed operands, CCU coordinates, banked scatter, AB0/AB1, PPU.

Compressed operand format (one tile, one input channel c, one group of ``cfg.filters`` filters):

- activation vectors: the tile's non-zero activations in raster order (x, then y), ``py`` per
  vector, each lane ``(value, x, y, valid)``; the last vector's spare lanes are invalid.
- weight vectors: the group's non-zero weights of channel c ordered by tap ``(r, s)`` and then
  filter f, ``px`` per vector, lanes ``(value, f, r, s, valid)``. With reuse (CSCNN) only the
  canonical half ``r·S + s ≤ (R·S-1)//2`` is sent; each product also serves the dual weight.

A tile's stream is: one ``bias`` op per filter of the group; then per input channel with non-zeros
in both operands its activation vectors (the first flagged ``first``) and its weight vectors; then
``end``. Each weight vector is multiplied with every stored activation vector (one *pair* each),
Px×Py products per pair. Products scatter to accumulators: the weight's own coordinate
``(f, x-r+R-1, y-s+S-1)`` in AB0 and, with reuse and off the centre tap, the dual's ``(f, x+r, y+s)``
in AB1. The accumulator of ``(f, u, v)`` lives at address ``a = (u·full_w + v)·filters + f``:
bank ``a mod banks``, row ``a div banks`` (both buffers alike). A bank takes one product per cycle,
so a pair occupies the dispatch stage ``max(1, most products aimed at one bank of one buffer)``
cycles; every cycle beyond the first is a stall. ``end`` drains the banks row by row through the PPU
(AB0 + AB1 + bias, optional ReLU), one word of ``banks`` outputs per row, and clears them.

Cycle model (no bubbles, no back-pressure; cycle 0 accepts the first op into the PE's input buffer of
``op_buffer`` entries, from which the PE takes it in cycle 1, and accepts an op once the op ``op_buffer``
before it was taken): ``bias``/``act``/``end`` take one cycle each; a weight vector accepted in cycle t loads
its first pair into the dispatch stage in cycle max(t+1, the cycle the stage finishes its current pair), each
further pair when the one before finishes, and the next op is accepted in the cycle its last pair loads. The
drain starts the cycle after the ``end`` op and two cycles after the last pair's final cycle (its grants pass
the arbitration stage), reads one row per cycle and shows a row two cycles after its read: cycles = drain
start + depth + 2.
"""

from dataclasses import dataclass

import numpy as np

from .checks import InputError, require_array, require_int8
from .conv import MAX_ELEMENTS
from .cscnn import canonical_mask, is_centrosymmetric
from .quant import wrap

__all__ = ["Op", "activation_vectors", "weight_vectors", "tile_ops", "bank_of", "PeRun", "pe_tile", "check_layer",
           "pieces", "overlap_add", "pe_conv"]


@dataclass(frozen=True)
class Op:
    """One input word of the PE: ``kind`` is "bias", "act", "wgt" or "end"; ``lanes`` a dict of int arrays."""

    kind: str
    lanes: dict | None = None
    first: bool = False
    f: int = 0
    bias: int = 0


def _vectors(fields, width):
    """Cut parallel 1-D arrays into vectors of ``width`` lanes (zero-padded, ``valid`` marks real lanes)."""
    n = len(next(iter(fields.values())))
    count = -(-n // width)
    out = {}
    for name, values in fields.items():
        padded = np.zeros(count * width, np.int64)
        padded[:n] = values
        out[name] = padded.reshape(count, width)
    out["valid"] = (np.arange(count * width) < n).reshape(count, width)
    return out


def activation_vectors(cfg, plane):
    """Non-zero activations of one channel's tile ``plane`` [h, w] as vectors of ``cfg.py`` lanes."""
    x, y = np.nonzero(plane)
    return _vectors({"value": plane[x, y], "x": x, "y": y}, cfg.py)


def weight_vectors(cfg, taps):
    """Non-zero weights of one channel ``taps`` [F', R, S] (canonical half with reuse), ``cfg.px`` lanes each."""
    kept = taps != 0
    if cfg.reuse:
        kept &= canonical_mask(cfg.r, cfg.s)[None]
    r, s, f = np.nonzero(kept.transpose(1, 2, 0))
    return _vectors({"value": taps[f, r, s], "f": f, "r": r, "s": s}, cfg.px)


def tile_ops(cfg, x, w, bias):
    """The op stream of one tile: ``x`` int8 [C, h, w] (h ≤ tile_h, w ≤ tile_w), ``w`` [F', C, R, S], ``bias`` [F']."""
    ops = [Op("bias", f=f, bias=int(b)) for f, b in enumerate(bias)]
    for c in range(x.shape[0]):
        acts, wgts = activation_vectors(cfg, x[c]), weight_vectors(cfg, w[:, c])
        if not len(acts["valid"]) or not len(wgts["valid"]):
            continue
        ops += [Op("act", {k: v[i] for k, v in acts.items()}, first=i == 0) for i in range(len(acts["valid"]))]
        ops += [Op("wgt", {k: v[i] for k, v in wgts.items()}) for i in range(len(wgts["valid"]))]
    return ops + [Op("end")]


def bank_of(cfg, f, u, v):
    """(bank, row) of the accumulator of output ``(f, u, v)`` (full-mode coordinates)."""
    address = (u * cfg.full_w + v) * cfg.filters + f
    return address % cfg.banks, address // cfg.banks


def _pairs(cfg, wgt, acts):
    """Products, AB0/AB1 coordinates and dispatch cycles of one weight vector with each activation vector."""
    value = wgt["value"][None, :, None] * acts["value"][:, None, :]           # [pairs, px, py]
    valid = wgt["valid"][None, :, None] & acts["valid"][:, None, :]
    f = np.broadcast_to(wgt["f"][None, :, None], value.shape)
    r, s = wgt["r"][None, :, None], wgt["s"][None, :, None]
    x, y = acts["x"][:, None, :], acts["y"][:, None, :]
    primary = (f, x - r + cfg.r - 1, y - s + cfg.s - 1)   # [pairs, px, py] each, by broadcasting
    dual = (f, x + r, y + s)
    centre = (2 * r == cfg.r - 1) & (2 * s == cfg.s - 1)
    dual_valid = valid & ~centre if cfg.reuse else np.zeros_like(valid)
    n = value.shape[0]
    cost = np.ones(n, np.int64)
    pair = np.arange(n)[:, None, None] * cfg.banks
    for coords, lanes in ((primary, valid), (dual, dual_valid)):
        bank, _ = bank_of(cfg, *coords)
        counts = np.bincount((pair + bank)[lanes], minlength=n * cfg.banks).reshape(n, cfg.banks)
        cost = np.maximum(cost, counts.max(axis=1))
    return value, valid, primary, dual, dual_valid, cost


class PeRun:
    """One PE's tile as its ops arrive: accumulators, counters and the cycle model (the module docstring's rules).

    ``take(op, arrival)``: the op, written into the input buffer in cycle ``arrival``, is taken in cycle
    max(arrival + 1, the cycle the PE is ready for it); returns that cycle. ``room()``: the first cycle the
    input buffer has room for the next op (the op ``op_buffer`` before it taken). After ``end``, ``drain_start``.
    """

    def __init__(self, cfg, n_filters):
        self.cfg = cfg
        self.ab = np.zeros((2, n_filters, cfg.full_h, cfg.full_w), np.int64)
        self.bias = np.zeros(n_filters, np.int64)
        self.mults = self.stalls = 0
        self.takes = []          # cycle in which each op was taken
        self.ready = 0           # first cycle the PE can take its next op
        self.dispatch_free = 0   # first cycle in which the dispatch stage can load a pair
        self.dispatched = False  # a pair went through the dispatch stage
        self.stored = None
        self.drain_start = None

    def room(self):
        depth = self.cfg.op_buffer
        return self.takes[-depth] + 1 if len(self.takes) >= depth else 0

    def take(self, op, arrival):
        cfg = self.cfg
        t = max(arrival + 1, self.ready)
        self.takes.append(t)
        self.ready = t + 1
        if op.kind == "act":
            stored = self.stored
            self.stored = op.lanes if op.first else {k: np.concatenate([stored[k], op.lanes[k]]) for k in stored}
        elif op.kind == "wgt":
            acts = {k: v.reshape(-1, cfg.py) for k, v in self.stored.items()}
            value, valid, primary, dual, dual_valid, cost = _pairs(cfg, op.lanes, acts)
            np.add.at(self.ab[0], tuple(c[valid] for c in primary), value[valid])
            np.add.at(self.ab[1], tuple(c[dual_valid] for c in dual), value[dual_valid])
            self.mults += int(valid.sum())
            self.stalls += int((cost - 1).sum())
            first_load = max(t + 1, self.dispatch_free)
            self.ready = first_load + int(cost[:-1].sum())   # the next op is taken as the last pair loads
            self.dispatch_free = self.ready + int(cost[-1])
            self.dispatched = True
        elif op.kind == "bias":
            self.bias[op.f] = op.bias
        else:
            self.drain_start = max(t + 1, self.dispatch_free + 2 if self.dispatched else 0)
        return t

    def output(self, h, w):
        """int64 [F', h+R-1, w+S-1]: the drained full-mode tile of an h×w input (bias added, ReLU'd when
        ``cfg.relu``), wrapped to 32 bits."""
        y = wrap(self.ab[0] + self.ab[1] + self.bias[:, None, None])
        if self.cfg.relu:
            y = np.maximum(y, 0)
        return y[:, :h + self.cfg.r - 1, :w + self.cfg.s - 1]


def pe_tile(cfg, x, w, bias):
    """Golden run of one tile on the PE: what the RTL computes and when.

    Returns ``{"y": int64 [F', h+R-1, w+S-1], "mults", "stalls", "cycles"}``; ``y`` is the
    pre-activation full-mode output with bias (ReLU'd when ``cfg.relu``), wrapped to 32 bits.
    """
    run = PeRun(cfg, w.shape[0])
    arrival = 0           # the harness offers one op a cycle; the input buffer takes it when it has room
    for op in tile_ops(cfg, x, w, bias):
        arrival = max(arrival, run.room())
        run.take(op, arrival)
        arrival += 1
    return {"y": run.output(*x.shape[1:]), "mults": run.mults, "stalls": run.stalls,
            "cycles": run.drain_start + cfg.depth + 2}


def check_layer(cfg, x, w, bias):
    """Refuse what the PE cannot run: dtypes, shapes, filter size, and non-centrosymmetric ``w`` with reuse."""
    require_int8("x", x, ndim=3)
    require_int8("w", w, ndim=4)
    require_array("bias", bias, dtype=np.int32, ndim=1)
    if w.shape[1] != x.shape[0]:
        raise InputError(f"w has {w.shape[1]} input channels but x has {x.shape[0]}")
    if w.shape[2:] != (cfg.r, cfg.s):
        raise InputError(f"{cfg.module} takes {cfg.r}x{cfg.s} filters, not {w.shape[2]}x{w.shape[3]}")
    if bias.shape[0] != w.shape[0]:
        raise InputError(f"bias has {bias.shape[0]} values but w has {w.shape[0]} filters")
    if min(x.shape) == 0 or w.shape[0] == 0:
        raise InputError(f"x {list(x.shape)} and w {list(w.shape)} must not be empty")
    full = w.shape[0] * (x.shape[1] + cfg.r - 1) * (x.shape[2] + cfg.s - 1)
    if max(x.size, w.size, full) > MAX_ELEMENTS:
        raise InputError(f"x {list(x.shape)} with w {list(w.shape)} needs {max(x.size, w.size, full)} elements, more "
                         f"than the {MAX_ELEMENTS} a layer may take")
    if cfg.reuse and not is_centrosymmetric(w).all():
        f, c = np.argwhere(~is_centrosymmetric(w))[0]
        raise InputError(f"w is not centrosymmetric (filter {f}, channel {c} differs from its dual); "
                         f"{cfg.block} refuses it rather than symmetrise it")
    if cfg.relu and (x.shape[1] > cfg.tile_h or x.shape[2] > cfg.tile_w):
        raise InputError(f"a {x.shape[1]}x{x.shape[2]} plane needs planar tiles, whose overlap-add cannot "
                         f"follow {cfg.module}'s ReLU")


def pieces(cfg, x, w, bias):
    """The layer cut into PE runs: ``(group, h0, w0, x tile, w group, bias)`` per output-channel group of
    ``cfg.filters`` and planar tile of ``tile_h × tile_w``, in run order.

    With more than one planar tile the tiles run without bias: their full-mode partial sums
    overlap-add and the bias is added once afterwards (``overlap_add``, the PE array's halo step).
    """
    tiled = x.shape[1] > cfg.tile_h or x.shape[2] > cfg.tile_w
    for f0 in range(0, w.shape[0], cfg.filters):
        group = slice(f0, f0 + cfg.filters)
        for h0 in range(0, x.shape[1], cfg.tile_h):
            for w0 in range(0, x.shape[2], cfg.tile_w):
                yield (group, h0, w0, x[:, h0:h0 + cfg.tile_h, w0:w0 + cfg.tile_w], w[group],
                       np.zeros_like(bias[group]) if tiled else bias[group])


def overlap_add(cfg, x, w, bias, placed, *, tiled=None):
    """int32 [F, H+R-1, W+S-1]: the full-mode tile outputs ``(filters, h0, w0, y)`` summed in place, + bias when
    ``tiled`` (the tiles ran without it; by default, when the plane is larger than the PE's tile)."""
    y = np.zeros((w.shape[0], x.shape[1] + cfg.r - 1, x.shape[2] + cfg.s - 1), np.int64)
    for group, h0, w0, tile_y in placed:
        y[group, h0:h0 + tile_y.shape[1], w0:w0 + tile_y.shape[2]] += tile_y
    if tiled or tiled is None and (x.shape[1] > cfg.tile_h or x.shape[2] > cfg.tile_w):
        y += bias[:, None, None]
    return wrap(y).astype(np.int32)


def pe_conv(cfg, x, w, bias):
    """Golden layer on the PE: ``{"y": int32 [F, H+R-1, W+S-1], "mults", "stalls", "cycles"}`` (sums over pieces)."""
    check_layer(cfg, x, w, bias)
    totals = {"mults": 0, "stalls": 0, "cycles": 0}
    placed = []
    for group, h0, w0, tile, w_group, tile_bias in pieces(cfg, x, w, bias):
        out = pe_tile(cfg, tile, w_group, tile_bias)
        placed.append((group, h0, w0, out["y"]))
        for key in totals:
            totals[key] += out[key]
    return {"y": overlap_add(cfg, x, w, bias, placed), **totals}
