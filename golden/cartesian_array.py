"""The CSCNN accelerator's PE array (docs/cscnn_array.md): a layer tiled over ``groups × pes_per_group`` Cartesian PEs.

A *tiling* splits a layer into runs. In a run, PE k takes filter set ``k // n_tiles`` (T_k filters) and planar
tile ``k % n_tiles`` (T_h × T_w inputs); the three tilings differ only in (n_sets, n_tiles):

- ``mixed`` (CSCNN): (groups, pes_per_group): output channels across the sub-arrays, planar tiles across the
  PEs of a sub-array, which share its weights;
- ``planar`` (SCNN): (1, n_pe): every PE takes the same filters, a tile each;
- ``channel``: (n_pe, 1): every PE takes the same tile, filters of its own.

Per layer T_k, T_h, T_w are chosen (``plan``): filters are sorted offline by density (non-zero weights, most
first) and dealt to the sets of a run in snake order, so sets get similar work; the plane is cut into the
tiles that need the fewest T_h·T_w input positions per PE over the layer's runs. A run is one op stream
(``run_words``): per filter set its biases; per input channel each tile's activation vectors, masked to the
PEs of that tile whose set has weights in the channel, then the sets' weight vectors round-robin, masked to
the PEs of that set whose tile has activations in the channel; then ``end`` to every PE. Every PE so sees
exactly ``golden.cartesian_pe.tile_ops`` of its tile and set. Full-mode tile outputs overlap-add into the
layer's full-mode output (the halo step); when the plane is split the PEs run without bias and it is added
once after.

Cycle model of a run (no bubbles, no back-pressure; cycle 0 offers the first word): a word is accepted in the
first cycle after the previous word's in which every masked PE's input buffer has room, and each masked PE takes
it by ``golden.cartesian_pe.PeRun``'s rule. The PEs drain in lock step, one output word holding row k of every
PE: cycles = the latest drain start + depth + 2. A layer's cycles are the sum of its runs'.
"""

from dataclasses import dataclass

import numpy as np

from .cartesian_pe import Op, PeRun, activations_by_channel, check_layer, overlap_add, weights_by_channel
from .checks import InputError
from .cscnn import canonical_mask

__all__ = ["TILINGS", "DEFAULT_TILING", "Plan", "plan", "assignments", "tile_of", "run_words", "array_run",
           "array_conv", "check_array_layer", "choose_tiling", "TILING_CHOICES"]

TILINGS = ("mixed", "planar", "channel")
DEFAULT_TILING = "fastest"  # the one default of cosim, evaluate and sweep: each layer under its fastest tiling
TILING_CHOICES = (*TILINGS, DEFAULT_TILING)  # what a run's tiling may be


@dataclass(frozen=True)
class Plan:
    """A layer's tiling: ``runs`` of (filter sets, tiles); a set is an array of filter indices (possibly
    empty), a tile its (h0, w0); ``tiled`` when the plane is split (PEs run without bias)."""

    tiling: str
    t_k: int
    t_h: int
    t_w: int
    runs: list
    tiled: bool


def _shape(cfg, tiling):
    """(n_sets, n_tiles) of a tiling on ``cfg``."""
    return {"mixed": (cfg.groups, cfg.pes_per_group), "planar": (1, cfg.n_pe), "channel": (cfg.n_pe, 1)}[tiling]


