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

__all__ = ["Op", "activation_vectors", "weight_vectors", "activations_by_channel", "weights_by_channel", "tile_ops",
           "bank_of", "PeRun", "pe_tile", "check_layer", "pieces", "overlap_add", "pe_conv"]


@dataclass(frozen=True)
class Op:
    """One input word of the PE: ``kind`` is "bias", "act", "wgt" or "end"; ``lanes`` a dict of int arrays."""

    kind: str
    lanes: dict | None = None
    first: bool = False
    f: int = 0
    bias: int = 0


def _by_channel(channel, fields, width, n_channels):
    """Parallel 1-D arrays sorted by ``channel``, cut channel by channel into vectors of ``width`` lanes (zero-padded,
    ``valid`` marks real lanes): (dict of [vectors, width] arrays, each channel's first vector, its vectors)."""
    counts = np.bincount(channel, minlength=n_channels)
    vectors = -(-counts // width)
    first = np.cumsum(vectors) - vectors
    rank = np.arange(len(channel)) - (np.cumsum(counts) - counts)[channel]
    row, col = first[channel] + rank // width, rank % width
    out = {"valid": np.zeros((vectors.sum(), width), bool)}
    out["valid"][row, col] = True
    for name, values in fields.items():
        out[name] = np.zeros((vectors.sum(), width), np.int64)
        out[name][row, col] = values
    return out, first, vectors


def _activation_lanes(cfg, x):
    """Every channel's non-zero activations of ``x`` [C, h, w] in raster order, ``cfg.py`` lanes a vector
    (``_by_channel``)."""
    c, ax, ay = np.nonzero(x)
    return _by_channel(c, {"value": x[c, ax, ay], "x": ax, "y": ay}, cfg.py, x.shape[0])


def _weight_lanes(cfg, w):
    """Every channel's non-zero weights of ``w`` [F', C, R, S] (canonical half with reuse) ordered by tap ``(r, s)``
    then filter, ``cfg.px`` lanes a vector (``_by_channel``)."""
    kept = w != 0
    if cfg.reuse:
        kept &= canonical_mask(cfg.r, cfg.s)[None, None]
    c, r, s, f = np.nonzero(kept.transpose(1, 2, 3, 0))
    return _by_channel(c, {"value": w[f, c, r, s], "f": f, "r": r, "s": s}, cfg.px, w.shape[1])


def _per_channel(vectors, first, count):
    return [{k: v[a:a + n] for k, v in vectors.items()} for a, n in zip(first, count)]


def activations_by_channel(cfg, x):
    """Per channel of a tile ``x`` [C, h, w]: its activation vectors (``activation_vectors``)."""
    return _per_channel(*_activation_lanes(cfg, x))


def weights_by_channel(cfg, w):
    """Per input channel of filters ``w`` [F', C, R, S]: their weight vectors (``weight_vectors``)."""
    return _per_channel(*_weight_lanes(cfg, w))


def activation_vectors(cfg, plane):
    """Non-zero activations of one channel's tile ``plane`` [h, w] as vectors of ``cfg.py`` lanes."""
    return activations_by_channel(cfg, plane[None])[0]


def weight_vectors(cfg, taps):
    """Non-zero weights of one channel ``taps`` [F', R, S] (canonical half with reuse), ``cfg.px`` lanes each."""
    return weights_by_channel(cfg, taps[:, None])[0]


def tile_ops(cfg, x, w, bias):
    """The op stream of one tile: ``x`` int8 [C, h, w] (h ≤ tile_h, w ≤ tile_w), ``w`` [F', C, R, S], ``bias`` [F']."""
    ops = [Op("bias", f=f, bias=int(b)) for f, b in enumerate(bias)]
    for acts, wgts in zip(activations_by_channel(cfg, x), weights_by_channel(cfg, w)):
        if not len(acts["valid"]) or not len(wgts["valid"]):
            continue
        ops += [Op("act", {k: v[i] for k, v in acts.items()}, first=i == 0) for i in range(len(acts["valid"]))]
        ops += [Op("wgt", {k: v[i] for k, v in wgts.items()}) for i in range(len(wgts["valid"]))]
    return ops + [Op("end")]


def bank_of(cfg, f, u, v):
    """(bank, row) of the accumulator of output ``(f, u, v)`` (full-mode coordinates)."""
    address = (u * cfg.full_w + v) * cfg.filters + f
    return address % cfg.banks, address // cfg.banks


# The pairs of a tile are computed at once, some weight vectors at a time: about this many products in flight.
_PRODUCTS_AT_ONCE = 1 << 21


def _pairs(cfg, wgt, act):
    """Pair p of weight vector ``wgt[k][p]`` [P, px] with activation vector ``act[k][p]`` [P, py]: products
    [P, px, py], their validity, AB0/AB1 coordinates and each pair's dispatch cycles [P]."""
    value = wgt["value"][:, :, None] * act["value"][:, None, :]
    valid = wgt["valid"][:, :, None] & act["valid"][:, None, :]
    f = np.broadcast_to(wgt["f"][:, :, None], value.shape)
    r, s = wgt["r"][:, :, None], wgt["s"][:, :, None]
    x, y = act["x"][:, None, :], act["y"][:, None, :]
    primary = (f, x - r + cfg.r - 1, y - s + cfg.s - 1)   # [P, px, py] each, by broadcasting
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


def _tile_pairs(cfg, x, w):
    """A tile's accumulators ``ab`` [2, F', full_h, full_w] after all its products, and per weight vector of its op
    stream (``tile_ops``: channels with activations and weights) its products, stall cycles and dispatch cycles
    but the last pair's, and the last pair's. Every weight vector of a channel pairs with each of its activation
    vectors (``_pairs``), a bounded number of pairs at a time."""
    ab = np.zeros((2, w.shape[0], cfg.full_h, cfg.full_w), np.int64)
    act, act_first, act_count = _activation_lanes(cfg, x)
    wgt, _, wgt_count = _weight_lanes(cfg, w)
    channel = np.repeat(np.arange(x.shape[0]), wgt_count)   # of each weight vector
    streamed = act_count[channel] > 0                        # its channel has activations: it is in the stream
    wgt = {k: v[streamed] for k, v in wgt.items()}
    channel = channel[streamed]
    per_w = act_count[channel]                               # pairs of each weight vector
    ends = np.cumsum(per_w)
    schedule = []
    step = max(1, _PRODUCTS_AT_ONCE // (cfg.px * cfg.py))
    j0 = 0
    while j0 < len(per_w):                                    # whole weight vectors, about ``step`` pairs at once
        j1 = max(j0 + 1, int(np.searchsorted(ends, ends[j0] - per_w[j0] + step, side="right")))
        n = per_w[j0:j1]
        first_pair = np.cumsum(n) - n
        j = np.repeat(np.arange(j0, j1), n)
        k = np.repeat(act_first[channel[j0:j1]] - first_pair, n) + np.arange(n.sum())
        value, valid, primary, dual, dual_valid, cost = _pairs(cfg, {name: v[j] for name, v in wgt.items()},
                                                               {name: v[k] for name, v in act.items()})
        np.add.at(ab[0], tuple(c[valid] for c in primary), value[valid])
        np.add.at(ab[1], tuple(c[dual_valid] for c in dual), value[dual_valid])
        cycles, last = np.add.reduceat(cost, first_pair), cost[first_pair + n - 1]
        mults = np.add.reduceat(valid.sum(axis=(1, 2)), first_pair)
        schedule += zip(mults.tolist(), (cycles - n).tolist(), (cycles - last).tolist(), last.tolist())
        j0 = j1
    return ab, schedule


class PeRun:
    """One PE's tile ``x`` [C, h, w] with filters ``w`` [F', C, R, S] as its ops (``tile_ops``) arrive: the
    cycle model of the module docstring. The tile's products and each pair's dispatch cycles are computed when
    the run starts (``_tile_pairs``: the same products, scattered to the same accumulators as op by op); ops are
    then taken in stream order. A PE without a tile: ``x`` and ``w`` None.

    ``take(op, arrival)``: the op, written into the input buffer in cycle ``arrival``, is taken in cycle
    max(arrival + 1, the cycle the PE is ready for it); returns that cycle. ``room()``: the first cycle the
    input buffer has room for the next op (the op ``op_buffer`` before it taken). After ``end``, ``drain_start``.
    """

    def __init__(self, cfg, x=None, w=None):
        self.cfg = cfg
        if w is None:
            self.ab, self.schedule = np.zeros((2, 0, cfg.full_h, cfg.full_w), np.int64), []
        else:
            self.ab, self.schedule = _tile_pairs(cfg, x, w)
        self.bias = np.zeros(self.ab.shape[1], np.int64)
        self.mults = self.stalls = 0
        self.takes = []          # cycle in which each op was taken
        self.ready = 0           # first cycle the PE can take its next op
        self.dispatch_free = 0   # first cycle in which the dispatch stage can load a pair
        self.dispatched = 0      # weight vectors (each one or more pairs) through the dispatch stage
        self.drain_start = None

    def room(self):
        depth = self.cfg.op_buffer
        return self.takes[-depth] + 1 if len(self.takes) >= depth else 0

    def take(self, op, arrival):
        t = max(arrival + 1, self.ready)
        self.takes.append(t)
        self.ready = t + 1
        if op.kind == "wgt":
            mults, stalls, head, last = self.schedule[self.dispatched]
            self.mults += mults
            self.stalls += stalls
            first_load = max(t + 1, self.dispatch_free)
            self.ready = first_load + head   # the next op is taken as the last pair loads
            self.dispatch_free = self.ready + last
            self.dispatched += 1
        elif op.kind == "bias":
            self.bias[op.f] = op.bias
        elif op.kind == "end":
            assert self.dispatched == len(self.schedule), "the ops are not the tile's stream (tile_ops)"
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
    run = PeRun(cfg, x, w)
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