def _ceil(a, b):
    return -(-a // b)


def _planar(cfg, x, w, t_k, n_tiles):
    """(T_h, T_w): the tile fitting the PE with the fewest estimated cycles over the layer's runs (per run: the
    drain, T_k biases and, per input channel, a PE's activation vectors and pairs at the layer's mean densities),
    then the fewest tiles, then the squarest."""
    c, h, w_ = x.shape
    x_density = np.count_nonzero(x) / x.size
    taps = int(np.count_nonzero(canonical_mask(cfg.r, cfg.s))) if cfg.reuse else cfg.r * cfg.s
    w_vectors = _ceil(int(np.ceil(t_k * taps * np.count_nonzero(w) / w.size)), cfg.px)
    best = None
    for a in range(_ceil(h, cfg.tile_h), h + 1):
        for b in range(_ceil(w_, cfg.tile_w), w_ + 1):
            t_h, t_w = _ceil(h, a), _ceil(w_, b)
            tiles = _ceil(h, t_h) * _ceil(w_, t_w)
            a_vectors = _ceil(int(np.ceil(t_h * t_w * x_density)), cfg.py)
            estimate = _ceil(tiles, n_tiles) * (cfg.depth + 2 + t_k + c * a_vectors * (1 + w_vectors))
            key = (estimate, tiles, abs(t_h - t_w), -t_h)
            if best is None or key < best[0]:
                best = (key, t_h, t_w)
    return best[1:]


def plan(cfg, x, w, tiling):
    """The runs of a validated layer on array ``cfg`` with ``tiling`` (one of TILINGS)."""
    n_sets, n_tiles = _shape(cfg, tiling)
    n_f, h, wd = w.shape[0], x.shape[1], x.shape[2]
    filter_runs = _ceil(n_f, n_sets * cfg.filters)
    t_k = _ceil(n_f, n_sets * filter_runs)
    order = np.argsort(-np.count_nonzero(w.reshape(n_f, -1), axis=1), kind="stable")
    t_h, t_w = _planar(cfg, x, w, t_k, n_tiles)
    tiles = [(h0, w0) for h0 in range(0, h, t_h) for w0 in range(0, wd, t_w)]
    runs = []
    for f0 in range(0, n_f, n_sets * t_k):
        chosen = order[f0:f0 + n_sets * t_k]
        sets = [[] for _ in range(n_sets)]
        for i, f in enumerate(chosen):
            column = i % n_sets
            sets[column if i // n_sets % 2 == 0 else n_sets - 1 - column].append(int(f))
        for t0 in range(0, len(tiles), n_tiles):
            runs.append(([np.asarray(s, np.int64) for s in sets], tiles[t0:t0 + n_tiles]))
    return Plan(tiling, t_k, t_h, t_w, runs, len(tiles) > 1)


def assignments(cfg, plan_, run):
    """Per PE: (filter indices, (h0, w0)), or None for a PE without filters or tile in this run."""
    sets, tiles = run
    n_tiles = _shape(cfg, plan_.tiling)[1]
    out = []
    for k in range(cfg.n_pe):
        s, t = divmod(k, n_tiles)
        out.append((sets[s], tiles[t]) if t < len(tiles) and len(sets[s]) else None)
    return out


def tile_of(plan_, x, origin):
    h0, w0 = origin
    return x[:, h0:h0 + plan_.t_h, w0:w0 + plan_.t_w]


def run_words(cfg, plan_, run, x, w, bias):
    """The op stream of one run: ``[(Op, mask)]``, mask bit k for PE k (see the module docstring)."""
    sets, tiles = run
    n_tiles = _shape(cfg, plan_.tiling)[1]
    pe = cfg.pe
    busy = [a is not None for a in assignments(cfg, plan_, run)]

    def mask(pes):
        return sum(1 << k for k in pes if busy[k])

    words = []
    for s, ids in enumerate(sets):
        members = range(s * n_tiles, (s + 1) * n_tiles)
        for f, f_id in enumerate(ids):
            words.append((Op("bias", f=f, bias=0 if plan_.tiled else int(bias[f_id])), mask(members)))
    tile_vectors = [activations_by_channel(pe, tile_of(plan_, x, origin)) for origin in tiles]
    set_vectors = [weights_by_channel(pe, w[ids]) for ids in sets]
    for c in range(x.shape[0]):
        acts = [vectors[c] for vectors in tile_vectors]
        wgts = [vectors[c] for vectors in set_vectors]
        has_acts = [len(a["valid"]) > 0 for a in acts]
        has_wgts = [len(ids) > 0 and len(v["valid"]) > 0 for ids, v in zip(sets, wgts)]
        for t, vectors in enumerate(acts):
            m = mask(s * n_tiles + t for s in range(len(sets)) if has_wgts[s])
            if m and has_acts[t]:
                words += [(Op("act", {k: v[i] for k, v in vectors.items()}, first=i == 0), m)
                          for i in range(len(vectors["valid"]))]
        masks = [mask(s * n_tiles + t for t in range(len(tiles)) if has_acts[t]) if has_wgts[s] else 0
                 for s in range(len(sets))]
        for i in range(max((len(v["valid"]) for v in wgts), default=0)):
            for s, vectors in enumerate(wgts):
                if masks[s] and i < len(vectors["valid"]):
                    words.append((Op("wgt", {k: v[i] for k, v in vectors.items()}), masks[s]))
    return words + [(Op("end"), (1 << cfg.n_pe) - 1)]


def array_run(cfg, plan_, run, x, w, bias):
    """Golden run: ``{"tiles": per PE (filter indices, (h0, w0), y int64 full-mode tile) or None, "mults",
    "stalls", "cycles"}``."""
    assigned = assignments(cfg, plan_, run)
    pes = [PeRun(cfg.pe, tile_of(plan_, x, a[1]), w[a[0]]) if a else PeRun(cfg.pe) for a in assigned]
    arrival = -1
    members_of = {}   # mask -> its PEs
    for op, m in run_words(cfg, plan_, run, x, w, bias):
        members = members_of.get(m)
        if members is None:
            members = members_of[m] = [pes[k] for k in range(cfg.n_pe) if m >> k & 1]
        arrival = max([arrival + 1] + [pe.room() for pe in members])
        for pe in members:
            pe.take(op, arrival)
    tiles = [None if a is None else (a[0], a[1], pe.output(*tile_of(plan_, x, a[1]).shape[1:]))
             for a, pe in zip(assigned, pes)]
    return {"tiles": tiles, "mults": sum(pe.mults for pe in pes), "stalls": sum(pe.stalls for pe in pes),
            "cycles": max(pe.drain_start for pe in pes) + cfg.depth + 2}


def check_array_layer(cfg, x, w, bias, tiling):
    """Refuse what the array cannot run: the PE's refusals (golden.cartesian_pe.check_layer) and an unknown tiling."""
    check_layer(cfg, x, w, bias)
    if tiling not in TILINGS:
        raise InputError(f"tiling must be one of {', '.join(TILINGS)}, not {tiling!r}")


def array_conv(cfg, x, w, bias, tiling):
    """Golden layer on the array: ``{"y": int32 [F, H+R-1, W+S-1], "mults", "stalls", "cycles"}``, and its plan's
    ``runs``, ``t_k``, ``t_h``, ``t_w``."""
    check_array_layer(cfg, x, w, bias, tiling)
    plan_ = plan(cfg, x, w, tiling)
    totals = {"mults": 0, "stalls": 0, "cycles": 0}
    placed = []
    for run in plan_.runs:
        out = array_run(cfg, plan_, run, x, w, bias)
        placed += [(ids, h0, w0, y) for ids, (h0, w0), y in filter(None, out["tiles"])]
        for key in totals:
            totals[key] += out[key]
    return {"y": overlap_add(cfg, x, w, bias, placed, tiled=plan_.tiled), **totals, "runs": len(plan_.runs),
            "t_k": plan_.t_k, "t_h": plan_.t_h, "t_w": plan_.t_w}


def choose_tiling(cfg, x, w, bias, tiling=DEFAULT_TILING):
    """``tiling`` (one of TILINGS), or for ``"fastest"`` the tiling with the fewest golden cycles of array ``cfg`` on
    the layer (TILINGS' order on a tie); ValueError for anything else."""
    if tiling == "fastest":
        return min(TILINGS, key=lambda t: array_conv(cfg, x, w, bias, t)["cycles"])
    if tiling not in TILINGS:
        raise InputError(f"tiling must be one of {', '.join(TILINGS)} or {DEFAULT_TILING}, not {tiling!r}")
    return tiling
